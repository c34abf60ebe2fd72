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


def test_cpu_run_logs_processes_not_gpus(tmp_path, monkeypatch):
    """A CPU run's environment record says processes, never "GPU number";
    other records pass unchanged."""
    import logging
    record = logging.LogRecord(
        'mmengine', logging.INFO, __file__, 1,
        '\nRuntime environment:\n    seed: 0\n    GPU number: 2\n', None,
        None)
    other = logging.LogRecord('mmengine', logging.INFO, __file__, 1,
                              'GPU number: 2', None, None)
    log_filter = launch.CPUProcessCountFilter()
    assert log_filter.filter(record) and log_filter.filter(other)
    assert 'GPU number' not in record.msg
    assert '    Processes: 2 (CPU)\n' in record.msg
    assert other.msg == 'GPU number: 2'

    if torch.cuda.is_available():
        pytest.skip('the rewrite only applies without a GPU')
    from mmengine.logging import MMLogger
    from mmengine.runner import Runner
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    launch.setup_launcher(cfg, 'none')
    assert cfg.launcher == 'none'
    runner = Runner.__new__(Runner)  # only what _log_env reads
    runner.logger = MMLogger.get_instance(
        'test_cpu_env_log', log_file=str(tmp_path / 'env.log'))
    runner._randomness_cfg, runner._seed = {}, 0
    runner._launcher, runner._distributed, runner._world_size = \
        'none', False, 1
    runner.cfg = Config()
    runner._log_env(dict(cudnn_benchmark=False))
    log = (tmp_path / 'env.log').read_text()
    assert 'Processes: 1 (CPU)' in log and 'GPU number' not in log
    assert not runner.logger.filters  # only during that record
    launch.describe_cpu_processes()  # idempotent: wrapped once
    assert Runner._log_env.__wrapped__.__name__ == '_log_env'
    assert not hasattr(Runner._log_env.__wrapped__, '__wrapped__')


def test_cpu_pytorch_launcher_dumps_the_gloo_backend(monkeypatch, free_port):
    """``--launcher pytorch`` without a GPU: the config the Runner logs and
    dumps names gloo, the backend that runs."""
    if torch.cuda.is_available():
        pytest.skip('GPU runs keep nccl')
    import torch.distributed as dist
    port = free_port()
    for key, value in dict(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port),
                           RANK='0', WORLD_SIZE='1').items():
        monkeypatch.setenv(key, value)
    cfg = Config(dict(env_cfg=dict(cudnn_benchmark=False,
                                   dist_cfg=dict(backend='nccl'))))
    try:
        launch.setup_launcher(cfg, 'pytorch')
        assert dist.get_backend() == 'gloo'
        assert cfg.env_cfg.dist_cfg.backend == 'gloo'
        assert cfg.env_cfg.cudnn_benchmark is False  # the rest kept
        assert cfg.model_wrapper_cfg.type == 'CPUFriendlyDDP'
        assert "backend='nccl'" not in cfg.pretty_text
        import logging
        record = logging.LogRecord(
            'mmengine', logging.INFO, __file__, 1,
            'Runtime environment:\n    GPU number: 1', None, None)
        launch.CPUProcessCountFilter().filter(record)
        assert record.msg.endswith('Processes: 1 (CPU, gloo)')
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
