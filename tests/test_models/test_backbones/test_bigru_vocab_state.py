"""The BiGRU vocabulary travels with the checkpoint; stale caches rebuild."""
import json
import os
import stat

import pytest
import torch

from rsitr_mm.datasets.vocab import load_or_build_vocab
from rsitr_mm.models.backbones import BiGRUTextEncoder


def _ann(path, captions):
    images = [dict(filename=f'{i}.jpg', imgid=i, split='train',
                   sentences=[dict(raw=c)], sentids=[i])
              for i, c in enumerate(captions)]
    path.write_text(json.dumps(dict(images=images)))
    return str(path)


def _encoder(ann, **kwargs):
    torch.manual_seed(0)
    return BiGRUTextEncoder(ann_files=[ann], word_dim=8, hidden_dim=8,
                            **kwargs)


def test_checkpoint_restores_its_vocabulary(tmp_path):
    ann = _ann(tmp_path / 'a.json', ['two white tanks', 'a road', 'a road'])
    enc = _encoder(ann)
    state = enc.state_dict()
    assert enc._tensor_to_words(state['vocab_bytes']) == enc.vocab.idx2word
    before = enc(['two white tanks near a road'])
    # one caption changed: the rebuilt vocabulary permutes the indices
    ann2 = _ann(tmp_path / 'b.json',
                ['many green trees', 'two white tanks', 'a road', 'a road'])
    other = _encoder(ann2)
    assert other.vocab.idx2word != enc.vocab.idx2word
    with pytest.warns(UserWarning, match="using the checkpoint's"):
        other.load_state_dict(state, strict=True)
    assert other.vocab.idx2word == enc.vocab.idx2word
    assert other.embed.num_embeddings == enc.embed.num_embeddings
    torch.testing.assert_close(other(['two white tanks near a road']),
                               before)


def test_stale_cache_is_rebuilt_not_reused(tmp_path):
    cache = str(tmp_path / 'vocab.json')
    ann = _ann(tmp_path / 'a.json', ['a road'] * 3)
    small = load_or_build_vocab(ann_files=[ann], vocab_cache=cache)
    bigger = _ann(tmp_path / 'a.json', ['a road', 'two white tanks'])
    with pytest.warns(UserWarning, match='built from other inputs'):
        vocab = load_or_build_vocab(ann_files=[bigger], vocab_cache=cache)
    assert 'tanks' in vocab and 'tanks' not in small
    # same inputs: the cache is reused as it is
    assert load_or_build_vocab(ann_files=[bigger],
                               vocab_cache=cache) == vocab


@pytest.mark.skipif(os.geteuid() == 0, reason='root ignores permissions')
def test_read_only_cache_folder_only_warns(tmp_path):
    ro = tmp_path / 'ro'
    ro.mkdir()
    ann = _ann(tmp_path / 'a.json', ['a road'])
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.warns(UserWarning, match='not cached'):
            load_or_build_vocab(ann_files=[ann],
                                vocab_cache=str(ro / 'vocab.json'))
    finally:
        ro.chmod(stat.S_IRWXU)


def test_model_identity_includes_the_vocabulary(tmp_path):
    from rsitr_mm.apis.model_loading import weights_sha256
    a = _encoder(_ann(tmp_path / 'a.json', ['a road', 'two tanks']))
    b = _encoder(_ann(tmp_path / 'b.json', ['two tanks', 'a road']))
    b.load_state_dict(a.state_dict())
    assert weights_sha256(a) == weights_sha256(b)
    words = list(b.vocab.idx2word)
    words[2], words[3] = words[3], words[2]
    b.vocab_bytes = b._words_to_tensor(words)
    assert weights_sha256(a) != weights_sha256(b)
