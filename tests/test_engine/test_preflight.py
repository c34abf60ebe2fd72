"""The preflight checklist and the one-override dataset move."""
import os
import os.path as osp
import re
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


def test_checklist_does_not_advise_the_data_root_just_given(tmp_path):
    """A user config with its own data_root over an inherited experiment,
    run with --cfg-options data_root=DIR: the checklist says what is not
    under DIR instead of advising the flag just passed."""
    user = tmp_path / 'user.py'
    base = osp.join(REPO, 'configs', 'ssjdn_rsitmd.py')
    user.write_text(f'_base_ = [{base!r}]\ndata_root = "my/rsitmd"\n')
    given = tmp_path / 'given'
    given.mkdir()
    env = dict(os.environ, HF_HUB_OFFLINE='1', PYTHONPATH=REPO)
    out = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'train.py'), str(user),
         '--cfg-options', f'data_root={given}'],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr[-2000:]
    assert re.search(r"moved [1-9]\d* path\(s\): .* under 'data/rsitmd' "
                     r'\(inherited from a base config\)', out.stdout)
    err = out.stderr
    assert f"train_dataloader.dataset.ann_file = '{given}/" in err
    assert 'data_root=DIR' not in err
    advice = err[err.index('Not found under the data_root you gave'):]
    assert f"({str(given)!r}; the folder exists but lacks them)" in advice
    assert 'dataset_rsitmd.json, images/' in advice.splitlines()[0]


def test_checklist_names_missing_paths_outside_the_given_root(tmp_path):
    cfg = Config(dict(data_root='d', train_dataloader=dict(dataset=dict(
        type='RSRetrievalDataset', data_root=str(tmp_path / 'other'),
        ann_file='a.json'))))
    with pytest.raises(PreflightError) as info:
        preflight(cfg, ('train', ), 'user.py', str(tmp_path / 'gone'))
    msg = str(info.value)
    assert 'data_root=DIR' not in msg
    assert 'Not found under' not in msg
    assert "so it did not move them: train_dataloader.dataset.ann_file." \
        in msg
    with pytest.raises(PreflightError) as info:
        preflight(cfg, ('train', ), 'user.py')
    assert 'move a whole dataset with --cfg-options data_root=DIR' in str(
        info.value)


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
    assert 'clip_to_hf.py' in msg


def _no_network(monkeypatch, tmp_path):
    """Nothing reachable, empty hub and torch caches."""
    from rsitr_mm.engine import remote_inputs
    monkeypatch.setattr(remote_inputs, 'reachable', lambda *a, **k: False)
    monkeypatch.setenv('HF_HOME', str(tmp_path / 'hf'))
    monkeypatch.setenv('HF_HUB_CACHE', str(tmp_path / 'hf' / 'hub'))
    import torch.hub
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'th'))


def _only_remote(cfg):
    return [c for c in collect_path_checks(cfg, ('train', ))
            if c.kind in ('hub', 'url')]


def test_offline_lists_every_hub_id_with_its_key(tmp_path, monkeypatch):
    _no_network(monkeypatch, tmp_path)
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    cfg = _cfg('osdpm_rsicd.py')
    checks = _only_remote(cfg)
    assert [c.key for c in checks] == ['model.image_encoder.pretrained',
                                       'model.text_encoder.pretrained']
    with pytest.raises(PreflightError) as info:
        preflight(cfg, ('train', ), 'osdpm_rsicd.py')
    msg = str(info.value)
    assert msg.count("'openai/clip-vit-base-patch32' (hub id not in the "
                     'local cache') == 2
    assert 'tools/model_converters/random_clip.py ViT-B-32' in msg


def test_hub_ids_pass_when_cached_or_online(tmp_path, monkeypatch):
    from rsitr_mm.engine import remote_inputs
    _no_network(monkeypatch, tmp_path)
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    monkeypatch.setattr(remote_inputs, 'hub_cached', lambda hub_id: True)
    assert _only_remote(_cfg('osdpm_rsicd.py')) == []
    monkeypatch.setattr(remote_inputs, 'hub_cached', lambda hub_id: False)
    monkeypatch.delenv('HF_HUB_OFFLINE')
    monkeypatch.delenv('TRANSFORMERS_OFFLINE', raising=False)
    monkeypatch.setattr(remote_inputs, 'reachable', lambda *a, **k: True)
    assert _only_remote(_cfg('osdpm_rsicd.py')) == []


