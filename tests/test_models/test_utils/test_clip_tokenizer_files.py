# Copyright (c) rsitr_mm contributors. All rights reserved.
import json
import os.path as osp

import pytest

from rsitr_mm.models.utils import (find_clip_bpe_file, read_clip_bpe,
                                   write_clip_tokenizer_files)

pytest.importorskip('open_clip')

CAPTIONS = [
    'a photo of a cat',
    'Many buildings, and green trees are around a playground.',
    'two   storage tanks near 3 white buildings!',
    "the plane's wing is next to the runway",
]


@pytest.fixture(scope='module')
def tok_dir(tmp_path_factory):
    return write_clip_tokenizer_files(str(tmp_path_factory.mktemp('tok')))


def test_vocab_layout():
    vocab, merges = read_clip_bpe(find_clip_bpe_file())
    assert len(vocab) == 49408 and len(merges) == 48894
    assert vocab['<|startoftext|>'] == 49406
    assert vocab['<|endoftext|>'] == 49407
    # a merged token's id follows its merge rank: 512 byte tokens come first
    assert vocab[''.join(merges[0])] == 512


def test_files_and_openai_ids(tok_dir):
    from transformers import AutoTokenizer, CLIPTokenizer, CLIPTokenizerFast
    for name in ('vocab.json', 'merges.txt', 'tokenizer.json',
                 'tokenizer_config.json'):
        assert osp.isfile(osp.join(tok_dir, name))
    with open(osp.join(tok_dir, 'merges.txt')) as f:
        assert f.readline().startswith('#version')
    with open(osp.join(tok_dir, 'vocab.json')) as f:
        assert len(json.load(f)) == 49408
    expected = [49406, 320, 1125, 539, 320, 2368, 49407]
    for cls in (CLIPTokenizer, CLIPTokenizerFast, AutoTokenizer):
        tok = cls.from_pretrained(tok_dir, local_files_only=True)
        assert tok('a photo of a cat')['input_ids'] == expected


def test_same_ids_as_open_clip(tok_dir):
    import open_clip
    from transformers import CLIPTokenizerFast
    ours = CLIPTokenizerFast.from_pretrained(tok_dir, local_files_only=True)
    ref = open_clip.get_tokenizer('ViT-B-32')(CAPTIONS)
    for i, caption in enumerate(CAPTIONS):
        ids = ours(caption)['input_ids']
        assert ids == ref[i, :len(ids)].tolist()
        assert int(ref[i, len(ids):].abs().sum()) == 0  # open_clip pads 0
