# Copyright (c) rsitr_mm contributors. All rights reserved.
import json
import os.path as osp

import numpy as np
import pytest

from rsitr_mm.datasets.object_priors import (ObjectPriors, build_object_priors,
                                             extract_object_nouns,
                                             load_lexicon, singular_candidates)

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
DATA = osp.join(REPO, '..', 'shared', 'data', 'annotations')
UCM = osp.join(DATA, 'ucm_captions', 'dataset.json')
SYDNEY = osp.join(DATA, 'sydney_captions', 'dataset_modified.json')

# A stop-word list written for this test (common English function words).
STOP_WORDS = set("""
a about above after again against all am an and any are as at be because been
before being below between both but by can did do does doing down during each
few for from further had has have having he her here hers herself him himself
his how i if in into is it its itself just me more most my myself no nor not
now of off on once only or other our ours ourselves out over own same she
should so some such than that the their theirs them themselves then there
these they this those through to too under until up very was we were what when
where which while who whom why will with would you your yours yourself
yourselves also many several two three one lot lots piece pieces side sides
kind kinds part parts area areas green white large small near next
""".split())


def _write_json(tmp_path, images, name='ann.json'):
    path = tmp_path / name
    path.write_text(json.dumps(dict(dataset='toy', images=images)))
    return str(path)


def _img(filename, captions, split='train'):
    return dict(
        filename=filename,
        split=split,
        sentences=[dict(raw=c, tokens=c.split()) for c in captions])


def test_lexicon_matching_multiword_plural_and_synonyms():
    lex = load_lexicon()
    assert 200 <= len(lex.variants) and 150 <= len(lex.terms) <= 300
    nouns = extract_object_nouns(
        'Many planes and an aircraft are parked beside two storage tanks, '
        'parking lots and tennis courts near houses, factories and trees.',
        lex)
    assert nouns == [
        'airplane', 'airplane', 'storage tank', 'parking lot',
        'tennis court', 'house', 'factory', 'tree'
    ]
    assert extract_object_nouns('Cars and automobiles on the road', lex) == \
        ['car', 'car', 'road']
    # verbs / adjectives that look like nouns are not matched
    assert extract_object_nouns('it is parked and planted', lex) == []
    assert singular_candidates('factories')[:2] == ['factories', 'factory']
    assert 'wave' in singular_candidates('waves')
    assert singular_candidates('grass') == ['grass']


def test_extra_nouns_and_custom_lexicon():
    lex = load_lexicon(['ship'], extra_nouns=['wind turbine: windmill'])
    assert extract_object_nouns('windmills, wind turbines and ships', lex) \
        == ['wind turbine', 'wind turbine', 'ship']


def test_priors_hand_computed(tmp_path):
    ann = _write_json(tmp_path, [
        _img('a.jpg', ['Two ships in the harbor', 'ships and boats',
                       'a boat', 'ships ships ships', 'water']),
        _img('b.jpg', ['a road', 'cars on a road', 'a car']),
        _img('c.jpg', ['nothing to see here']),
        _img('d.jpg', ['a ship'], split='test'),
    ])
    pri = build_object_priors(ann, split='train', top_k=3)
    assert pri.filenames == ['a.jpg', 'b.jpg', 'c.jpg']
    # document frequencies: each of the 6 nouns occurs in 1 train image;
    # ties broken alphabetically
    assert pri.vocab == ['boat', 'car', 'harbor']
    np.testing.assert_array_equal(pri.doc_freq, [1, 1, 1])
    # counts: once per caption. a: boat in 2 captions, harbor in 1
    np.testing.assert_array_equal(pri.counts,
                                  [[2, 0, 1], [0, 2, 0], [0, 0, 0]])
    np.testing.assert_allclose(pri.priors,
                               [[2 / 3, 0, 1 / 3], [0, 1, 0], [0, 0, 0]])
    pri_all = build_object_priors(ann, split=None, top_k=None)
    assert pri_all.vocab[0] == 'ship'  # a.jpg and d.jpg
    assert pri_all.counts[pri_all.index('a.jpg'),
                          pri_all.vocab.index('ship')] == 3
    assert pri_all.index('some/dir/d.jpg') == 3
    assert pri_all.index('zzz.jpg') == -1
    # b.jpg: car and road both in 2 captions -> first in vocab order (car)
    assert pri_all.vocab[:3] == ['ship', 'boat', 'car']
    np.testing.assert_array_equal(pri_all.dominant()[:3], [0, 2, -1])


