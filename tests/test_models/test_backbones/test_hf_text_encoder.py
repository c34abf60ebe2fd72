# Copyright (c) rsitr_mm contributors. All rights reserved.
import copy

import pytest
import torch

from rsitr_mm.models.backbones import CLIPTextEncoder, HFTextEncoder
from rsitr_mm.models.utils import make_tiny_clip_dir, tiny_clip_config
from rsitr_mm.models.utils.hf_utils import clip_features

CAPTIONS = [
    'a photo of a cat',
    'Many buildings and green trees are around a playground.',
    'an airport',
]


@pytest.fixture(scope='module')
def clip_dir(tmp_path_factory):
    return make_tiny_clip_dir(str(tmp_path_factory.mktemp('tiny_clip')))


def test_clip_text_matches_get_text_features(clip_dir):
    from transformers import CLIPModel, CLIPTokenizerFast
    model = CLIPModel.from_pretrained(clip_dir, local_files_only=True).eval()
    tok = CLIPTokenizerFast.from_pretrained(clip_dir, local_files_only=True)
    encoder = CLIPTextEncoder(pretrained=clip_dir).eval()
    with torch.no_grad():
        feats = encoder(CAPTIONS)
        ref = clip_features(model.get_text_features(
            **tok(CAPTIONS, padding=True, return_tensors='pt')))
        # each caption alone (no padding) gives the same feature
        alone = torch.cat([encoder([c]) for c in CAPTIONS])
    assert feats.shape == (3, 32) and encoder.out_channels == 32
    assert torch.allclose(feats, ref, atol=1e-6)
    assert torch.allclose(feats, alone, atol=1e-5)


def test_clip_text_tokens_are_openai_ids(clip_dir):
    encoder = CLIPTextEncoder(pretrained=clip_dir)
    tokens = encoder.tokenize(['a photo of a cat'])
    ids = tokens['input_ids']
    # padded to a bucket of 8 tokens with the pad token (EOT), masked
    assert ids.tolist() == [[49406, 320, 1125, 539, 320, 2368, 49407,
                             encoder.tokenizer.pad_token_id]]
    assert tokens['attention_mask'].tolist() == [[1] * 7 + [0]]
    # truncation keeps EOT as the last token
    short = CLIPTextEncoder(pretrained=clip_dir, max_length=4)
    ids = short.tokenize(['a photo of a cat'])['input_ids']
    assert ids.tolist() == [[49406, 320, 1125, 49407]]


def test_clip_tokenizer_from_bare_bpe_files(clip_dir, tmp_path):
    import shutil
    for name in ('vocab.json', 'merges.txt'):
        shutil.copy(f'{clip_dir}/{name}', tmp_path / name)
    encoder = CLIPTextEncoder(pretrained=clip_dir, tokenizer=str(tmp_path))
    tokens = encoder.tokenize(['a photo of a cat'])
    real = tokens['input_ids'][tokens['attention_mask'].bool()]
    assert real.tolist() == [49406, 320, 1125, 539, 320, 2368, 49407]


def test_clip_text_from_config_without_projection(clip_dir):
    encoder = CLIPTextEncoder(
        config=tiny_clip_config().to_dict(),
        tokenizer=clip_dir,
        with_proj=False)
    feats = encoder(CAPTIONS)
    assert feats.shape == (3, 32)
    feats.sum().backward()
    assert encoder.model.text_model.embeddings.token_embedding.weight.grad \
        is not None
    with pytest.raises(ValueError, match='tokenizer'):
        CLIPTextEncoder(config=tiny_clip_config().to_dict())
    with pytest.raises(TypeError, match='list of strings'):
        encoder('a single caption')
    with pytest.raises(ValueError, match='max_length'):
        CLIPTextEncoder(pretrained=clip_dir, max_length=78)


def test_clip_text_freeze_init_and_deepcopy(clip_dir):
    encoder = CLIPTextEncoder(pretrained=clip_dir, freeze=True).train()
    assert not any(p.requires_grad for p in encoder.parameters())
    assert not encoder.model.training
    before = copy.deepcopy(encoder.state_dict())
    encoder.init_weights()
    assert all(
        torch.equal(before[k], v) for k, v in encoder.state_dict().items())
    clone = copy.deepcopy(encoder)  # e.g. EMA / momentum encoders
    assert torch.allclose(clone(CAPTIONS[:1]), encoder(CAPTIONS[:1]))


@pytest.fixture(scope='module')
def bert_dir(tmp_path_factory):
    from transformers import BertConfig, BertModel, BertTokenizerFast
    path = tmp_path_factory.mktemp('tiny_bert')
    words = ('a photo of cat many buildings and green trees are around '
             'playground an airport').split()
    vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] + words + ['.']
    (path / 'vocab.txt').write_text('\n'.join(vocab) + '\n')
    tok = BertTokenizerFast(vocab_file=str(path / 'vocab.txt'))
    tok.save_pretrained(str(path))
    torch.manual_seed(0)
    model = BertModel(
        BertConfig(
            vocab_size=len(vocab),
            hidden_size=24,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=48))
    model.save_pretrained(str(path))
    return str(path)


def test_hf_text_encoder_cls_and_mean(bert_dir):
    from transformers import BertModel, BertTokenizerFast
    ref_model = BertModel.from_pretrained(bert_dir).eval()
    tok = BertTokenizerFast.from_pretrained(bert_dir)
    cls_enc = HFTextEncoder(pretrained=bert_dir, pooling='cls').eval()
    mean_enc = HFTextEncoder(pretrained=bert_dir, pooling='mean').eval()
    assert cls_enc.out_channels == 24
    assert cls_enc.model.pooler is None  # unused parameters removed
    with torch.no_grad():
        inputs = tok(CAPTIONS, padding=True, return_tensors='pt')
        hidden = ref_model(**inputs).last_hidden_state
        cls_feat = cls_enc(CAPTIONS)
        mean_feat = mean_enc(CAPTIONS)
        alone = mean_enc([CAPTIONS[2]])
    assert torch.allclose(cls_feat, hidden[:, 0], atol=1e-6)
    n = int(inputs['attention_mask'][2].sum())
    assert torch.allclose(mean_feat[2], hidden[2, :n].mean(0), atol=1e-6)
    assert torch.allclose(mean_feat[2], alone[0], atol=1e-5)


def test_hf_text_encoder_from_config(bert_dir):
    enc = HFTextEncoder(
        config=dict(
            model_type='bert',
            vocab_size=30,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32),
        tokenizer=bert_dir,
        pooling='pooler')
    out = enc(CAPTIONS)
    assert out.shape == (3, 16)
    out.sum().backward()
    with pytest.raises(ValueError, match='pooling'):
        HFTextEncoder(pretrained=bert_dir, pooling='max')
    with pytest.raises(ValueError, match='model_type'):
        HFTextEncoder(config=dict(hidden_size=16), tokenizer=bert_dir)
