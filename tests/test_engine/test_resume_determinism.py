# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Kill -> resume and same-seed determinism, through ``tools/train.py``.

What holds (CPU, ``num_workers=0``; see docs/benchmarks.md, "Resume"):

* Two runs with the same seed give bit-identical weights and metrics.
* A run SIGKILLed after an **epoch** checkpoint and resumed with
  ``--resume`` ends with exactly the weights and metrics of the
  uninterrupted run: the sampler order is a function of ``seed + epoch``,
  optimizer/scheduler/BN state are in the checkpoint, and the demo model
  draws no random numbers while training (no dropout). A model that does
  (dropout > 0) would diverge: mmengine re-seeds at start-up but does not
  store the global RNG state in the checkpoint.
* A run resumed from a **mid-epoch iteration** checkpoint is also exact:
  mmengine's ``EpochBasedTrainLoop`` would restart the unfinished epoch from
  its first batch (training those batches twice); our configs use
  ``ResumableEpochBasedTrainLoop``, which skips the batches already trained.
"""
import os
import os.path as osp
import re
import signal
import subprocess
import sys
import time

import pytest
import torch


REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ITERS_PER_EPOCH = 12  # 40 images x 5 captions // batch 16

# lines after the tiny demo model (tests/conftest.py, custom_imports=True)
CONFIG = """\
train_dataloader = dict(batch_size=16, dataset=dict(data_root=data_root))
val_dataloader = dict(batch_size=10, dataset=dict(data_root=data_root))
test_dataloader = dict(batch_size=10, dataset=dict(data_root=data_root))
train_cfg = dict(max_epochs=2, val_interval=1)
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0,
                        end=2)]
default_hooks = dict(
    logger=dict(interval=4),
    checkpoint=dict(save_best=None, max_keep_ckpts=-1, {ckpt}))
randomness = dict(seed=7)
"""

# Imported by the "pause" configs: blocks the run at a given iteration so
# that the test can SIGKILL it at a known point.
PAUSE_HOOK = """
import os, time
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS

@HOOKS.register_module()
class PauseAtIterHook(Hook):
    def __init__(self, at_iter, marker):
        self.at_iter, self.marker = at_iter, marker

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 == self.at_iter:
            open(self.marker, 'w').close()
            time.sleep(600)
"""

PAUSE_CONFIG = """
_base_ = [r'{base}']
custom_imports = dict(imports=['rsitr_mm', 'pause_hook'],
                      allow_failed_imports=False)
custom_hooks = [dict(type='PauseAtIterHook', at_iter={at_iter},
                     marker=r'{marker}')]
