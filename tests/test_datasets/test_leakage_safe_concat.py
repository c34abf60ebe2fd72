# Copyright (c) rsitr_mm contributors. All rights reserved.
"""LeakageSafeConcatDataset: drops, re-indexing, labels, configs."""
import json
from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import DATASETS

import rsitr_mm  # noqa: F401
from rsitr_mm.datasets import LeakageSafeConcatDataset

REPO = Path(__file__).resolve().parents[2]
ANN = REPO.parent / 'shared' / 'data' / 'annotations'
RSICD_JSON = ANN / 'rsicd' / 'dataset_rsicd_reconstructed.json'
RSITMD_JSON = ANN / 'rsitmd' / 'dataset_rsitmd_reconstructed.json'


def img(filename, caps, split='train'):
    return dict(filename=filename, split=split,
                sentences=[dict(raw=c) for c in caps])


def uniq(tag):
    return [f'{tag} caption {j}' for j in range(5)]


@pytest.fixture()
def two_sets(tmp_path):
    """A (RSICD-like) and B (RSITMD-like); a2 copies B's test image b9."""
    a = dict(images=[
        img('airport_1.jpg', uniq('a1')),
        img('airport_2.jpg', uniq('b9')[:3] + ['x', 'y']),
        img('beach_1.jpg', uniq('a3')),
        img('beach_9.jpg', uniq('a4'), split='test'),
    ])
    b = dict(images=[
        img('beach_1.tif', uniq('b1')),
        img('boat_1.tif', uniq('a4')[:4] + ['z']),  # copies A's test image
        img('boat_2.tif', uniq('b9b')),  # template twin of its own test
        img('boat_9.tif', uniq('b9'), split='test'),
        img('boat_8.tif', uniq('b9b'), split='test'),
    ])
    pa, pb = tmp_path / 'a.json', tmp_path / 'b.json'
    pa.write_text(json.dumps(a))
    pb.write_text(json.dumps(b))
    return str(pa), str(pb)


