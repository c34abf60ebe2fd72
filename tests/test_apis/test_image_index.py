# Copyright (c) rsitr_mm contributors. All rights reserved.
"""ImageIndex: build, load, query round trip, resume, bad files, identity."""
import json
import os
import os.path as osp
import shutil

import numpy as np
import pytest
import torch

from rsitr_mm.apis import (ImageIndex, encode_image_files, init_retriever,
                           list_images, search_by_image, search_by_text)
from rsitr_mm.datasets.synthetic import generate_synthetic_dataset

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO_CONFIG = osp.join(REPO, 'configs', 'demo_tinycnn-bigru_synthetic.py')


def tiny_options(ann_file: str) -> dict:
    """cfg_options shrinking the demo model to a few thousand weights."""
    return dict(
        model=dict(
            image_encoder=dict(
                base_channels=8, num_stages=3, out_indices=(2, )),
            image_in_channels=32,
            text_encoder=dict(
                ann_files=[ann_file], word_dim=16, hidden_dim=32),
            text_in_channels=32,
            embed_dim=32))


def make_checkpoint(tiny_demo, path: str, ann_file: str, calib_images,
                    seed: int = 0):
    """Random tiny demo model saved as a checkpoint, its BatchNorm
    statistics set from ``calib_images``."""
    torch.manual_seed(seed)
    model = init_retriever(DEMO_CONFIG, cfg_options=tiny_options(ann_file))
    return tiny_demo.save_calibrated(model, calib_images, path)


@pytest.fixture(scope='module')
def scene(tmp_path_factory, tiny_demo):
    root = tmp_path_factory.mktemp('index')
    data = str(root / 'data')
    generate_synthetic_dataset(
        data, num_images=23, image_size=32, seed=1, split=(13, 5, 5),
        progress=False)
    ann = osp.join(data, 'dataset_synthetic.json')
    images = osp.join(data, 'images')
    ckpt = make_checkpoint(
        tiny_demo, str(root / 'tiny.pth'), ann,
        [osp.join(images, f) for f in list_images(images)])
    model = init_retriever(DEMO_CONFIG, ckpt, cfg_options=tiny_options(ann))
    return dict(root=root, ann=ann, images=images, ckpt=ckpt, model=model)


def test_round_trip_by_image(scene, tmp_path):
    model, images = scene['model'], scene['images']
    index = ImageIndex.build(
        model, images, str(tmp_path / 'idx'), batch_size=5, progress=False)
    names = list_images(images)
    assert len(index) == len(names) == 23
    assert index.files == names
    assert index.embeddings.shape == (23, 32)
    assert isinstance(index.embeddings, np.memmap)
    # rows are the model's embeddings of those files, unit norm
    direct, ok, failed = encode_image_files(model, index.paths)
    assert ok == list(range(23)) and not failed
    np.testing.assert_allclose(index.embeddings, direct.numpy(), atol=1e-6)
    np.testing.assert_allclose(
        np.linalg.norm(index.embeddings, axis=1), 1.0, atol=1e-5)

    queries = [index.paths[i] for i in (0, 7, 22)]
    result = search_by_image(model, index, queries, k=3)
    for qi, i in enumerate((0, 7, 22)):
        assert result.indices[qi, 0] == i
        assert result.items[qi][0] == queries[qi]
        assert result.scores[qi, 0] == pytest.approx(1.0, abs=1e-5)
        assert result.scores[qi, 1] < result.scores[qi, 0] - 1e-3

    text = search_by_text(model, index, ['a large river', 'a forest'], k=4)
    assert text.scores.shape == (2, 4)
    assert all(p in index.paths for row in text.items for p in row)

    meta = json.load(open(tmp_path / 'idx' / 'meta.json'))
    assert meta['complete'] and meta['count'] == 23
    assert meta['skipped'] == {}
    assert meta['identity']['checkpoint'] == osp.abspath(scene['ckpt'])
    assert len(meta['identity']['checkpoint_sha256']) == 16
    assert meta['identity']['embed_dim'] == 32
    # building again on a complete index is a no-op returning it
    again = ImageIndex.build(
        model, images, str(tmp_path / 'idx'), batch_size=5, progress=False)
    np.testing.assert_array_equal(again.embeddings, index.embeddings)


def test_float16_storage(scene, tmp_path):
    model = scene['model']
    files = [
        osp.join(scene['images'], f) for f in list_images(scene['images'])
    ][:9]
    index = ImageIndex.build(
        model, files, str(tmp_path / 'idx16'), batch_size=4,
        dtype='float16', progress=False)
    assert index.embeddings.dtype == np.float16
    assert index.meta['dtype'] == 'float16' and index.meta['root'] is None
    assert index.paths == files
    direct = encode_image_files(model, files)[0].numpy()
    np.testing.assert_allclose(index.embeddings, direct, atol=1e-3)
    result = search_by_image(model, index, files[4], k=2)
    assert result.indices[0, 0] == 4
    assert result.scores[0, 0] == pytest.approx(1.0, abs=2e-3)
    loaded = ImageIndex.load(str(tmp_path / 'idx16'), mmap=False)
    assert not isinstance(loaded.embeddings, np.memmap)
    np.testing.assert_array_equal(loaded.embeddings, index.embeddings)


