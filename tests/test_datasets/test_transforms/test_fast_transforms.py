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
              interpolation='bicubic', meta_keys=('img_path', ),
              backend='cv2', **load):
    return Compose([TRANSFORMS.build(t) for t in [
        dict(type='LoadImageFromFile', **load),
        dict(type='RandomResizedCrop', scale=scale,
             crop_ratio_range=(0.5, 1.0), interpolation=interpolation,
             backend=backend),
        dict(type='RandomFlip', prob=prob, direction=direction),
        dict(type='PackInputs', algorithm_keys=['text', 'image_id'],
             meta_keys=list(meta_keys)),
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
    assert list(pa) == list(pb)
    assert torch.equal(pa['inputs'], pb['inputs'])
    assert pa['inputs'].dtype == pb['inputs'].dtype
    assert pb['inputs'].is_contiguous()
    for key in ('text', 'image_id', 'img_path'):
        assert getattr(pa['data_samples'], key) == getattr(
            pb['data_samples'], key)
    assert pa['data_samples'].metainfo_keys() == \
        pb['data_samples'].metainfo_keys()
    for key in pa['data_samples'].metainfo_keys():
        va, vb = (getattr(p['data_samples'], key) for p in (pa, pb))
        assert type(va) is type(vb), key
        if isinstance(va, np.ndarray):
            np.testing.assert_array_equal(va, vb)
        else:
            assert va == vb, key
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
    first = FastPackInputs.format_input(np.flip(img, 1))
    np.testing.assert_array_equal(img, before)
    # outputs are new tensors (the flip's scratch image is reused)
    kept = first.clone()
    FastPackInputs.format_input(np.flip(255 - img, 1))
    assert torch.equal(first, kept)


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


_ALL_META = ('img_path', 'ori_shape', 'img_shape', 'flip', 'flip_direction')


@pytest.mark.parametrize('kwargs', [
    dict(scale=224), dict(scale=256, meta_keys=_ALL_META),
    dict(scale=(200, 240), meta_keys=_ALL_META), dict(prob=0.3),
    dict(direction='vertical', prob=0.7, meta_keys=_ALL_META),
    dict(direction='diagonal'), dict(interpolation='bilinear'),
    dict(interpolation='area'),
    # not covered by the fused path: the three transforms run in turn
    dict(direction=['horizontal', 'vertical'], prob=[0.3, 0.3]),
    dict(meta_keys=('img', 'img_path')), dict(backend='pillow'),
    dict(to_float32=True), dict(color_type='grayscale'),
])
def test_fused_identical_to_originals(shared_data, kwargs):
    paths = _images(shared_data)
    plain = _pipeline(**kwargs)
    fast = _pipeline(**kwargs)
    assert use_fast_transforms(fast.transforms, fuse=True) == 3
    assert [type(t) for t in fast.transforms] == [
        type(plain.transforms[0]), FastRandomResizedCrop]
    assert [type(t) for t in fast.transforms[1].fused] == [
        FastRandomFlip, FastPackInputs]
    for i in range(40):
        path = paths[i % len(paths)]
        _same(_run(plain, path, i), _run(fast, path, i))


def test_fused_keeps_flipped_annotations():
    """A sample with a segmentation map goes the three-transform way."""
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    seg = rng.integers(0, 5, (40, 50), dtype=np.uint8)
    plain = [RandomResizedCrop(scale=16), RandomFlip(prob=0.5),
             PackInputs(meta_keys=('img_shape', 'flip'))]
    fast = list(plain)
    use_fast_transforms(fast, fuse=True)
    assert len(fast) == 1
    seen = set()
    for seed in range(20):
        outs = []
        for pipe in (plain, fast):
            np.random.seed(seed)
            results = dict(img=img, gt_seg_map=seg)
            for t in pipe:
                results = t(results)
            outs.append((results, np.random.random_sample()))
        (a, ua), (b, ub) = outs
        assert torch.equal(a['inputs'], b['inputs']) and ua == ub
        assert a['data_samples'].flip == b['data_samples'].flip
        seen.add(a['data_samples'].flip)
    assert seen == {True, False}


def test_fused_outputs_do_not_share_memory():
    rng = np.random.default_rng(2)
    imgs = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
            for _ in range(2)]
    pipe = [RandomResizedCrop(scale=32), RandomFlip(prob=0.5),
            PackInputs()]
    use_fast_transforms(pipe, fuse=True)
    crop = pipe[0]
    outs = []
    for seed, img in enumerate(imgs * 3):
        np.random.seed(seed)
        outs.append(crop(dict(img=img))['inputs'])
    kept = [o.clone() for o in outs]
    for seed, img in enumerate(imgs):  # scratch images are reused
        np.random.seed(seed + 10)
        crop(dict(img=img))
    for o, k in zip(outs, kept):
        assert torch.equal(o, k)
    ptrs = {o.untyped_storage().data_ptr() for o in outs}
    assert len(ptrs) == len(outs)


def test_fused_scratch_is_per_thread():
    import threading

    from rsitr_mm.datasets.transforms.fast_transforms import _scratch
    here = _scratch((4, 5, 3))
    assert _scratch((4, 5, 3))[0] is here[0]
    there = []
    th = threading.Thread(target=lambda: there.append(_scratch((4, 5, 3))))
    th.start()
    th.join()
    assert there[0][0] is not here[0] and there[0][1] is not here[1]


def test_fuse_only_exact_sequences():
    crop, flip, pack = (RandomResizedCrop(scale=8), RandomFlip(prob=0.5),
                        PackInputs())
    # not consecutive: nothing fused
    transforms = [crop, PackInputs(), flip, pack]
    assert use_fast_transforms(transforms, fuse=True) == 4
    assert len(transforms) == 4 and not transforms[0].fused
    # a fused crop is copied and pickled with its tail
    import copy
    import pickle
    transforms = [crop, flip, pack]
    use_fast_transforms(transforms, fuse=True)
    assert len(transforms) == 1
    assert 'FastRandomFlip' in repr(transforms[0])
    img = np.random.default_rng(0).integers(0, 256, (20, 20, 3),
                                            dtype=np.uint8)
    for clone in (copy.deepcopy(transforms[0]),
                  pickle.loads(pickle.dumps(transforms[0]))):
        np.random.seed(1)
        a = transforms[0](dict(img=img))['inputs']
        np.random.seed(1)
        assert torch.equal(a, clone(dict(img=img))['inputs'])
    with pytest.raises(TypeError, match='fuse'):
        FastRandomResizedCrop(scale=8).fuse(flip, pack)


def test_fused_under_cache_random_params_behaves_as_chain():
    """mmcv's cache_random_params reaches the fused flip as well."""
    img = np.random.default_rng(1).integers(0, 256, (64, 64, 3),
                                            dtype=np.uint8)
    chain = [RandomResizedCrop(scale=32), RandomFlip(prob=0.5),
             PackInputs()]
    fused = [FastRandomResizedCrop(scale=32), FastRandomFlip(prob=0.5),
             FastPackInputs()]
    use_fast_transforms(fused, fuse=True)

    def run(pipe, seed):
        np.random.seed(seed)
        results = dict(img=img.copy())
        for t in pipe:
            results = t(results)
        return results['inputs']

    outs = {}
    for name, pipe in (('chain', chain), ('fused', fused)):
        try:
            with cache_random_params(pipe):
                outs[name] = [run(pipe, seed) for seed in range(4)]
        except RuntimeError as e:  # mmcv refuses RandomResizedCrop
            outs[name] = [str(e).split(' of ')[0]]
        outs[name] += [run(pipe, seed) for seed in range(4)]
    assert len(outs['chain']) == len(outs['fused'])
    for a, b in zip(outs['chain'], outs['fused']):
        if isinstance(a, str):
            assert a == b
        else:
            assert torch.equal(a, b)
    # mmcv's context reaches the flip inside the fused crop
    with cache_random_params(fused):
        assert fused[0].fused[0].__dict__.get('_cache_enabled')
    assert '_cache_enabled' not in fused[0].fused[0].__dict__
    # the flip alone can be cached: the fused crop then runs the chain
    chain, fused = chain[1:], [FastRandomResizedCrop(scale=64),
                               FastRandomFlip(prob=0.5), FastPackInputs()]
    chain.insert(0, RandomResizedCrop(scale=64, crop_ratio_range=(1, 1),
                                      aspect_ratio_range=(1, 1)))
    fused[0].crop_ratio_range = fused[0].aspect_ratio_range = (1, 1)
    use_fast_transforms(fused, fuse=True)
    for pipe in (chain, fused):
        with cache_random_params(pipe[1:] if pipe is chain else
                                 list(pipe[0])):
            outs[id(pipe)] = [run(pipe, seed) for seed in range(6)]
    flips = [torch.equal(o, outs[id(chain)][0]) for o in outs[id(chain)]]
    assert all(flips)  # cached: the first sample's flip for all
    for a, b in zip(outs[id(chain)], outs[id(fused)]):
        assert torch.equal(a, b)


@pytest.mark.parametrize('kwargs', [
    dict(), dict(crop_ratio_range=(0.08, 1.0)),
    dict(crop_ratio_range=(1, 1), aspect_ratio_range=(1, 1)),
    dict(crop_ratio_range=(0.9, 0.95), aspect_ratio_range=(0.1, 10.0)),
    dict(aspect_ratio_range=(2.0, 5.0), max_attempts=3),
    dict(max_attempts=1), dict(max_attempts=0),
])
def test_crop_params_same_draws(kwargs):
    from rsitr_mm.datasets.transforms.fast_transforms import (
        _RAND_CROP_PARAMS, _crop_params)
    t = RandomResizedCrop(scale=32, **{'crop_ratio_range': (0.5, 1.0),
                                       **kwargs})
    for shape in ((256, 256, 3), (224, 224, 3), (500, 500, 3), (40, 300),
                  (300, 40, 3), (3, 3, 3), (1, 7)):
        img = np.empty(shape, np.uint8)
        for seed in range(150):
            np.random.seed(seed)
            ref = _RAND_CROP_PARAMS(t, img), np.random.random_sample()
            np.random.seed(seed)
            got = _crop_params(t, img), np.random.random_sample()
            assert ref == got, (shape, seed)
            assert [type(v) for v in ref[0]] == [type(v) for v in got[0]]


def test_uniform_check_is_exact_here_and_leaves_global_state():
    from rsitr_mm.datasets.transforms.fast_transforms import (
        _UNIFORM_BY_SAMPLE, _uniform_by_sample_exact)
    _UNIFORM_BY_SAMPLE.clear()
    np.random.seed(7)
    before = np.random.get_state()
    import math
    # the ranges of the shipped configs take the fast path on this build
    assert _uniform_by_sample_exact(0.5, 1.0)
    assert _uniform_by_sample_exact(math.log(3 / 4), math.log(4 / 3))
    assert not _uniform_by_sample_exact(0.0, float('inf'))
    after = np.random.get_state()
    np.testing.assert_array_equal(before[1], after[1])
    assert before[2:] == after[2:]


@pytest.mark.parametrize('channels', [2, 4])
def test_fused_other_channel_counts(channels):
    img = np.random.default_rng(channels).integers(
        0, 256, (48, 40, channels), dtype=np.uint8)
    plain = [RandomResizedCrop(scale=(24, 20), interpolation='bicubic'),
             RandomFlip(prob=0.5, direction='diagonal'),
             PackInputs(meta_keys=('img_shape', 'flip_direction'))]
    fast = list(plain)
    use_fast_transforms(fast, fuse=True)
    assert len(fast) == 1
    for seed in range(30):
        outs = []
        for pipe in (plain, fast):
            np.random.seed(seed)
            results = dict(img=img)
            for t in pipe:
                results = t(results)
            outs.append((results, np.random.random_sample()))
        _same_packed(*outs)


def _same_packed(a, b):
    (pa, ua), (pb, ub) = a, b
    assert torch.equal(pa['inputs'], pb['inputs']) and ua == ub
    assert pb['inputs'].is_contiguous()
    sa, sb = pa['data_samples'], pb['data_samples']
    assert sa.metainfo_keys() == sb.metainfo_keys()
    for key in sa.metainfo_keys():
        assert getattr(sa, key) == getattr(sb, key), key
