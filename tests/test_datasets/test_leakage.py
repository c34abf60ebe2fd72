# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Overlap logic of rsitr_mm.datasets.leakage."""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rsitr_mm.datasets.leakage import (dhash, hamming, hash_matches,
                                       leakage_report, load_split,
                                       normalize_caption, shared_captions,
                                       split_overlap)

ANN = Path(__file__).resolve().parents[2].parent / 'shared' / 'data' / \
    'annotations'
RSICD_JSON = ANN / 'rsicd' / 'dataset_rsicd_reconstructed.json'
RSITMD_JSON = ANN / 'rsitmd' / 'dataset_rsitmd_reconstructed.json'


def img(filename, caps, split='train'):
    return dict(filename=filename, split=split,
                sentences=[dict(raw=c) for c in caps])


def write(path, images):
    path.write_text(json.dumps(dict(images=images)))
    return str(path)


def test_normalize_caption():
    assert normalize_caption('  A  Plane, parked.  ') == 'a plane parked'
    assert normalize_caption('Two-lane road .') == 'two lane road'
    assert normalize_caption('a plane parked') == 'a plane parked'


def test_shared_captions_counts_distinct_captions_per_image():
    a = [dict(captions=('x', 'y', 'z', 'z', 'w')),
         dict(captions=('p', 'p', 'p', 'p', 'p')),
         dict(captions=('q', 'r', 's', 't', 'u'))]
    b = [dict(captions=('x', 'y', 'o', 'o', 'o')),
         dict(captions=('z', 'w', 'y', 'k', 'k')),
         dict(captions=('p', 'a', 'b', 'c', 'd'))]
    # image 0 shares {x, y} with b0 and {z, w, y} with b1 -> 3 (not 5)
    assert shared_captions(a, b).tolist() == [3, 1, 0]
    assert shared_captions(a, []).tolist() == [0, 0, 0]


def test_split_overlap_rules(tmp_path):
    ann_a = write(tmp_path / 'a.json', [
        img('1.tif', ['A b c.', 'd', 'e', 'f', 'g']),
        img('2.tif', ['same', 'same', 'same', 'same', 'same']),
        img('3.tif', ['u', 'v', 'w', 'x', 'y']),
        img('4.tif', ['n1', 'n2', 'n3', 'n4', 'n5'], split='test'),
    ])
    ann_b = write(tmp_path / 'b.json', [
        img('9.jpg', ['a b c', 'D!', 'e', 'zz', 'zz'], split='test'),
        img('2.jpg', ['same', 'k', 'l', 'm', 'n'], split='test'),
        img('3.tif', ['q1', 'q2', 'q3', 'q4', 'q5'], split='test'),
    ])
    a, b = load_split(ann_a, 'train'), load_split(ann_b, 'test')
    assert [i['filename'] for i in a] == ['1.tif', '2.tif', '3.tif']
    assert a[0]['captions'][0] == 'a b c'
    out = split_overlap(a, b, min_shared=3)
    assert out['images'] == 3
    assert out['unique_captions'] == 5 + 1 + 5
    assert out['captions_in_b'] == 4  # a b c, d, e, same
    assert out['share_1'] == 2 and out['share_k'] == 1
    assert out['share_all'] == 1  # 2.tif: its only distinct caption
    assert out['same_filename'] == 1 and out['same_stem'] == 2
    assert out['hash_match'] is None
    # 1.tif by captions, 3.tif by file name
    assert out['leaking'] == ['1.tif', '3.tif']
    rows = leakage_report(ann_a, ann_b, min_shared=3)
    assert [(r['split_a'], r['split_b']) for r in rows] == [
        ('train', 'test'), ('test', 'test')]


def test_load_split_bad_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.json'):
        load_split(str(tmp_path / 'missing.json'))
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps(dict(images=[dict(filename='x')])))
    with pytest.raises(ValueError, match=r'images\[0\]'):
        load_split(str(bad))


def _scene(seed, size=64):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
    return Image.fromarray(base).resize((size, size), Image.BILINEAR)


def test_dhash_survives_reencoding_and_resizing(tmp_path):
    im = _scene(0)
    im.save(tmp_path / 'a.png')
    im.resize((48, 48), Image.BICUBIC).save(tmp_path / 'a.jpg', quality=85)
    h_png, h_jpg = dhash(str(tmp_path / 'a.png')), dhash(
        str(tmp_path / 'a.jpg'))
    h_other = dhash(_scene(1))
    assert hamming(h_png, h_jpg) <= 6
    assert hamming(h_png, h_other) > 12
    matches = hash_matches({'a.png': h_png}, {'a.jpg': h_jpg, 'b': h_other})
    assert matches == {'a.png': ['a.jpg']}


@pytest.mark.skipif(
    not (RSICD_JSON.exists() and RSITMD_JSON.exists()),
    reason='shared data absent')
def test_real_rsicd_rsitmd_overlap():
    """The figures of docs/datasets.md, "Leakage between datasets"."""
    icd_test = load_split(str(RSICD_JSON), 'test')
    itm_trval = load_split(str(RSITMD_JSON), ['train', 'val'])
    out = split_overlap(icd_test, itm_trval)
    assert out['images'] == 1093
    assert out['unique_captions'] == 3330
    assert out['captions_in_b'] == 925
    itm_test = load_split(str(RSITMD_JSON), 'test')
    icd_trval = load_split(str(RSICD_JSON), ['train', 'val'])
    shared = shared_captions(itm_test, icd_trval)
    assert len(shared) == 452
    assert int((shared >= 3).sum()) == 26
    assert int((shared == 5).sum()) == 5
    assert split_overlap(itm_test, icd_trval)['same_filename'] == 0
