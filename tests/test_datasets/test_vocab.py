# Copyright (c) rsitr_mm contributors. All rights reserved.
import json

import pytest

from rsitr_mm.datasets.vocab import (Vocabulary, load_or_build_vocab,
                                     read_karpathy_captions, tokenize_caption)


def test_tokenize_caption():
    assert tokenize_caption('Two planes, near a  RUNWAY.') == [
        'two', 'planes', 'near', 'a', 'runway'
    ]
    assert tokenize_caption('...') == []
    with pytest.raises(TypeError):
        tokenize_caption(None)


def test_build_orders_by_frequency_then_alphabet():
    vocab = Vocabulary.build(['b a c', 'a b', 'a d'], min_freq=1)
    assert vocab.idx2word == ['<pad>', '<unk>', 'a', 'b', 'c', 'd']
    vocab2 = Vocabulary.build(['b a c', 'a b', 'a d'], min_freq=2)
    assert vocab2.idx2word == ['<pad>', '<unk>', 'a', 'b']
    assert vocab2.encode('A c b!') == [2, 1, 3]
    assert vocab2.pad_id == 0 and vocab2.unk_id == 1


def test_save_load_and_foreign_layouts(tmp_path):
    vocab = Vocabulary.build(['x y z'])
    path = str(tmp_path / 'sub' / 'v.json')
    vocab.save(path)
    assert Vocabulary.load(path) == vocab
    foreign = tmp_path / 'foreign.json'
    foreign.write_text(
        json.dumps(
            {'word2idx': {
                '<pad>': 0,
                '<start>': 1,
                'tree': 2,
                '<unk>': 3
            }}))
    loaded = Vocabulary.load(str(foreign))
    assert loaded.idx2word == ['<pad>', '<unk>', '<start>', 'tree']
    bad = tmp_path / 'bad.json'
    bad.write_text('"oops"')
    with pytest.raises(ValueError, match='bad.json'):
        Vocabulary.load(str(bad))


def test_karpathy_reading(tmp_path):
    ann = tmp_path / 'd.json'
    ann.write_text(
        json.dumps({
            'images': [{
                'split': 'train',
                'sentences': [{
                    'raw': 'a tree'
                }]
            }, {
                'split': 'val',
                'sentences': [{
                    'raw': 'a lake'
                }]
            }]
        }))
    assert read_karpathy_captions(str(ann)) == ['a tree']
    vocab = load_or_build_vocab(ann_files=[str(ann)])
    assert 'tree' in vocab and 'lake' not in vocab
    with pytest.raises(ValueError, match='Karpathy'):
        (tmp_path / 'e.json').write_text('[]')
        read_karpathy_captions(str(tmp_path / 'e.json'))
