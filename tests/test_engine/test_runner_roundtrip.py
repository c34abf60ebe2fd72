# Copyright (c) rsitr_mm contributors. All rights reserved.
"""train -> checkpoint -> resume -> tools/test.py, through the real CLIs.

The configs are written to a temporary folder OUTSIDE the repository and
reach our modules only through ``custom_imports``; the 2-process test runs
``tools/dist_test.sh`` on CPU (gloo) over a test split of 58 images (Sydney's
size, not divisible by 2) and must give the same numbers as one process.
"""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest


REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# lines after the tiny demo model (tests/conftest.py, custom_imports=True)
CONFIG = """\
train_dataloader = dict(batch_size=16, dataset=dict(data_root=data_root))
val_dataloader = dict(batch_size=4, dataset=dict(data_root=data_root))
test_dataloader = dict(batch_size=4, dataset=dict(data_root=data_root))
train_cfg = dict(max_epochs={epochs}, val_interval=1)
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0,
                        end={epochs})]
default_hooks = dict(logger=dict(interval=5))
"""


def _run(args, cwd, timeout=300, **extra_env):
    env = dict(os.environ, HF_HUB_OFFLINE='1', PYTHONUNBUFFERED='1',
               **extra_env)
    env.pop('PYTHONPATH', None)
    proc = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True,
        timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


@pytest.fixture(scope='module')
def setup(tmp_path_factory, tiny_demo):
    root = tmp_path_factory.mktemp('roundtrip')
    data_root = tiny_demo.dataset(root, num_images=108, split=(40, 10, 58),
                                  seed=3)
    cfgs = {}
    for epochs in (1, 2):
        path = root / f'cfg_{epochs}e.py'
        cfgs[epochs] = tiny_demo.config(path, data_root,
                                        CONFIG.format(epochs=epochs),
                                        custom_imports=True)
    return root, cfgs


def test_train_resume_test_and_two_processes(setup):
    root, cfgs = setup
    work = str(root / 'work')
    # 1) train one epoch (cwd outside the repo: only custom_imports)
    _run([sys.executable, f'{REPO}/tools/train.py', cfgs[1],
          '--work-dir', work], cwd=str(root))
    assert osp.isfile(osp.join(work, 'epoch_1.pth'))

    # 2) resume from it up to epoch 2: the checkpoint must load under
    # torch >= 2.6 without any environment variable
    out = _run([sys.executable, f'{REPO}/tools/train.py', cfgs[2],
                '--work-dir', work, '--resume',
                osp.join(work, 'epoch_1.pth')], cwd=str(root))
    assert 'resumed epoch: 1' in out
    ckpt = osp.join(work, 'epoch_2.pth')
    assert osp.isfile(ckpt)

    # 3) tools/test.py prints the table and writes the metrics
    one = str(root / 'one.json')
    out = _run([sys.executable, f'{REPO}/tools/test.py', cfgs[2], ckpt,
                '--work-dir', str(root / 'test1'), '--out', one],
               cwd=str(root))
    assert '| i2t_R@1 | i2t_R@5 |' in out
    m1 = json.load(open(one))
    assert set(k.split('/')[-1] for k in m1) >= {'rsum', 'mR', 't2i_R@10'}

    # 4) the same checkpoint on 2 CPU processes (gloo): identical numbers
    two = str(root / 'two.json')
    _run(['bash', f'{REPO}/tools/dist_test.sh', cfgs[2], ckpt, '2',
          '--work-dir', str(root / 'test2'), '--out', two],
         cwd=str(root), PORT=str(29500 + os.getpid() % 1000),
         PYTHON=sys.executable)
    m2 = json.load(open(two))
    assert m1 == m2
