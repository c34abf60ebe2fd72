"""The preflight checklist and the one-override dataset move."""
import os
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config

from rsitr_mm.engine.data_root import merge_cfg_options, reroot_data_paths
from rsitr_mm.engine.preflight import (PreflightError, collect_path_checks,
                                       preflight)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _cfg(name):
    return Config.fromfile(osp.join(REPO, 'configs', name))


def test_fresh_clone_train_prints_one_checklist_and_exits_2(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE='1', PYTHONPATH=REPO)
    out = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'train.py'),
         osp.join(REPO, 'configs', 'ssjdn_rsitmd.py')],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.count('missing; nothing was built') == 1
    assert "train_dataloader.dataset.ann_file = 'data/rsitmd/" in out.stderr
    assert 'data_prefix.img_path' in out.stderr
    assert 'docs/datasets.md' in out.stderr
    assert 'Traceback' not in out.stderr
    assert not (tmp_path / 'work_dirs').exists()


def test_every_missing_path_is_listed_at_once(tmp_path):
    cfg = _cfg('osdpm_rsicd.py')
    cfg.model.image_encoder.pretrained = str(tmp_path / 'no_clip')
    with pytest.raises(PreflightError) as info:
        preflight(cfg, ('train', ), 'osdpm_rsicd.py')
    msg = str(info.value)
    for key in ('train_dataloader.dataset.ann_file',
                'train_dataloader.dataset.data_prefix.img_path',
                'train_dataloader.dataset.class_map',
                'model.image_encoder.pretrained'):
        assert key in msg
    # the hub id of the text tower is left to transformers
    assert 'model.text_encoder.pretrained' not in msg
    assert 'clip_to_hf.py' in msg


def test_present_paths_pass(shared_data):
    root = osp.join(shared_data, 'rsicd_sample')
    cfg = _cfg('clip_vit-b32_zeroshot_rsicd.py')
    merge_cfg_options(cfg, {'data_root': root})
    cfg.test_dataloader.dataset.ann_file = 'dataset_rsicd_sample.json'
    cfg.test_dataloader.dataset.class_map = None
    checks = preflight(cfg, ('test', ))
    assert {c.key for c in checks} >= {
        'test_dataloader.dataset.ann_file',
        'test_dataloader.dataset.data_prefix.img_path'}


@pytest.mark.parametrize('name', ['ssjdn_rsitmd.py', 'osdpm_rsicd.py'])
def test_data_root_override_moves_every_data_path(name, tmp_path):
    cfg = _cfg(name)
    old = cfg.data_root
    new = str(tmp_path / 'moved')
    merge_cfg_options(cfg, {'data_root': new})
    text = cfg.pretty_text
    assert old + '/' not in text and f"'{old}'" not in text
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[loader].dataset.data_root == new
    paths = [c.path for c in collect_path_checks(cfg, ('train', 'test'))]
    assert paths and all(p.startswith(new) for p in paths
                         if 'checkpoint' not in p)


def test_reroot_leaves_other_paths_and_prefix_lookalikes_alone():
    cfg = Config(dict(data_root='data/rsicd',
                      a='data/rsicd/x.json', b='data/rsicd2/y.json',
                      c=['/abs/data/rsicd/z', 'data/rsicd'],
                      d=dict(e='data/rsicd/images')))
    changed = reroot_data_paths(cfg, 'data/rsicd', '/d/r')
    assert cfg.a == '/d/r/x.json' and cfg.b == 'data/rsicd2/y.json'
    assert cfg.c == ['/abs/data/rsicd/z', '/d/r'] and cfg.d.e == '/d/r/images'
    assert len(changed) == 3
    assert reroot_data_paths(cfg, 'x', 'x') == []
