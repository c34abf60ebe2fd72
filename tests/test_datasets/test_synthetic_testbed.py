# Copyright (c) rsitr_mm contributors. All rights reserved.
import json
import os
import os.path as osp

import numpy as np
import pytest

from rsitr_mm.datasets.synthetic import (SCENE_CLASSES, generate_testbed,
                                         make_testbed_image)
from rsitr_mm.datasets.synthetic import testbed as tb
from rsitr_mm.datasets.synthetic.scene import (BACKGROUNDS, COLOURS,
                                               OBJECT_KINDS)
from rsitr_mm.datasets.synthetic.testbed_scene import (
    HELD_OUT_COMBOS, PRETRAIN_BACKGROUNDS, PRETRAIN_CLASSES, PRETRAIN_COLOURS,
    PRETRAIN_KINDS, SCALE_RANGE, sample_pretrain_scene, sample_target_scene)


def _rng(i):
    return np.random.default_rng(i)


def _target_scenes(split, n=150):
    return [
        sample_target_scene(SCENE_CLASSES[i % len(SCENE_CLASSES)], _rng(i),
                            split) for i in range(n)
    ]


def test_object_scale_range_at_least_4x():
    assert SCALE_RANGE[1] / SCALE_RANGE[0] >= 4
    mults = [m for s in _target_scenes('train') for m in s.multipliers]
    assert max(mults) / min(mults) >= 4
    # every group's drawn length follows its multiplier
    scene = _target_scenes('train', 12)[5]
    assert len(scene.multipliers) == len(scene.groups)


def test_scenes_have_clutter_and_distractors():
    scenes = _target_scenes('train', 60)
    assert all(len(s.clutter) >= 15 for s in scenes)
    with_main = [s for s in scenes if s.has_main]
    assert np.mean([len(s.groups) >= 2 for s in with_main]) > 0.8


def test_held_out_combos_only_in_test():
    held = set(HELD_OUT_COMBOS)
    for split in ('train', 'val'):
        for s in _target_scenes(split):
            assert not {(g.kind, g.colour) for g in s.groups} & held
    test = _target_scenes('test')
    shown = [bool({(g.kind, g.colour) for g in s.groups} & held) for s in test]
    assert 0.2 < np.mean(shown) < 0.8
    # every held-out word is seen in training in other combinations
    train_colours = {
        g.colour
        for s in _target_scenes('train')
        for g in s.groups
    }
    assert {c for _, c in HELD_OUT_COMBOS} <= train_colours


def test_captions_name_counts_colours_and_relations():
    image, rec, caps = make_testbed_image('target', 3, 0, 64, 'industrial',
                                          'train')
    assert image.shape == (64, 64, 3) and len(set(caps)) == 5
    text = ' '.join(caps)
    assert 'storage tank' in text
    assert any(
        w in text for w in ('left of', 'right of', 'above', 'below', 'next to',
                            'away from', ' in the '))
    assert any(c in text for c in COLOURS)


def test_deterministic():
    a = make_testbed_image('target', 11, 4, 64, 'harbor', 'test')
    b = make_testbed_image('target', 11, 4, 64, 'harbor', 'test')
    c = make_testbed_image('target', 12, 4, 64, 'harbor', 'test')
    assert np.array_equal(a[0], b[0]) and a[1:] == b[1:]
    assert not np.array_equal(a[0], c[0])
    p1 = make_testbed_image('pretrain', 2, 0, 64, PRETRAIN_CLASSES[0], 'train')
    p2 = make_testbed_image('pretrain', 2, 0, 64, PRETRAIN_CLASSES[0], 'train')
    assert np.array_equal(p1[0], p2[0]) and p1[2] == p2[2]


def test_pretraining_domain_is_disjoint():
    assert not set(PRETRAIN_KINDS) & set(OBJECT_KINDS)
    assert not set(PRETRAIN_COLOURS) & set(COLOURS)
    assert not set(PRETRAIN_BACKGROUNDS) & set(BACKGROUNDS)
    scenes = [
        sample_pretrain_scene(PRETRAIN_CLASSES[i % 6], _rng(i))
        for i in range(40)
    ]
    for s in scenes:
        assert {g.kind for g in s.groups} <= set(PRETRAIN_KINDS)
        assert {ln.kind for ln in s.lines} <= {'fence', 'path'}
    _, _, caps = make_testbed_image('pretrain', 1, 0, 64, PRETRAIN_CLASSES[0],
                                    'train')
    words = set(' '.join(caps).split())
    target_words = {
        'plane', 'planes', 'ship', 'ships', 'tank', 'tanks', 'building',
        'buildings', 'vehicle', 'vehicles', 'court', 'courts', 'road', 'river',
        'runway'
    } | set(COLOURS)
    assert not words & target_words


def test_generate_testbed_cached(tmp_path):
    kw = dict(image_size=64, target_split=(6, 2, 4), pretrain_images=3, seed=1)
    out = generate_testbed(str(tmp_path), **kw)
    assert out == tb.testbed_dir(str(tmp_path), **kw)
    with open(osp.join(out, 'target', 'dataset_synthetic.json')) as f:
        data = json.load(f)
    splits = [im['split'] for im in data['images']]
    assert (splits.count('train'), splits.count('val'),
            splits.count('test')) == (6, 2, 4)
    assert all(im['class'] in SCENE_CLASSES for im in data['images'])
    assert all(len(im['sentences']) == 5 for im in data['images'])
    assert len(os.listdir(osp.join(out, 'pretrain', 'images'))) == 3
    ann = osp.join(out, 'target', 'dataset_synthetic.json')
    stamp = os.stat(ann).st_mtime_ns
    assert generate_testbed(str(tmp_path), **kw) == out  # reused
    assert os.stat(ann).st_mtime_ns == stamp
    assert tb.testbed_dir(str(tmp_path), **dict(kw, seed=2)) != out


def test_bad_params():
    with pytest.raises(ValueError, match='unknown testbed parameters'):
        tb.testbed_dir('x', image_szie=64)
    with pytest.raises(ValueError, match='target_split'):
        tb.testbed_dir('x', target_split=(1, 2))
    with pytest.raises(ValueError, match='domain'):
        make_testbed_image('other', 0, 0, 64, 'harbor', 'test')


def test_cli_testbed_profile(tmp_path, capsys):
    import importlib.util
    cli = osp.join(
        osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'tools',
        'dataset_converters', 'generate_synthetic.py')
    spec = importlib.util.spec_from_file_location('generate_synthetic', cli)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    args = [
        str(tmp_path), '--profile', 'testbed', '--image-size', '64', '--split',
        '3', '1', '2', '--num-images', '2', '--num-workers', '0'
    ]
    assert mod.main(args) == 0
    out = tb.testbed_dir(
        str(tmp_path),
        image_size=64,
        target_split=(3, 1, 2),
        pretrain_images=2)
    assert osp.isfile(osp.join(out, 'params.json'))
    assert mod.main(args[:4] + ['16']) == 2  # image size below 64
    assert 'image_size' in capsys.readouterr().err
