# Copyright (c) rsitr_mm contributors. All rights reserved.
"""The decoded-image cache gives exactly what decoding each time gives."""
import glob
import os
import os.path as osp
import pickle
import random
import shutil

import numpy as np
import pytest
import torch
from mmcv.transforms import LoadImageFromFile
from mmpretrain.registry import DATASETS

import rsitr_mm  # noqa: F401
from rsitr_mm.datasets.image_cache import ImageCache
from rsitr_mm.datasets.transforms import (FastPackInputs, FastRandomFlip,
                                          FastRandomResizedCrop,
                                          LoadImageFromCache)

TRAIN_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.5, 1.0),
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs', algorithm_keys=['text', 'image_id', 'text_id'],
         meta_keys=['img_path', 'filename']),
]


def _sample_images(shared_data, n=4):
    paths = []
    for sub in ('rsicd_sample', 'rsitmd_sample', 'ucm_sample',
                'sydney_sample'):
        found = sorted(glob.glob(osp.join(shared_data, sub, 'images', '*')))
        paths += found[:n]
    if not paths:
        pytest.skip('no sample images')
    return paths


def test_same_pixels_and_keys_as_decoding(shared_data, tmp_path):
    paths = _sample_images(shared_data)
    cache = ImageCache.build(paths, str(tmp_path), progress=False)
    assert len(cache) == len(paths)
    for to_float32 in (False, True):
        plain = LoadImageFromFile(to_float32=to_float32)
        cached = LoadImageFromCache(cache, loader=plain)
        for p in paths:
            a = plain(dict(img_path=p))
            b = cached(dict(img_path=p))
            assert a.keys() == b.keys()
            assert a['img'].dtype == b['img'].dtype
            np.testing.assert_array_equal(a['img'], b['img'])
            assert a['img_shape'] == b['img_shape']
            assert a['ori_shape'] == b['ori_shape']
    # a miss falls back to decoding; the cached array is writable
    out = LoadImageFromCache(cache)(dict(img_path=paths[0]))
    out['img'][0, 0] = 0
    assert LoadImageFromCache(cache)(dict(img_path=paths[0]))['img'] \
        .flags.writeable
    # copy=False: a read-only view of the map, same pixels; writing raises
    view = LoadImageFromCache(cache, copy=False)(dict(img_path=paths[1]))
    np.testing.assert_array_equal(
        view['img'], LoadImageFromFile()(dict(img_path=paths[1]))['img'])
    with pytest.raises(ValueError, match='read-only'):
        view['img'][0, 0] = 0


def test_built_once_keyed_by_content_and_picklable(shared_data, tmp_path):
    src = _sample_images(shared_data, n=2)
    paths = []
    for i, p in enumerate(src):
        dst = tmp_path / 'img' / f'{i}{osp.splitext(p)[1]}'
        dst.parent.mkdir(exist_ok=True)
        shutil.copy(p, dst)
        paths.append(str(dst))
    cdir = str(tmp_path / 'cache')
    first = ImageCache.build(paths, cdir, progress=False)
    mtime = os.stat(first.data_file).st_mtime_ns
    again = ImageCache.build(paths, cdir, progress=False)
    assert again.data_file == first.data_file
    assert os.stat(again.data_file).st_mtime_ns == mtime  # not rebuilt
    # no temporary file left behind
    assert not [f for f in os.listdir(cdir) if f.endswith('.tmp')]
    # a changed file gives a new key, so a new cache
    shutil.copy(src[-1], paths[0])
    changed = ImageCache.build(paths, cdir, progress=False)
    assert changed.key != first.key
    np.testing.assert_array_equal(
        changed.get(paths[0]), LoadImageFromFile()(
            dict(img_path=paths[0]))['img'])
    # workers get a pickled copy that re-opens the memory map
    changed.get(paths[1])
    clone = pickle.loads(pickle.dumps(LoadImageFromCache(changed)))
    assert clone.cache._data is None
    np.testing.assert_array_equal(clone.cache.get(paths[1]),
                                  changed.get(paths[1]))


def _seeded(dataset, i, seed=0):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return dataset[i]