def test_unreachable_checkpoint_url_gets_a_checklist_line(tmp_path,
                                                          monkeypatch):
    """SSJDN's ImageNet ResNet-50 URL: listed with the key, the cache path
    and the from-scratch alternative; a cached file passes."""
    _no_network(monkeypatch, tmp_path)
    cfg = _cfg('ssjdn_rsitmd.py')
    url = cfg.model.image_encoder.init_cfg.checkpoint
    check, = _only_remote(cfg)
    assert check.key == 'model.image_encoder.init_cfg.checkpoint'
    with pytest.raises(PreflightError) as info:
        preflight(cfg, ('train', ), 'ssjdn_rsitmd.py')
    msg = str(info.value)
    assert f'{url!r} (not in the local cache' in msg
    assert 'model.image_encoder.init_cfg=None' in msg
    cached = tmp_path / 'th' / 'checkpoints' / osp.basename(url)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b'x')
    assert _only_remote(cfg) == []


def test_present_paths_pass(shared_data, monkeypatch):
    from rsitr_mm.engine import remote_inputs
    monkeypatch.setattr(remote_inputs, 'hub_cached', lambda hub_id: True)
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
    paths = [c.path for c in collect_path_checks(cfg, ('train', 'test'))
             if c.kind in ('file', 'dir')]
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


def test_data_root_override_moves_paths_a_user_config_inherited(tmp_path,
                                                                 capsys):
    """A user config sets its own data_root over an inherited dataset
    config: the datasets still hold the base's root, and the override moves
    them too, saying from where."""
    base = osp.join(REPO, 'configs', '_base_', 'datasets', 'rsitmd.py')
    user = tmp_path / 'user.py'
    user.write_text(f'_base_ = [{base!r}]\ndata_root = "my/rsitmd"\n')
    cfg = Config.fromfile(str(user))
    assert cfg.train_dataloader.dataset.data_root == 'data/rsitmd'
    new = str(tmp_path / 'moved')
    merge_cfg_options(cfg, {'data_root': new})
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[loader].dataset.data_root == new
    out = capsys.readouterr().out
    assert "under 'data/rsitmd' (inherited from a base config)" in out


def test_data_root_override_keeps_sources_under_the_root(tmp_path, capsys):
    """Several sources under the file's data_root ('data/rsicd',
    'data/rsitmd' under 'data') keep their place below the new root."""
    cfg = _cfg('clip_vit-b32_ret2_rsicd.py')
    new = str(tmp_path / 'all')
    merge_cfg_options(cfg, {'data_root': new})
    roots = [d.data_root for d in cfg.train_dataloader.dataset.datasets]
    assert roots and all(r.startswith(new + '/') for r in roots)
    assert len(set(roots)) == len(roots) > 1
    assert 'not moved' not in capsys.readouterr().out


def test_data_root_override_leaves_unrelated_roots_and_says_so(capsys):
    cfg = Config(dict(data_root='mine', train_dataloader=dict(dataset=dict(
        datasets=[dict(data_root='a/x', ann_file='1.json'),
                  dict(data_root='b/y', ann_file='2.json')]))))
    merge_cfg_options(cfg, {'data_root': 'new'})
    assert [d.data_root for d in cfg.train_dataloader.dataset.datasets] == [
        'a/x', 'b/y']
    out = capsys.readouterr().out
    assert "moved 0 paths" in out and "not moved: datasets under 'a/x', " \
        "'b/y'" in out


def test_data_root_override_says_when_nothing_moved(capsys):
    cfg = Config(dict(data_root='a', train_dataloader=dict(
        dataset=dict(data_root='/abs/elsewhere/x', ann_file='y.json'))))
    merge_cfg_options(cfg, {'data_root': '/abs/elsewhere/x'})
    assert 'moved 0 paths' in capsys.readouterr().out
    assert cfg.train_dataloader.dataset.data_root == '/abs/elsewhere/x'
