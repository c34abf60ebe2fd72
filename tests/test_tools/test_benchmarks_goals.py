# Copyright (c) rsitr_mm contributors. All rights reserved.
"""The goal scripts' verdicts and exactness checks (never their speed)."""
import glob
import importlib.util
import os.path as osp

import pytest
from mmengine.registry import init_default_scope

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _load(name):
    path = osp.join(REPO, 'tools', 'benchmarks', name + '.py')
    spec = importlib.util.spec_from_file_location(f'_bench_{name}', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_framework_overhead_verdict():
    fo = _load('framework_overhead')
    assert fo.verdict(0.4, 1.6, 20) == 'HOLDS'
    assert fo.verdict(3.1, 5.0, 20) == 'NOT MET'
    assert fo.verdict(1.0, 4.0, 20).startswith('NOT VERIFIED')
    assert fo.verdict(0.1, 0.2, 3).startswith('NOT VERIFIED')
    blocks = [(1.00 + 0.01 * (i % 3), 1.0) for i in range(20)]
    low, high = fo.bootstrap_interval(blocks)
    assert low <= 100 * (sum(r for r, _ in blocks) / 20 - 1) <= high
    assert (low, high) == fo.bootstrap_interval(blocks)  # seeded
    assert fo.quartiles([3, 1, 2, 5, 4]) == (1, 2, 3, 4, 5)


def test_image_cache_speed_variants_identical(shared_data, tmp_path):
    ics = _load('image_cache_speed')
    from mmengine.config import Config

    from rsitr_mm.datasets.image_cache import ImageCache
    from rsitr_mm.datasets.transforms import (FastRandomResizedCrop,
                                              LoadImageFromCache)
    init_default_scope('mmpretrain')
    files = sorted(glob.glob(osp.join(shared_data, 'ucm_sample', 'images',
                                      '*')))[:3]
    if not files:
        pytest.skip('ucm_sample is absent')
    cfg = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'datasets',
                                   'ucm.py'))
    cache = ImageCache.build(files, str(tmp_path), progress=False)
    pipes = ics.pipelines(cfg.train_pipeline, cache)
    assert list(pipes) == list(ics.VARIANTS)
    assert isinstance(pipes['cache'].transforms[0], LoadImageFromCache)
    assert type(pipes['cache'].transforms[1]) is FastRandomResizedCrop
    assert type(pipes['decode'].transforms[1]) is not FastRandomResizedCrop
    assert ics.identical(pipes, files, rounds=2)
