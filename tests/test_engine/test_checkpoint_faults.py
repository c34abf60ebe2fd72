# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Fault matrix: a kill or a full disk during any checkpoint write loses
nothing.

A tiny model trains for 3 epochs in-process (mmengine Runner, our default
runtime: ``SafeCheckpointHook`` + ``ResumableEpochBasedTrainLoop``). A
fault is injected into the n-th write of one kind of file (epoch / iter /
best checkpoint, ``last_checkpoint``), with and without
``max_keep_ckpts=1``:

* ``kill``: the write stops half-way and the process state is abandoned,
  as after SIGKILL (the half-written temporary file stays on disk);
* ``enospc``: the write fails with ``OSError(ENOSPC)`` (disk full).

The run is then resumed (``resume=True``, auto: from ``last_checkpoint``)
to the end. Afterwards the best and the last checkpoints exist and load,
the best is the true best of the uninterrupted reference run, no more
than ``max_keep_ckpts`` periodic checkpoints and no temporary file remain.
"""
import errno
import glob
import os
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import rsitr_mm  # noqa: F401
import rsitr_mm.utils.fileio as fileio
from rsitr_mm.utils import safe_torch_load

EPOCHS = 3

# lines after the tiny demo model (tests/conftest.py, sizes in cfg_file)
CONFIG = """\
train_dataloader = dict(batch_size=8, dataset=dict(data_root=data_root))
val_dataloader = dict(batch_size=8, dataset=dict(data_root=data_root))
test_dataloader = dict(batch_size=8, dataset=dict(data_root=data_root))
train_cfg = dict(max_epochs={epochs}, val_interval=1)
param_scheduler = []
optim_wrapper = dict(optimizer=dict(lr=2e-2))
default_hooks = dict(logger=dict(interval=100))
randomness = dict(seed=5)
log_level = 'WARNING'
"""


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    """Tiny models on a shared 2-core machine: threads only contend."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class SimulatedKill(BaseException):
    """Stands for SIGKILL: nothing of the run is used afterwards."""


@pytest.fixture(scope='module')
def cfg_file(tmp_path_factory, tiny_demo):
    root = tmp_path_factory.mktemp('faults')
    data = tiny_demo.dataset(root, num_images=22, split=(8, 8, 6), seed=4)
    return tiny_demo.config(
        root / 'cfg.py', data, CONFIG.format(epochs=EPOCHS), base_channels=4,
        num_stages=2, image_channels=8, word_dim=8, hidden_dim=16,
        embed_dim=16)


_RUNS = [0]


def _train(cfg_file, work, by_epoch, keep, resume=False):
    cfg = Config.fromfile(cfg_file)
    cfg.work_dir = work
    _RUNS[0] += 1
    cfg.experiment_name = f'fault_{_RUNS[0]}'
    cfg.default_hooks.checkpoint.update(
        by_epoch=by_epoch, interval=1 if by_epoch else 2,
        max_keep_ckpts=keep)
    cfg.resume = resume
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def _best_files(work):
    return sorted(glob.glob(osp.join(work, 'best_*.pth')))


def _step(path):
    return int(re.search(r'_(\d+)\.pth$', path).group(1))


@pytest.fixture(scope='module')
def reference(cfg_file, tmp_path_factory):
    """Uninterrupted runs: the true best step and the writes per kind."""
    out = {}
    for by_epoch in (True, False):
        work = str(tmp_path_factory.mktemp('ref'))
        writes = []
        real = fileio.atomic_write_bytes

        def spy(data, filename):
            writes.append(osp.basename(filename))
            return real(data, filename)

        mp = pytest.MonkeyPatch()
        mp.setattr(fileio, 'atomic_write_bytes', spy)
        import rsitr_mm.engine.hooks.atomic_checkpoint as atomic
        mp.setattr(atomic, 'atomic_write_bytes', spy)
        try:
            runner = _train(cfg_file, work, by_epoch, -1)
        finally:
            mp.undo()
        best = _best_files(work)
        assert len(best) == 1
        out[by_epoch] = dict(
            best_step=_step(best[0]),
            best_score=runner.message_hub.get_info('best_score'),
            last_iter=runner.iter,
            writes=writes)
    return out


KIND = {
    'epoch': lambda n: n.startswith('epoch_'),
    'iter': lambda n: n.startswith('iter_'),
    'best': lambda n: n.startswith('best_'),
    'last_checkpoint': lambda n: n == 'last_checkpoint',
}


