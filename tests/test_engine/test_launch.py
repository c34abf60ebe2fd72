# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Launcher helpers: num_workers sizing and the TF32 switch."""
import pytest
import torch
from mmengine.config import Config

from rsitr_mm.engine import launch


def test_num_workers_sized_to_the_machine(monkeypatch):
    monkeypatch.setattr(launch, 'cpus_per_process', lambda: 4)
    assert launch.resolve_num_workers('auto') == 3
    assert launch.resolve_num_workers(2) == 2
    assert launch.resolve_num_workers(16) == 4  # capped
    with pytest.raises(ValueError, match='train_dataloader.num_workers'):
        launch.resolve_num_workers(-1, 'train_dataloader')
    cfg = Config(dict(train_dataloader=dict(num_workers='auto'),
                      val_dataloader=dict(num_workers=0)))
    launch.set_dataloader_defaults(cfg)
    assert cfg.train_dataloader.num_workers == 3
    assert cfg.train_dataloader.persistent_workers is True
    assert 'persistent_workers' not in cfg.val_dataloader


def test_cpus_per_process_divides_by_local_processes(monkeypatch):
    monkeypatch.setenv('LOCAL_WORLD_SIZE', '1')
    one = launch.cpus_per_process()
    monkeypatch.setenv('LOCAL_WORLD_SIZE', str(one + 1))
    assert launch.cpus_per_process() == 1


def test_tf32_switch(monkeypatch):
    matmul = torch.backends.cuda.matmul.allow_tf32
    conv = torch.backends.cudnn.allow_tf32
    try:
        launch.apply_tf32(Config(dict(env_cfg=dict(allow_tf32=None))))
        assert torch.backends.cuda.matmul.allow_tf32 == matmul
        launch.apply_tf32(Config(dict(env_cfg=dict(allow_tf32=True))))
        assert torch.backends.cuda.matmul.allow_tf32 is True
        assert torch.backends.cudnn.allow_tf32 is True
        launch.apply_tf32(Config(dict(env_cfg=dict(allow_tf32=False))))
        assert torch.backends.cuda.matmul.allow_tf32 is False
        assert torch.backends.cudnn.allow_tf32 is False
        with pytest.raises(ValueError, match='env_cfg.allow_tf32'):
            launch.apply_tf32(Config(dict(env_cfg=dict(allow_tf32='yes'))))
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul
        torch.backends.cudnn.allow_tf32 = conv


def test_finish_distributed_without_process_group_is_a_no_op():
    launch.finish_distributed()
    assert launch.finish_cpu_distributed is launch.finish_distributed