def test_resume_after_interruption(scene, tmp_path, monkeypatch):
    model, images = scene['model'], scene['images']
    full = ImageIndex.build(
        model, images, str(tmp_path / 'full'), batch_size=6, progress=False)

    calls = {'n': 0}
    original = model.extract_feat

    def crash_after_first_batch(*args, **kwargs):
        calls['n'] += 1
        if calls['n'] == 2:
            raise KeyboardInterrupt('simulated crash')
        return original(*args, **kwargs)

    monkeypatch.setattr(model, 'extract_feat', crash_after_first_batch)
    part_dir = str(tmp_path / 'part')
    with pytest.raises(KeyboardInterrupt):
        ImageIndex.build(model, images, part_dir, batch_size=6,
                         progress=False)
    meta = json.load(open(osp.join(part_dir, 'meta.json')))
    assert meta['complete'] is False
    assert meta['cursor'] == 6 and meta['count'] == 6
    with pytest.raises(RuntimeError, match='incomplete'):
        ImageIndex.load(part_dir)

    # resume: only the 17 remaining images (3 batches) are encoded
    calls['n'] = 100
    resumed = ImageIndex.build(
        model, images, part_dir, batch_size=6, progress=False)
    assert calls['n'] == 103
    assert resumed.files == full.files
    np.testing.assert_array_equal(resumed.embeddings, full.embeddings)
    assert json.load(open(osp.join(part_dir, 'meta.json'))) == {
        **json.load(open(tmp_path / 'full' / 'meta.json')),
    }


def test_corrupt_and_non_image_files_are_skipped(scene, tmp_path):
    model = scene['model']
    folder = tmp_path / 'imgs'
    shutil.copytree(scene['images'], folder / 'sub')
    names = list_images(str(folder))[:6]
    for name in list_images(str(folder))[6:]:
        os.remove(folder / name)
    good = (folder / names[0]).read_bytes()
    (folder / 'truncated.png').write_bytes(good[:len(good) // 2])
    (folder / 'notes.png').write_text('not an image at all')
    (folder / 'readme.txt').write_text('ignored: not an image extension')

    with pytest.warns(UserWarning, match='skipped'):
        index = ImageIndex.build(
            model, str(folder), str(tmp_path / 'idx'), batch_size=4,
            progress=False)
    assert sorted(index.skipped) == ['notes.png', 'truncated.png']
    assert all(reason for reason in index.skipped.values())
    assert index.files == names
    assert index.embeddings.shape == (6, 32)
    meta = json.load(open(tmp_path / 'idx' / 'meta.json'))
    assert sorted(meta['skipped']) == ['notes.png', 'truncated.png']
    assert meta['count'] == 6 and meta['num_candidates'] == 8
    # embeddings are those of the good files, in order
    direct = encode_image_files(model, index.paths)[0].numpy()
    np.testing.assert_allclose(index.embeddings, direct, atol=1e-6)


def test_different_model_is_refused(scene, tmp_path, tiny_demo):
    model = scene['model']
    files = [
        osp.join(scene['images'], f) for f in list_images(scene['images'])
    ][:5]
    index_dir = str(tmp_path / 'idx')
    index = ImageIndex.build(model, files, index_dir, batch_size=2,
                             progress=False)
    other_ckpt = make_checkpoint(
        tiny_demo, str(tmp_path / 'other.pth'), scene['ann'], files, seed=1)
    other = init_retriever(
        DEMO_CONFIG, other_ckpt, cfg_options=tiny_options(scene['ann']))
    with pytest.raises(ValueError, match='different model'):
        search_by_text(other, index, 'a forest', k=2)
    with pytest.raises(ValueError, match='weights_sha256'):
        search_by_image(other, index, files[0], k=2)
    with pytest.raises(ValueError, match='different model'):
        ImageIndex.build(other, files, index_dir, progress=False)
    # the same model is accepted; a different storage type is refused
    index.check_model(model)
    with pytest.raises(ValueError, match='float16'):
        ImageIndex.build(model, files, index_dir, dtype='float16',
                         progress=False)


def test_real_rsicd_images(shared_data, tmp_path, scene, tiny_demo):
    image_dir = osp.join(shared_data, 'rsicd_sample', 'images')
    if not osp.isdir(image_dir):
        pytest.skip('rsicd_sample is absent')
    files = [osp.join(image_dir, f) for f in list_images(image_dir)][:12]
    ckpt = make_checkpoint(tiny_demo, str(tmp_path / 'rsicd.pth'),
                           scene['ann'], files)
    model = init_retriever(
        DEMO_CONFIG, ckpt, cfg_options=tiny_options(scene['ann']))
    index = ImageIndex.build(model, files, str(tmp_path / 'idx'),
                             batch_size=5, progress=False)
    assert len(index) == 12 and not index.skipped
    result = search_by_image(model, index, files[::4], k=3)
    np.testing.assert_array_equal(result.indices[:, 0], [0, 4, 8])
    np.testing.assert_allclose(result.scores[:, 0], 1.0, atol=1e-5)
    assert (result.scores[:, 1] < result.scores[:, 0] - 1e-4).all()


def test_worker_loading_builds_the_same_index(scene, tmp_path):
    model, images = scene['model'], scene['images']
    serial = ImageIndex.build(model, images, str(tmp_path / 'a'),
                              batch_size=4, progress=False)
    workers = ImageIndex.build(model, images, str(tmp_path / 'b'),
                               batch_size=4, progress=False, num_workers=2)
    assert workers.files == serial.files
    np.testing.assert_array_equal(np.asarray(workers.embeddings),
                                  np.asarray(serial.embeddings))