def test_cache_roundtrip_and_invalidation(tmp_path):
    ann = _write_json(tmp_path, [
        _img('a.jpg', ['a ship', 'two ships']),
        _img('b.jpg', ['a road']),
    ])
    cache = str(tmp_path / 'cache' / 'priors.npz')
    first = build_object_priors(ann, top_k=5, cache_file=cache)
    assert not first.from_cache and osp.isfile(cache)
    second = build_object_priors(ann, top_k=5, cache_file=cache)
    assert second.from_cache
    assert second.vocab == first.vocab
    assert second.filenames == first.filenames
    np.testing.assert_array_equal(second.priors, first.priors)
    np.testing.assert_array_equal(second.counts, first.counts)
    # other inputs -> other key -> rebuilt
    third = build_object_priors(ann, top_k=1, cache_file=cache)
    assert not third.from_cache and len(third.vocab) == 1
    assert ObjectPriors.load(cache).key == third.key


def test_bad_input_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.json'):
        build_object_priors(str(tmp_path / 'nope.json'))
    bad = tmp_path / 'bad.json'
    bad.write_text('[1, 2]')
    with pytest.raises(ValueError, match='images'):
        build_object_priors(str(bad))
    ann = _write_json(tmp_path, [_img('a.jpg', ['a ship'], split='val')])
    with pytest.raises(ValueError, match='no image'):
        build_object_priors(ann, split='train')


@pytest.mark.skipif(not osp.isfile(UCM), reason='shared UCM data absent')
def test_real_ucm_priors():
    pri = build_object_priors(UCM, split='train', top_k=50)
    assert pri.num_images == 1680
    assert 20 <= pri.num_nouns <= 50
    assert not set(pri.vocab) & STOP_WORDS
    assert all(v.replace(' ', '').isalpha() for v in pri.vocab)
    sums = pri.priors.sum(axis=1)
    assert np.all((np.abs(sums - 1) < 1e-5) | (sums == 0))
    assert pri.counts.max() <= 5 and pri.counts.min() >= 0
    # UCM images 1..100 are 'agricultural'
    rows = [pri.index(f'{n}.tif') for n in range(1, 101)]
    rows = [r for r in rows if r >= 0]
    assert len(rows) > 50
    totals = pri.counts[rows].sum(axis=0)
    top = [pri.vocab[k] for k in np.argsort(-totals, kind='stable')[:3]]
    assert {'farmland', 'field', 'crop'} & set(top)
    # 'storagetanks' images (1901..2000) mention storage tanks
    rows = [pri.index(f'{n}.tif') for n in range(1901, 2001)]
    k = pri.vocab.index('storage tank')
    assert np.mean([pri.counts[r, k] > 0 for r in rows if r >= 0]) > 0.8


@pytest.mark.skipif(not osp.isfile(SYDNEY), reason='shared Sydney data absent')
def test_real_sydney_priors_and_both_files():
    pri = build_object_priors(SYDNEY, split='train', top_k=30)
    assert pri.num_images == 497 and pri.num_nouns == 30
    assert not set(pri.vocab) & STOP_WORDS
    assert {'house', 'road', 'runway'} <= set(pri.vocab)
    assert (pri.priors.sum(axis=1) > 0).mean() > 0.9
    if osp.isfile(UCM):
        both = build_object_priors([UCM, SYDNEY], top_k=50)
        assert both.num_images == 1680 + 497
        np.testing.assert_array_equal(np.bincount(both.sources), [1680, 497])


def test_fixed_vocabulary_for_other_splits(tmp_path):
    ann = _write_json(tmp_path, [
        _img('a.jpg', ['a ship', 'a road']),
        _img('b.jpg', ['a ship']),
        _img('t.jpg', ['two ships near a bridge', 'a bridge'], split='test'),
    ])
    train = build_object_priors(ann, split='train', top_k=1)
    assert train.vocab == ['ship']
    test = build_object_priors(
        ann, split='test', vocab=train.vocab + ['lighthouse'])
    assert test.vocab == ['ship', 'lighthouse']
    np.testing.assert_array_equal(test.counts, [[1, 0]])
