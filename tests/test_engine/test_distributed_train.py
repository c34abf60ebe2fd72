# Copyright (c) rsitr_mm contributors. All rights reserved.
"""2-process CPU training (gloo) vs 1 process with the same global batch.

``bash tools/dist_train.sh CFG 2`` with 8 captions per rank is compared with
one process of batch 16, same seed. What is identical, what is not:

* **Samples per step: identical.** ``DefaultSampler`` draws one permutation
  from ``seed + epoch`` and deals it round-robin to the ranks, so at every
  step the two ranks' batches together are exactly the single-process batch
  (checked below without training, for every step of every epoch).
* **Initial weights: identical** (same seed; DDP also broadcasts rank 0's).
* **Updates: not identical**, for two reasons, so exact equality of the
  trained weights is impossible and only a tolerance is asserted:

  1. BatchNorm (TinyCNN) normalises with per-rank statistics of 8 images
     instead of 16; ``SyncBuffersHook`` (used here) averages the running
     statistics over ranks after each epoch, but not the batch statistics.
  2. (The loss itself is exact: ``MultiPositiveInfoNCELoss`` gathers the
     other rank's rows with gradient, so 2 processes give the 1-process
     loss and gradients; see tests/test_models/test_losses/
     test_distributed_losses.py.)
  3. Floating-point summation order (gradient all-reduce).

  Tolerance: this tiny model's retrieval metrics after 3 epochs move by
  about 50 rsum points between two seeds of the single-process run (measured
  150.5 vs 101.0 on 40 validation images, 2-core CPU), so the test only asserts
  that both runs learn (loss falls, rsum above chance = 80) and that their
  rsum differ by at most 60 points; on a run where the differences above
  compound it can only detect gross breakage (e.g. a rank training on the
  other's samples, gradients not averaged, a dead-locked collective).
"""
import os
import os.path as osp
import re
import subprocess
import sys
import warnings

import pytest
import torch
from mmengine.dataset import DefaultSampler
from mmengine.dataset import sampler as sampler_mod


REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CHANCE_RSUM = 80.0  # 40 images: i2t/t2i R@1,5,10 = 2.5 + 12.5 + 25 each
RSUM_TOLERANCE = 60.0

# lines after the tiny demo model (tests/conftest.py, custom_imports=True)
CONFIG = """\
train_dataloader = dict(batch_size=16, dataset=dict(data_root=data_root))
val_dataloader = dict(batch_size=10, dataset=dict(data_root=data_root))
test_dataloader = None
test_cfg = None
test_evaluator = None
train_cfg = dict(max_epochs=3, val_interval=3)
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0,
                        end=3)]
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(save_best=None))
custom_hooks = [dict(type='SyncBuffersHook')]
randomness = dict(seed=7)
"""


EXIT_ABORT = 'terminate called without an active exception'


def _run(args, cwd, done_file=None, **extra_env):
    env = dict(os.environ, HF_HUB_OFFLINE='1', PYTHONUNBUFFERED='1',
               **extra_env)
    env.pop('PYTHONPATH', None)
    proc = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0 and EXIT_ABORT in out and done_file and \
            osp.isfile(done_file) and 'Epoch(val) [3]' in out:
        # Known: on CPU/gloo a rank occasionally aborts in C++ teardown
        # AFTER training and validation completed (about 1 run in 6 on a
        # 2-core machine). Reported; not what this test checks.
        warnings.warn('a rank aborted at exit after finishing: ' + EXIT_ABORT)
        return out
    assert proc.returncode == 0, out[-4000:]
    return out


def _losses(log):
    return [float(v) for v in re.findall(
        r'Epoch\(train\).*?\sloss: ([0-9.naif]+)', log)]


def _rsum(log):
    found = re.findall(r'Epoch\(val\) \[3\].*retrieval/rsum: ([0-9.]+)', log)
    assert found, log[-3000:]
    return float(found[-1])


@pytest.fixture(scope='module')
def setup(tmp_path_factory, tiny_demo):
    root = tmp_path_factory.mktemp('dist_train')
    data_root = tiny_demo.dataset(root, num_images=80, split=(40, 40, 0),
                                  seed=5)
    return root, tiny_demo.config(root / 'cfg.py', data_root, CONFIG,
                                  custom_imports=True)


def _sampler(monkeypatch, n, rank, world):
    monkeypatch.setattr(sampler_mod, 'get_dist_info', lambda: (rank, world))
    return DefaultSampler(list(range(n)), shuffle=True, seed=7)


def test_two_ranks_see_the_single_process_batches(monkeypatch):
    n, batch, world = 200, 16, 2  # 40 images x 5 captions
    for epoch in range(3):
        single = _sampler(monkeypatch, n, 0, 1)
        ranks = [_sampler(monkeypatch, n, r, world) for r in range(world)]
        for s in [single] + ranks:
            s.set_epoch(epoch)
        one = list(single)
        per_rank = [list(s) for s in ranks]
        local = batch // world
        steps = min(len(one) // batch, len(per_rank[0]) // local)
        assert steps == n // batch  # drop_last keeps the same 12 steps
        for t in range(steps):
            merged = sorted(i for idx in per_rank
                            for i in idx[t * local:(t + 1) * local])
            assert merged == sorted(one[t * batch:(t + 1) * batch])


def test_two_processes_match_one_process_within_tolerance(setup):
    root, cfg = setup
    log1 = _run([sys.executable, f'{REPO}/tools/train.py', cfg,
                 '--work-dir', str(root / 'one')], cwd=str(root))
    log2 = _run(['bash', f'{REPO}/tools/dist_train.sh', cfg, '2',
                 '--work-dir', str(root / 'two'), '--cfg-options',
                 'train_dataloader.batch_size=8'],
                cwd=str(root), done_file=str(root / 'two' / 'epoch_3.pth'),
                PYTHON=sys.executable,
                PORT=str(29700 + os.getpid() % 500))
    assert 'Distributed training: True' in log2, log2[-3000:]
    # the log says what runs: CPU processes on gloo, no GPUs, no nccl
    assert 'Processes: 2 (CPU, gloo)' in log2, log2[-3000:]
    assert "backend='gloo'" in log2
    assert "'nccl'" not in log2 and 'GPU number' not in log2
    l1, l2 = _losses(log1), _losses(log2)
    assert len(l1) == len(l2) == 3 * 12  # same number of steps
    for losses in (l1, l2):
        assert sum(losses[-6:]) < sum(losses[:6])  # both learn
    r1, r2 = _rsum(log1), _rsum(log2)
    assert r1 > CHANCE_RSUM and r2 > CHANCE_RSUM, (r1, r2)
    assert abs(r1 - r2) <= RSUM_TOLERANCE, (r1, r2)
    # the saved weights come from two DDP-synchronised ranks: finite
    ckpt = torch.load(str(root / 'two' / 'epoch_3.pth'), map_location='cpu',
                      weights_only=False)
    assert all(
        torch.isfinite(v).all() for v in ckpt['state_dict'].values()
        if v.is_floating_point())