"""


def _env(root):
    env = dict(os.environ, HF_HUB_OFFLINE='1', PYTHONUNBUFFERED='1',
               PYTHONPATH=str(root))
    return env


def _train(root, cfg, work, *extra):
    proc = subprocess.run(
        [sys.executable, f'{REPO}/tools/train.py', cfg, '--work-dir', work,
         *extra], cwd=str(root), env=_env(root), capture_output=True,
        text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


def _train_and_kill(root, cfg, work, wait_for):
    """Start training, SIGKILL it once ``wait_for`` files exist."""
    marker = osp.join(work, 'paused')
    pause_cfg = osp.join(str(root), osp.basename(work) + '_pause.py')
    at_iter = wait_for[1]
    with open(pause_cfg, 'w') as f:
        f.write(PAUSE_CONFIG.format(base=cfg, at_iter=at_iter, marker=marker))
    os.makedirs(work, exist_ok=True)
    log = open(osp.join(str(root), osp.basename(work) + '.log'), 'w')
    proc = subprocess.Popen(
        [sys.executable, f'{REPO}/tools/train.py', pause_cfg, '--work-dir',
         work], cwd=str(root), env=_env(root), stdout=log,
        stderr=subprocess.STDOUT)
    ckpt = osp.join(work, wait_for[0])
    deadline = time.time() + 240
    try:
        while not (osp.isfile(ckpt) and osp.isfile(marker)
                   and osp.isfile(osp.join(work, 'last_checkpoint'))):
            assert proc.poll() is None, open(log.name).read()[-3000:]
            assert time.time() < deadline, 'training never reached the pause'
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        log.close()
    assert proc.returncode == -signal.SIGKILL


def _val_metrics(log):
    """rsum etc. of every validation, in order, from the training log."""
    return re.findall(r'Epoch\(val\) \[(\d+)\].*?(retrieval/.*?)\s+data_time',
                      log)


def _weights(path):
    return torch.load(path, map_location='cpu', weights_only=False)


def _assert_same_state(a, b):
    assert a['state_dict'].keys() == b['state_dict'].keys()
    for k in a['state_dict']:
        assert torch.equal(a['state_dict'][k], b['state_dict'][k]), k


@pytest.fixture(scope='module')
def setup(tmp_path_factory, tiny_demo):
    root = tmp_path_factory.mktemp('resume')
    data_root = tiny_demo.dataset(root, num_images=60, split=(40, 10, 10),
                                  seed=5)
    (root / 'pause_hook.py').write_text(PAUSE_HOOK)
    cfgs = {}
    for name, ckpt in (('epoch', 'interval=1'),
                       ('iter', 'interval=4, by_epoch=False')):
        path = root / f'cfg_{name}.py'
        cfgs[name] = tiny_demo.config(path, data_root,
                                      CONFIG.format(ckpt=ckpt),
                                      custom_imports=True)
    return root, cfgs


def test_same_seed_is_deterministic_and_epoch_resume_is_exact(setup):
    root, cfgs = setup
    ref, again, killed = (str(root / n) for n in ('ref', 'again', 'killed'))
    log_ref = _train(root, cfgs['epoch'], ref)
    log_again = _train(root, cfgs['epoch'], again)

    # determinism: identical metrics and weights
    m_ref = _val_metrics(log_ref)
    assert [e for e, _ in m_ref] == ['1', '2']
    assert _val_metrics(log_again) == m_ref
    final_ref = _weights(osp.join(ref, 'epoch_2.pth'))
    _assert_same_state(final_ref, _weights(osp.join(again, 'epoch_2.pth')))

    # SIGKILL in epoch 2 (iteration 15), after epoch_1.pth was written
    _train_and_kill(root, cfgs['epoch'], killed,
                    ('epoch_1.pth', ITERS_PER_EPOCH + 3))
    assert not osp.isfile(osp.join(killed, 'epoch_2.pth'))
    log_res = _train(root, cfgs['epoch'], killed, '--resume')
    assert 'resumed epoch: 1' in log_res
    final_res = _weights(osp.join(killed, 'epoch_2.pth'))
    _assert_same_state(final_ref, final_res)
    assert final_res['meta']['iter'] == final_ref['meta']['iter']
    # the resumed run's validation equals the reference's epoch-2 one
    assert _val_metrics(log_res) == m_ref[1:]


def test_mid_epoch_resume_is_exact(setup):
    root, cfgs = setup
    ref, work = str(root / 'mid_ref'), str(root / 'mid')
    _train(root, cfgs['iter'], ref)
    # checkpoint iter_4.pth is mid-epoch 1; kill at iteration 6
    _train_and_kill(root, cfgs['iter'], work, ('iter_4.pth', 6))
    ckpt = _weights(osp.join(work, 'iter_4.pth'))
    assert (ckpt['meta']['epoch'], ckpt['meta']['iter']) == (0, 4)
    _train(root, cfgs['iter'], work, '--resume')
    last = f'iter_{2 * ITERS_PER_EPOCH}.pth'
    # ResumableEpochBasedTrainLoop skips the 4 batches already trained:
    # the run ends on time with exactly the uninterrupted run's weights
    late = f'iter_{2 * ITERS_PER_EPOCH + 4}.pth'
    assert not osp.isfile(osp.join(work, late))
    final, final_ref = _weights(osp.join(work, last)), _weights(
        osp.join(ref, last))
    assert final['meta']['iter'] == 2 * ITERS_PER_EPOCH
    _assert_same_state(final_ref, final)