def _rsicd_sample_cfg(shared_data):
    """Dataset config of the RSICD sample (all splits, train pipeline)."""
    root = osp.join(shared_data, 'rsicd_sample')
    ann = osp.join(root, 'dataset_rsicd_sample.json')
    if not osp.isfile(ann):
        pytest.skip('rsicd_sample is absent')
    return dict(type='RSICD', ann_file=ann, data_prefix=dict(
        img_path=osp.join(root, 'images')), split=['train', 'val', 'test'],
        pipeline=TRAIN_PIPELINE, label_rule=None)


def test_dataset_option_gives_identical_train_samples(shared_data, tmp_path):
    common = _rsicd_sample_cfg(shared_data)
    plain = DATASETS.build(common)
    cached = DATASETS.build(dict(
        common, image_cache=dict(cache_dir=str(tmp_path), progress=False)))
    # the exact fast transforms are swapped in, the crop taking over the
    # flip and the packing; the crop reads a view
    assert [type(t) for t in cached.pipeline.transforms] == [
        LoadImageFromCache, FastRandomResizedCrop]
    assert [type(t) for t in cached.pipeline.transforms[1].fused] == [
        FastRandomFlip, FastPackInputs]
    assert cached.pipeline.transforms[0].copy is False
    originals = DATASETS.build(dict(
        common, image_cache=dict(cache_dir=str(tmp_path), progress=False,
                                 fast_transforms=False)))
    assert [type(t) for t in originals.pipeline.transforms][1:] == [
        type(t) for t in plain.pipeline.transforms][1:]
    assert originals.pipeline.transforms[0].copy is True
    for i in range(0, len(plain), max(1, len(plain) // 12)):
        a = _seeded(plain, i, seed=i)
        mt_key, mt_pos = np.random.get_state()[1:3]
        for other in (cached, originals):
            b = _seeded(other, i, seed=i)
            # the same random draws were made
            np.testing.assert_array_equal(np.random.get_state()[1], mt_key)
            assert np.random.get_state()[2] == mt_pos
            assert torch.equal(a['inputs'], b['inputs'])
            assert b['inputs'].is_contiguous()
            assert list(a) == list(b)
            assert a['data_samples'].metainfo_keys() == \
                b['data_samples'].metainfo_keys()
            for key in ('img_path', 'text', 'image_id', 'text_id'):
                assert getattr(a['data_samples'], key) == getattr(
                    b['data_samples'], key)


def _as_list(batch):
    return batch


def _seed_worker(worker_id):
    np.random.seed(torch.initial_seed() % 2**32)


def test_cached_dataset_in_loader_workers(shared_data, tmp_path):
    """Worker processes (fused transforms, shared map) give the same."""
    common = _rsicd_sample_cfg(shared_data)
    outs = []
    for extra in (dict(), dict(image_cache=dict(cache_dir=str(tmp_path),
                                                progress=False))):
        loader = torch.utils.data.DataLoader(
            DATASETS.build(dict(common, **extra)), batch_size=8,
            num_workers=2, collate_fn=_as_list,
            worker_init_fn=_seed_worker,
            generator=torch.Generator().manual_seed(0))
        outs.append([s['inputs'] for batch in loader for s in batch])
    assert len(outs[0]) == len(outs[1]) > 0
    for a, b in zip(*outs):
        assert torch.equal(a, b)


def test_bad_image_cache_config(shared_data, tmp_path):
    root = osp.join(shared_data, 'rsicd_sample')
    ann = osp.join(root, 'dataset_rsicd_sample.json')
    if not osp.isfile(ann):
        pytest.skip('rsicd_sample is absent')
    common = dict(type='RSICD', ann_file=ann, data_prefix=dict(
        img_path=osp.join(root, 'images')), label_rule=None)
    with pytest.raises(ValueError, match='image_cache'):
        DATASETS.build(dict(common, pipeline=TRAIN_PIPELINE,
                            image_cache=dict(folder=str(tmp_path))))
    with pytest.raises(ValueError, match='LoadImageFromFile'):
        DATASETS.build(dict(common, pipeline=TRAIN_PIPELINE[1:],
                            image_cache=dict(cache_dir=str(tmp_path))))
