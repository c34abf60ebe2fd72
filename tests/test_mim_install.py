# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Configs are usable from an installed package (mim layout).

A real wheel is built from a copy of the project (``pip wheel``, offline,
no build isolation) and installed into a temporary folder (``pip install
--target``); a config outside any checkout then inherits ours through
mmengine's package scope (``_base_ = 'rsitr_mm::_base_/...'``), which
mmengine resolves in ``<installed rsitr_mm>/.mim/configs``. The model and
hooks it names build in the ``rsitr_mm`` scope mmengine gives them.
"""
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SHIPPED = ('setup.py', 'setup.cfg', 'MANIFEST.in', 'README.md',
           'requirements.txt', 'model-index.yml', 'rsitr_mm', 'configs',
           'tools')

USER_CONFIG = """
# a project of its own: no clone of rsitr_mm, only the installed package
_base_ = [
    'rsitr_mm::_base_/models/ssjdn_r50_bigru.py',
    'rsitr_mm::_base_/datasets/rsitmd.py',
    'rsitr_mm::_base_/schedules/adam_step_50e.py',
    'rsitr_mm::_base_/default_runtime.py',
]
model = dict(image_encoder=dict(init_cfg=None),
             heads=[dict(type='LabelSemanticHead', in_channels=512,
                         num_classes=33, semantic_dim=128)])
"""
# mmengine 0.10.7 wants a folder in the path after '::': a top-level
# config is reached through _base_/..
WHOLE_CONFIG = (
    "_base_ = 'rsitr_mm::_base_/../demo_tinycnn-bigru_synthetic.py'\n")

CHECK = r"""
import sys, warnings
warnings.simplefilter('ignore')
import rsitr_mm
assert rsitr_mm.__file__.startswith(sys.argv[1]), rsitr_mm.__file__
from mmengine.config import Config
from mmengine.registry import HOOKS, MODELS, init_default_scope
for name in ('user_cfg.py', 'whole_cfg.py'):
    cfg = Config.fromfile(name)
    assert cfg.model._scope_ == 'rsitr_mm', cfg.model
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    hooks = [type(HOOKS.build(h)).__name__ for h in cfg.custom_hooks]
    assert 'TrainDataToModelHook' in hooks, hooks
    print(name, type(model).__name__, type(model.text_encoder).__name__,
          cfg.train_dataloader.dataset.type)
"""


def _run(args, **kw):
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300,
                          **kw)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return proc.stdout


def test_wheel_ships_configs_and_base_inherits_them(tmp_path):
    import importlib.util
    if importlib.util.find_spec('pip') is None:
        pytest.skip('pip is not installed')
    src = tmp_path / 'src'
    src.mkdir()
    ignore = shutil.ignore_patterns('__pycache__', '*.pyc', '.mim')
    for name in SHIPPED:
        path = osp.join(REPO, name)
        if osp.isdir(path):
            shutil.copytree(path, src / name, ignore=ignore)
        elif osp.isfile(path):
            shutil.copy(path, src / name)
    pip = [sys.executable, '-m', 'pip']
    quiet = ['--no-deps', '--no-index', '--disable-pip-version-check', '-q']
    _run(pip + ['wheel', str(src), '--no-build-isolation', '-w',
                str(tmp_path / 'wheels')] + quiet)
    wheel, = os.listdir(tmp_path / 'wheels')
    site = tmp_path / 'site'
    _run(pip + ['install', '--target', str(site),
                str(tmp_path / 'wheels' / wheel)] + quiet)
    mim = site / 'rsitr_mm' / '.mim'
    for shipped in ('configs/osdpm_rsitmd.py', 'configs/ssjdn_rsitmd.py',
                    'configs/_base_/default_runtime.py', 'tools/train.py',
                    'model-index.yml'):
        assert (mim / shipped).is_file(), shipped
    user = tmp_path / 'user_project'
    user.mkdir()
    (user / 'user_cfg.py').write_text(USER_CONFIG)
    (user / 'whole_cfg.py').write_text(WHOLE_CONFIG)
    env = dict(os.environ, PYTHONPATH=str(site), HF_HUB_OFFLINE='1')
    out = _run([sys.executable, '-c', CHECK, str(site)], cwd=str(user),
               env=env)
    assert 'user_cfg.py DualEncoderRetriever BiGRUTextEncoder RSITMD' in out
    assert 'whole_cfg.py DualEncoderRetriever BiGRUTextEncoder' in out
