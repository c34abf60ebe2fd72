# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Configs are usable from an installed package (mim layout).

Both installs users make are tested: a wheel, and the editable install of
``make install`` (``pip install -e .``). For each, an experiment config of
a project of its own inherits a whole shipped experiment through
``rsitr_mm::`` and a Runner trains it with no hand fix (the scoped collate
function and visualizer resolve from rsitr_mm's registries), through the
``tools/train.py`` the install ships in ``.mim`` (what ``mim train rsitr_mm``
runs) and through ``Runner.from_cfg`` directly.

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


# an experiment of a project of its own: the demo experiment, its own
# data_root (the inherited datasets still hold the demo's root)
EXPERIMENT = """
_base_ = 'rsitr_mm::_base_/../demo_tinycnn-bigru_synthetic.py'
data_root = 'synth'
train_cfg = dict(max_epochs=1, val_interval=1)
train_dataloader = dict(batch_size=8)
"""

RUNNER = r"""
import sys, warnings
warnings.simplefilter('ignore')
from mmengine.config import Config
from mmengine.runner import Runner
from mmengine.utils import get_installed_path
import rsitr_mm
assert rsitr_mm.__file__.startswith(sys.argv[1]), rsitr_mm.__file__
# what mmengine and mim resolve 'rsitr_mm::' / 'mim ... rsitr_mm' with
assert get_installed_path('rsitr_mm').startswith(sys.argv[1])
from rsitr_mm.datasets.synthetic import generate_synthetic_dataset
from rsitr_mm.engine.data_root import merge_cfg_options
generate_synthetic_dataset('synth', 24, 32, seed=0, split=(16, 4, 4),
                           progress=False)
cfg = Config.fromfile('exp.py')
merge_cfg_options(cfg, {'data_root': 'synth'})
cfg.work_dir = 'work_runner'
runner = Runner.from_cfg(cfg)
batch = next(iter(runner.build_dataloader(cfg.train_dataloader)))
print('runner', type(runner.visualizer).__name__, len(batch['inputs']))
"""


def _train_inherited_experiment(python, package_dir, user, env):
    """Runner.from_cfg and the shipped tools/train.py on EXPERIMENT."""
    (user / 'exp.py').write_text(EXPERIMENT)
    out = _run([python, '-c', RUNNER, str(package_dir)], cwd=str(user),
               env=env)
    assert 'runner UniversalVisualizer 8' in out
    train = package_dir / '.mim' / 'tools' / 'train.py'
    out = _run([python, str(train), 'exp.py', '--work-dir', 'work',
                '--cfg-options', 'data_root=synth'], cwd=str(user), env=env)
    assert "under 'data/synthetic_demo' (inherited from a base config)" \
        in out
    assert (user / 'work' / 'epoch_1.pth').is_file()


def _copy_project(dst):
    dst.mkdir()
    ignore = shutil.ignore_patterns('__pycache__', '*.pyc', '.mim')
    for name in SHIPPED:
        path = osp.join(REPO, name)
        if osp.isdir(path):
            shutil.copytree(path, dst / name, ignore=ignore)
        elif osp.isfile(path):
            shutil.copy(path, dst / name)


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
    _copy_project(src)
    pip = [sys.executable, '-m', 'pip']
    quiet = ['--no-deps', '--no-index', '--disable-pip-version-check', '-q']
    _run(pip + ['wheel', str(src), '--no-build-isolation', '-w',
                str(tmp_path / 'wheels')] + quiet)
    wheel, = os.listdir(tmp_path / 'wheels')
    site = tmp_path / 'site'
    _run(pip + ['install', '--target', str(site), '--ignore-installed',
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
    _train_inherited_experiment(sys.executable, site / 'rsitr_mm', user, env)


def test_editable_install_resolves_configs_and_trains(tmp_path):
    """``pip install -e .`` (PEP 660): metadata in site-packages, package in
    the source tree; ``rsitr_mm::`` and mim's lookup reach the source's
    ``.mim``."""
    import importlib.util
    import sysconfig
    if importlib.util.find_spec('pip') is None:
        pytest.skip('pip is not installed')
    src = tmp_path / 'src'
    _copy_project(src)
    venv = tmp_path / 'venv'
    _run([sys.executable, '-m', 'venv', '--without-pip', str(venv)])
    python = str(venv / 'bin' / 'python')
    site = _run([python, '-c', 'import sysconfig; '
                 "print(sysconfig.get_paths()['purelib'])"]).strip()
    # the dependencies: this interpreter's packages, after the venv's own
    with open(osp.join(site, '_deps.pth'), 'w') as f:
        f.write(sysconfig.get_paths()['purelib'] + '\n')
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env['HF_HUB_OFFLINE'] = '1'
    # --ignore-installed: without it pip uninstalls the rsitr_mm of the
    # environment running the tests (the checkout's own editable install)
    _run([sys.executable, '-m', 'pip', 'install', '-e', str(src), '--prefix',
          str(venv), '--no-deps', '--no-index', '--no-build-isolation',
          '--ignore-installed', '--disable-pip-version-check', '-q'],
         env=env)
    assert not osp.exists(osp.join(site, 'rsitr_mm'))  # a true editable
    assert (src / 'rsitr_mm' / '.mim' / 'configs' / 'ssjdn_rsitmd.py'
            ).is_file()
    user = tmp_path / 'user_project'
    user.mkdir()
    (user / 'user_cfg.py').write_text(USER_CONFIG)
    (user / 'whole_cfg.py').write_text(WHOLE_CONFIG)
    out = _run([python, '-c', CHECK, str(src / 'rsitr_mm')], cwd=str(user),
               env=env)
    assert 'user_cfg.py DualEncoderRetriever BiGRUTextEncoder RSITMD' in out
    _train_inherited_experiment(python, src / 'rsitr_mm', user, env)