def build(pa, pb, **kwargs):
    init_default_scope('mmpretrain')
    cfg = dict(
        type='LeakageSafeConcatDataset',
        datasets=[
            dict(type='RSICD', ann_file=pa, split='train'),
            dict(type='RSITMD', ann_file=pb, split='train')
        ],
        exclude=[dict(ann_file=pa, split='test'),
                 dict(ann_file=pb, split='test')],
        serialize_data=False)  # skips mmengine's slow gc.collect()
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def test_drops_cross_dataset_leaks_and_reindexes(two_sets):
    pa, pb = two_sets
    ds = build(*two_sets)
    assert isinstance(ds, LeakageSafeConcatDataset)
    files = [ds.get_data_info(i)['filename'] for i in range(len(ds))]
    # airport_2.jpg shares 3 captions with b's test image; boat_1.tif 4
    # with a's; boat_2.tif only with its own test split (not checked)
    assert sorted(set(files)) == [
        'airport_1.jpg', 'beach_1.jpg', 'beach_1.tif', 'boat_2.tif']
    assert ds.img_size == 4 and ds.text_size == 20 and len(ds) == 20
    items = [ds.get_data_info(i) for i in range(len(ds))]
    # image ids dense and unique across sources, captions stay together
    assert [it['image_id'] for it in items] == [k // 5 for k in range(20)]
    assert [it['text_id'] for it in items] == list(range(20))
    assert [it['source'] for it in items] == [0] * 10 + [1] * 10
    # labels point into the union of both sources' classes
    classes = ds.metainfo['classes']
    assert classes == ('airport', 'beach', 'boat')
    assert [classes[it['gt_label']] for it in items[::5]] == [
        'airport', 'beach', 'beach', 'boat']
    rows = {r['source'].split('(')[0]: r for r in ds.leakage_summary}
    assert rows['RSICD']['dropped'] == 1
    assert rows['RSICD']['dropped_per_test'] == {'a.json:test': None,
                                                 'b.json:test': 1}
    assert rows['RSITMD']['dropped'] == 1
    assert rows['RSITMD']['kept'] == 2


def test_rules_are_configurable(two_sets):
    ds = build(*two_sets, check_own_test=True)
    assert ds.img_size == 3  # boat_2.tif now dropped too
    ds = build(*two_sets, min_shared_captions=4)
    assert ds.img_size == 5  # airport_2.jpg shares only 3
    ds = build(*two_sets, match_filename=True, min_shared_captions=5)
    assert ds.img_size == 6  # no file name in common
    ds = build(*two_sets, exclude=[])
    assert ds.img_size == 6 and ds.text_size == 30


def test_bad_arguments(two_sets):
    pa, pb = two_sets
    with pytest.raises(ValueError, match=r"exclude\[0\].*'ann_file'"):
        build(pa, pb, exclude=['b.json'])
    with pytest.raises(ValueError, match='min_shared_captions'):
        build(pa, pb, min_shared_captions=0)
    with pytest.raises(ValueError, match="needs 'img_dir'"):
        build(pa, pb, hash_threshold=4)
    with pytest.raises(FileNotFoundError, match='nope.json'):
        build(pa, pb, exclude=[dict(ann_file=pa + 'nope.json')])


@pytest.mark.parametrize('name', [
    'clip_vit-b32_ret2_rsitmd.py', 'clip_vit-b32_ret2_rsicd.py',
    'clip_vit-b32_ret3_rsitmd.py', 'osdpm_ret2_rsitmd.py'
])
def test_configs_compose(name):
    cfg = Config.fromfile(str(REPO / 'configs' / name))
    ds = cfg.train_dataloader.dataset
    assert ds.type == 'LeakageSafeConcatDataset'
    assert cfg.data_root == 'data'
    ann = {d['data_root'] + '/' + d['ann_file'] for d in ds.datasets}
    excluded = {e['ann_file'] for e in ds.exclude}
    # every training dataset's test split is excluded
    assert ann == excluded
    assert len(ann) == (3 if 'ret3' in name else 2)
    scale = 224 if name.endswith('rsicd.py') else 256
    assert ds.pipeline[1]['scale'] == scale


@pytest.mark.skipif(
    not (RSICD_JSON.exists() and RSITMD_JSON.exists()),
    reason='shared data absent')
def test_ret2_config_on_real_annotations():
    """The RET-2 config's dataset on the public annotation files: the counts
    of docs/datasets.md ("Leakage between datasets")."""
    cfg = Config.fromfile(str(REPO / 'configs' /
                              'clip_vit-b32_ret2_rsitmd.py'))
    ds_cfg = cfg.train_dataloader.dataset.to_dict()
    ds_cfg['pipeline'] = []
    real = {'data/rsicd/dataset_rsicd.json': str(RSICD_JSON),
            'data/rsitmd/dataset_rsitmd.json': str(RSITMD_JSON)}
    for src in ds_cfg['datasets']:
        src['ann_file'] = real[src['data_root'] + '/' + src['ann_file']]
        src['class_map'] = None
    for ex in ds_cfg['exclude']:
        ex['ann_file'] = real[ex['ann_file']]
    init_default_scope('mmpretrain')
    ds = DATASETS.build(ds_cfg)
    rsicd, rsitmd = ds.leakage_summary
    assert (rsicd['images'], rsicd['dropped'], rsicd['kept']) == (8734, 22,
                                                                  8712)
    assert (rsitmd['images'], rsitmd['dropped'], rsitmd['kept']) == (3435, 92,
                                                                     3343)
    assert ds.img_size == 8712 + 3343
    assert ds.text_size == 5 * ds.img_size
    ids = {ds.get_data_info(i)['image_id'] for i in range(0, len(ds), 5)}
    assert ids == set(range(ds.img_size))
