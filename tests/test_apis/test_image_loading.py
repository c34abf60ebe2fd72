# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Loading images with workers gives what loading in-process gives."""
import glob
import os.path as osp

import pytest
import torch

from rsitr_mm.apis.image_loading import load_image_batches
from rsitr_mm.apis.model_loading import (DEFAULT_PIPELINE,
                                         build_image_loader, load_images)


def test_workers_match_in_process_loading(shared_data, tmp_path):
    files = sorted(glob.glob(osp.join(shared_data, 'rsicd_sample', 'images',
                                      '*.jpg')))[:5]
    files += sorted(glob.glob(osp.join(shared_data, 'rsitmd_sample',
                                       'images', '*.tif')))[:2]
    if len(files) < 3:
        pytest.skip('no sample images')
    bad = tmp_path / 'broken.jpg'
    bad.write_bytes(b'not an image')
    paths = files[:2] + [str(bad)] + files[2:]
    batches = [paths[i:i + 3] for i in range(0, len(paths), 3)]
    loader = build_image_loader(DEFAULT_PIPELINE)
    expected = [load_images(b, loader) for b in batches]
    for workers in (0, 2):
        got = list(load_image_batches(batches, DEFAULT_PIPELINE,
                                      num_workers=workers))
        assert len(got) == len(expected)
        for (imgs, ok, failed), (e_imgs, e_ok, e_failed) in zip(got,
                                                                 expected):
            assert ok == e_ok and failed.keys() == e_failed.keys()
            assert all(torch.equal(a, b) for a, b in zip(imgs, e_imgs))
    assert 2 in expected[0][2]  # the broken file is reported, not raised
    with pytest.raises(ValueError, match='num_workers'):
        list(load_image_batches(batches, DEFAULT_PIPELINE, num_workers=-1))