def _injector(kind, occurrence, fault):
    """An ``os.fsync`` replacement failing the n-th write of ``kind``."""
    seen = [0]
    real_fsync = os.fsync

    def fsync(fd):
        path = os.readlink(f'/proc/self/fd/{fd}')
        name = osp.basename(path)
        # temporary files are named '.<target>.<random>.tmp'
        target = name[1:].rsplit('.', 2)[0] if name.endswith('.tmp') else ''
        if target and KIND[kind](target):
            seen[0] += 1
            if seen[0] == occurrence:
                if fault == 'enospc':
                    raise OSError(errno.ENOSPC, 'No space left on device')
                # a kill leaves the half-written temporary file behind
                # (the real one is cleaned up by the unwinding below)
                size = os.fstat(fd).st_size
                with open(path, 'rb') as src, open(
                        osp.join(osp.dirname(path),
                                 f'.{target}.killed.tmp'), 'wb') as dst:
                    dst.write(src.read(size // 2))
                raise SimulatedKill(f'killed while writing {target}')
        return real_fsync(fd)

    return fsync


# (id, kind, by_epoch, max_keep_ckpts)
POINTS = [
    ('epoch', 'epoch', True, -1),
    ('epoch-keep1', 'epoch', True, 1),
    ('iter', 'iter', False, -1),
    ('iter-keep1', 'iter', False, 1),
    ('best', 'best', True, -1),
    ('best-keep1', 'best', True, 1),
    ('best-iter', 'best', False, 1),
    ('last_checkpoint', 'last_checkpoint', True, -1),
    ('last_checkpoint-keep1', 'last_checkpoint', True, 1),
    ('last_checkpoint-iter-keep1', 'last_checkpoint', False, 1),
]


@pytest.mark.parametrize('fault', ['kill', 'enospc'])
@pytest.mark.parametrize(
    'kind,by_epoch,keep', [p[1:] for p in POINTS], ids=[p[0] for p in POINTS])
def test_fault_then_resume(cfg_file, reference, tmp_path, monkeypatch, kind,
                           by_epoch, keep, fault):
    ref = reference[by_epoch]
    work = str(tmp_path / 'work')
    names = [n for n in ref['writes'] if KIND[kind](n)]
    # the best: its last write is the true best; others: the second write
    occurrence = len(names) if kind == 'best' else min(2, len(names))
    assert occurrence >= 1

    monkeypatch.setattr(fileio.os, 'fsync',
                        _injector(kind, occurrence, fault))
    with pytest.raises((SimulatedKill, OSError)):
        _train(cfg_file, work, by_epoch, keep)
    monkeypatch.undo()

    runner = _train(cfg_file, work, by_epoch, keep, resume=True)

    # the last checkpoint exists, loads and is the end of training
    with open(osp.join(work, 'last_checkpoint')) as f:
        last = f.read().strip()
    assert osp.isfile(last), last
    meta = safe_torch_load(last, map_location='cpu')['meta']
    assert meta['iter'] == ref['last_iter']
    # the best exists, loads, and is the true best
    best = _best_files(work)
    assert len(best) == 1, best
    assert _step(best[0]) == ref['best_step'], (best, ref)
    assert runner.message_hub.get_info('best_score') == ref['best_score']
    safe_torch_load(best[0], map_location='cpu')
    # no leftovers: temporary files, periodic checkpoints beyond the limit
    assert not glob.glob(osp.join(work, '.*')), os.listdir(work)
    periodic = glob.glob(osp.join(work, 'epoch_*.pth')) + glob.glob(
        osp.join(work, 'iter_*.pth'))
    if keep > 0:
        assert len(periodic) <= keep, periodic


def test_startup_removes_only_interrupted_saves(cfg_file, tmp_path):
    work = str(tmp_path / 'work')
    os.makedirs(work)
    stale = [osp.join(work, '.epoch_1.pth.abc123.tmp'),
             osp.join(work, '.last_checkpoint.x1y2.tmp')]
    kept = [osp.join(work, 'notes.tmp'), osp.join(work, '.hidden')]
    for p in stale + kept:
        open(p, 'w').close()
    _train(cfg_file, work, True, -1)
    assert not any(osp.exists(p) for p in stale)
    assert all(osp.exists(p) for p in kept)


def test_mid_epoch_resume_with_other_batch_size_is_refused(cfg_file,
                                                           tmp_path):
    work = str(tmp_path / 'work')
    cfg = Config.fromfile(cfg_file)
    cfg.work_dir = work
    cfg.experiment_name = 'layout_a'
    cfg.train_cfg.max_epochs = 1
    cfg.default_hooks.checkpoint.update(by_epoch=False, interval=2,
                                        save_best=None, max_keep_ckpts=-1)
    Runner.from_cfg(cfg).train()
    cfg = Config.fromfile(cfg_file)
    cfg.work_dir = work
    cfg.experiment_name = 'layout_b'
    cfg.resume = True
    cfg.load_from = osp.join(work, 'iter_2.pth')
    cfg.train_dataloader.batch_size = 4
    with pytest.raises(RuntimeError) as err:
        Runner.from_cfg(cfg).train()
    msg = str(err.value)
    assert 'mid-epoch' in msg and 'batch_size 8 -> 4' in msg
    assert 'epoch_N.pth' in msg


def test_full_disk_error_names_the_file_and_folder(cfg_file, tmp_path,
                                                   monkeypatch):
    work = str(tmp_path / 'work')
    monkeypatch.setattr(fileio.os, 'fsync', _injector('epoch', 1, 'enospc'))
    with pytest.raises(OSError) as err:
        _train(cfg_file, work, True, -1)
    msg = str(err.value)
    assert err.value.errno == errno.ENOSPC
    assert 'epoch_1.pth' in msg and repr(work) in msg, msg
    assert 'bytes free' in msg and 'No space left on device' in msg
