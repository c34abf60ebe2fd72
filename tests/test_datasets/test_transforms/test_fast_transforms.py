# Copyright (c) rsitr_mm contributors. All rights reserved.
"""The fast train transforms give exactly what the originals give."""
import glob
import os.path as osp
import random

import cv2
import numpy as np
import pytest
import torch
from mmcv.transforms import RandomFlip
from mmcv.transforms.utils import cache_random_params
from mmengine.dataset import Compose
from mmpretrain.datasets.transforms import PackInputs, RandomResizedCrop
from mmpretrain.registry import TRANSFORMS

import rsitr_mm  # noqa: F401
from rsitr_mm.datasets.transforms import (FastPackInputs, FastRandomFlip,
                                          FastRandomResizedCrop,
                                          use_fast_transforms)


def _pipeline(scale=224, prob=0.5, direction='horizontal',
              interpolation='bicubic'):
    return Compose([TRANSFORMS.build(t) for t in [
        dict(type='LoadImageFromFile'),
        dict(type='RandomResizedCrop', scale=scale,
             crop_ratio_range=(0.5, 1.0), interpolation=interpolation),
        dict(type='RandomFlip', prob=prob, direction=direction),
        dict(type='PackInputs', algorithm_keys=['text', 'image_id'],
             meta_keys=['img_path']),
    ]])


def _images(shared_data):
    paths = []
    for sub in ('rsicd_sample', 'rsitmd_sample', 'ucm_sample',
                'sydney_sample'):
        paths += sorted(glob.glob(osp.join(shared_data, sub, 'images',
                                           '*')))[:3]
    if not paths:
        pytest.skip('no sample images')
    return paths


def _run(pipe, path, seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    out = pipe(dict(img_path=path, text='a caption', image_id=seed))
    return out, np.random.random_sample()  # the random state after it


def _same(a, b):
    (pa, ua), (pb, ub) = a, b
    assert torch.equal(pa['inputs'], pb['inputs'])
    assert pa['inputs'].dtype == pb['inputs'].dtype
    assert pb['inputs'].is_contiguous()
    for key in ('text', 'image_id', 'img_path'):
        assert getattr(pa['data_samples'], key) == getattr(
            pb['data_samples'], key)
    assert pa['data_samples'].metainfo_keys() == \
        pb['data_samples'].metainfo_keys()
    assert ua == ub


@pytest.mark.parametrize('kwargs', [
    dict(scale=224), dict(scale=256), dict(scale=(200, 240)),
    dict(prob=0.3), dict(direction='vertical', prob=0.7),
    dict(direction='diagonal'), dict(interpolation='bilinear'),
])
def test_identical_to_originals(shared_data, kwargs):
    paths = _images(shared_data)
    plain = _pipeline(**kwargs)
    fast = _pipeline(**kwargs)
    assert use_fast_transforms(fast.transforms) == 3
    assert [type(t) for t in fast.transforms[1:]] == [
        FastRandomResizedCrop, FastRandomFlip, FastPackInputs]
    for i in range(40):
        path = paths[i % len(paths)]
        _same(_run(plain, path, i), _run(fast, path, i))
    # settings were carried over
    assert repr(plain.transforms[1]).split('(', 1)[1] == \
        repr(fast.transforms[1]).split('(', 1)[1]


def test_flip_draw_matches_random_choice():
    flip = RandomFlip(prob=0.5, direction='horizontal')
    fast = FastRandomFlip(prob=0.5, direction='horizontal')
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    seen = set()
    for seed in range(200):
        np.random.seed(seed)
        a = flip(dict(img=img))
        ua = np.random.random_sample()
        np.random.seed(seed)
        b = fast(dict(img=img))
        assert (a['flip'], a['flip_direction']) == (b['flip'],
                                                    b['flip_direction'])
        np.testing.assert_array_equal(a['img'], b['img'])
        assert ua == np.random.random_sample()
        seen.add(a['flip'])
    assert seen == {True, False}


def test_pack_layouts():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    for view in (img, np.flip(img, 1), np.flip(img, 0), np.flip(img, (0, 1)),
                 img[:, 2:20], img[::2], img[..., :2],
                 rng.integers(0, 256, (5, 6, 4), dtype=np.uint8),
                 img[..., 0], img.astype(np.float32), img[:0]):
        ref = PackInputs.format_input(view.copy())
        got = FastPackInputs.format_input(view)
        assert torch.equal(ref, got) and ref.dtype == got.dtype
        assert got.is_contiguous()
    # the input is not modified
    before = img.copy()
    FastPackInputs.format_input(np.flip(img, 1))
    np.testing.assert_array_equal(img, before)


def _cached_draws(t, img):
    """Outputs under mmcv's cache_random_params, then after it."""
    outs = []
    try:
        with cache_random_params(t):
            for seed in range(3):
                np.random.seed(seed)
                outs.append(t(dict(img=img.copy()))['img'])
    except RuntimeError as e:  # mmcv refuses some transforms
        outs.append(str(e).split(' of ')[0])
    for seed in range(4):
        np.random.seed(seed)
        outs.append(t(dict(img=img.copy()))['img'])
    return outs


def test_cache_random_params_behaves_as_originals():
    """mmcv's randomness caching (e.g. TransformBroadcaster) is kept."""
    img = np.random.default_rng(1).integers(0, 256, (64, 64, 3),
                                            dtype=np.uint8)
    for ref, fast in ((RandomResizedCrop(scale=32),
                       FastRandomResizedCrop(scale=32)),
                      (RandomFlip(prob=0.5), FastRandomFlip(prob=0.5))):
        a, b = _cached_draws(ref, img), _cached_draws(fast, img)
        assert len(a) == len(b)
        for x, y in zip(a, b):
            if isinstance(x, str):
                assert x == y
            else:
                np.testing.assert_array_equal(x, y)


def test_only_exact_types_replaced():

    class MyCrop(RandomResizedCrop):
        pass

    transforms = [MyCrop(scale=8), RandomFlip(prob=0.5),
                  PackInputs(), cv2]
    assert use_fast_transforms(transforms) == 2
    assert type(transforms[0]) is MyCrop
    assert type(transforms[1]) is FastRandomFlip
    assert transforms[1].prob == 0.5
