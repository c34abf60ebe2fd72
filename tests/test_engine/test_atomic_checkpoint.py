# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Atomic checkpoint writing: a failed save never damages the old file."""
import os

import pytest
import torch

import rsitr_mm.engine.hooks.atomic_checkpoint as atomic
import rsitr_mm.utils.fileio as fileio
from rsitr_mm.engine.hooks import (atomic_save_checkpoint,
                                   patch_atomic_checkpoint)


def test_roundtrip_and_no_leftovers(tmp_path):
    path = str(tmp_path / 'sub' / 'epoch_1.pth')
    state = dict(state_dict=dict(w=torch.arange(6.).view(2, 3)), meta={})
    atomic_save_checkpoint(state, path)
    loaded = torch.load(path, weights_only=False)
    assert torch.equal(loaded['state_dict']['w'], state['state_dict']['w'])
    assert os.listdir(tmp_path / 'sub') == ['epoch_1.pth']


def test_failed_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = str(tmp_path / 'epoch_1.pth')
    atomic_save_checkpoint(dict(v=torch.ones(3)), path)

    def crash(src, dst):
        raise OSError('killed during rename')

    monkeypatch.setattr(fileio.os, 'replace', crash)
    with pytest.raises(OSError, match='killed'):
        atomic_save_checkpoint(dict(v=torch.zeros(3)), path)
    # the old checkpoint is intact and no temporary file is left behind
    assert torch.equal(torch.load(path, weights_only=False)['v'],
                       torch.ones(3))
    assert os.listdir(tmp_path) == ['epoch_1.pth']


def test_patch_routes_mmengine_saves(tmp_path, monkeypatch):
    import mmengine.runner as runner_pkg
    from mmengine.runner import checkpoint as ckpt_mod
    from mmengine.runner import runner as runner_mod
    for mod in (runner_pkg, ckpt_mod, runner_mod):
        monkeypatch.setattr(mod, 'save_checkpoint', mod.save_checkpoint)
    calls = []
    monkeypatch.setattr(atomic, 'atomic_write_bytes',
                        lambda data, name: calls.append(name))
    patch_atomic_checkpoint()
    patch_atomic_checkpoint()  # idempotent
    assert runner_mod.save_checkpoint is atomic_save_checkpoint
    assert runner_pkg.save_checkpoint is atomic_save_checkpoint
    runner_mod.save_checkpoint({'a': 1}, str(tmp_path / 'x.pth'))
    assert calls == [str(tmp_path / 'x.pth')]
