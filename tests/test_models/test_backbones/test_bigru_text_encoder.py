# Copyright (c) rsitr_mm contributors. All rights reserved.
import json

import pytest
import torch

from rsitr_mm.models.backbones import BiGRUTextEncoder

CAPTIONS = [
    'Two planes are parked near the terminal.',
    'A plane, near a runway.',
    'many green trees',
]


@pytest.fixture
def ann_file(tmp_path):
    images = [
        dict(
            filename='a.jpg',
            split='train',
            sentences=[dict(raw=CAPTIONS[0]),
                       dict(raw=CAPTIONS[1])]),
        dict(
            filename='b.jpg', split='train',
            sentences=[dict(raw=CAPTIONS[2])]),
        dict(
            filename='c.jpg',
            split='test',
            sentences=[dict(raw='a stadium only in test')]),
    ]
    path = tmp_path / 'dataset.json'
    path.write_text(json.dumps(dict(images=images)))
    return str(path)


def make(ann_file, **kwargs):
    torch.manual_seed(0)
    cfg = dict(ann_files=[ann_file], word_dim=8, hidden_dim=6)
    cfg.update(kwargs)
    return BiGRUTextEncoder(**cfg)


def test_vocab_is_deterministic_and_cached(ann_file, tmp_path):
    cache = str(tmp_path / 'vocab.json')
    a = make(ann_file, vocab_cache=cache)
    b = make(ann_file)
    assert a.vocab == b.vocab
    assert a.vocab.idx2word[:2] == ['<pad>', '<unk>']
    # 'a', 'near', 'plane'... only train words; 'stadium' is test-only
    assert 'stadium' not in a.vocab and 'near' in a.vocab
    cached = BiGRUTextEncoder(vocab_cache=cache, word_dim=8, hidden_dim=6)
    assert cached.vocab == a.vocab
    from_file = BiGRUTextEncoder(vocab_file=cache, word_dim=8, hidden_dim=6)
    assert from_file.vocab == a.vocab
    assert a.embed.num_embeddings == len(a.vocab)


def test_unknown_words_map_to_unk(ann_file):
    enc = make(ann_file)
    ids, lengths = enc.encode_ids(['stadium near xyz', ''])
    unk = enc.vocab.unk_id
    assert ids[0, :3].tolist() == [unk, enc.vocab('near'), unk]
    assert lengths.tolist() == [3, 1] and ids[1, 0] == unk
    # padded (<pad>) to a bucket of 8 steps
    assert ids.shape == (2, 8) and (ids[0, 3:] == enc.vocab.pad_id).all()
    with torch.no_grad():
        out = enc(['stadium', 'xyz'])
    assert torch.allclose(out[0], out[1])  # both are a single <unk>


def test_padding_invariance(ann_file):
    for pooling in ('last', 'mean'):
        enc = make(ann_file, pooling=pooling).eval()
        with torch.no_grad():
            alone = enc([CAPTIONS[2]])
            batch = enc(CAPTIONS)
        assert batch.shape == (3, 6) and enc.out_channels == 6
        assert torch.allclose(alone[0], batch[2], atol=1e-6), pooling


def test_last_pooling_averages_directions(ann_file):
    enc = make(ann_file).eval()
    ids, lengths = enc.encode_ids([CAPTIONS[1]])
    ids = ids[:, :int(lengths[0])]  # the caption's own steps
    with torch.no_grad():
        out, _ = enc.gru(enc.embed(ids))
        expected = (out[0, -1, :6] + out[0, 0, 6:]) / 2
        assert torch.allclose(enc([CAPTIONS[1]])[0], expected, atol=1e-6)
        mean_enc = make(ann_file, pooling='mean').eval()
        expected = out[0].view(-1, 2, 6).mean(1).mean(0)
        assert torch.allclose(mean_enc([CAPTIONS[1]])[0], expected, atol=1e-6)


def test_gradients_flow_and_loss_falls(ann_file):
    enc = make(ann_file, num_layers=2, dropout=0.1)
    target = torch.randn(3, 6)
    opt = torch.optim.Adam(enc.parameters(), lr=0.05)
    losses = []
    for _ in range(15):
        loss = ((enc(CAPTIONS) - target)**2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert enc.embed.weight.grad is not None
    assert all(p.grad is not None for p in enc.gru.parameters())
    assert losses[-1] < 0.5 * losses[0]


def test_errors(ann_file):
    # no vocabulary source: builds, but training it names the way out
    with pytest.raises(RuntimeError, match='TrainDataToModelHook'):
        BiGRUTextEncoder(word_dim=8, hidden_dim=6).train()(['a caption'])
    with pytest.raises(ValueError, match='pooling'):
        make(ann_file, pooling='max')
    with pytest.raises(TypeError, match='list of strings'):
        make(ann_file)('one caption')


def test_real_rsicd_vocab(shared_data):
    import os.path as osp
    ann = osp.join(shared_data, 'rsicd_sample', 'dataset_rsicd_sample.json')
    enc = BiGRUTextEncoder(ann_files=[ann], word_dim=8, hidden_dim=8)
    assert len(enc.vocab) > 50 and 'buildings' in enc.vocab
    assert enc(['many buildings around a playground']).shape == (1, 8)


def test_vocab_from_train_data_and_from_checkpoint(ann_file):
    """Without paths the encoder builds its vocabulary from the training
    dataset's annotation files (what TrainDataToModelHook hands it),
    resizing the embedding in place; explicit ann_files win; a bare encoder
    (test-only run) gets vocabulary and size from a checkpoint, strictly
    and without a warning."""
    import warnings
    ref = make(ann_file)
    torch.manual_seed(0)
    enc = BiGRUTextEncoder(word_dim=8, hidden_dim=6)
    weight = enc.embed.weight
    assert len(enc.vocab) == 2  # <pad>, <unk>
    assert enc.setup_from_train_data([ann_file]) is True
    assert enc.embed.weight is weight  # an optimizer built already keeps it
    assert enc.vocab.idx2word == ref.vocab.idx2word
    assert enc.embed.weight.shape == ref.embed.weight.shape
    assert torch.equal(enc.vocab_bytes, ref.vocab_bytes)
    assert enc.embed.weight[enc.vocab.pad_id].abs().sum() == 0
    enc.train()(CAPTIONS)
    assert make(ann_file).setup_from_train_data(['other.json']) is False
    bare = BiGRUTextEncoder(word_dim=8, hidden_dim=6)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        bare.load_state_dict(enc.state_dict(), strict=True)
    assert bare.vocab.idx2word == enc.vocab.idx2word
    bare.eval()
    enc.eval()
    torch.testing.assert_close(bare(CAPTIONS), enc(CAPTIONS))
