# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Evaluation passes log items done, rate and ETA, then a closing line."""
import importlib

from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.runner import Runner

from rsitr_mm.engine.data_root import merge_cfg_options
from rsitr_mm.engine.launch import set_dataloader_defaults
from rsitr_mm.engine.runners.eval_progress import EvalProgress


def test_lines_follow_the_interval_with_rate_and_eta():
    now = [0.0]
    lines = []
    prog = EvalProgress('test', 100, interval_s=30, log=lines.append,
                        clock=lambda: now[0])
    for _ in range(9):  # 10 images every 10 s
        now[0] += 10
        prog.update(10)
    # lines at 30, 60 and 90 s only
    assert lines == [
        'test: 30/100 images encoded, 1.0 images/s, ETA 1m10s',
        'test: 60/100 images encoded, 1.0 images/s, ETA 40s',
        'test: 90/100 images encoded, 1.0 images/s, ETA 10s']
    now[0] += 10
    prog.update(10)  # the last batch: no progress line, the closing one
    prog.finish()
    assert lines[3:] == ['test: 100 images encoded in 1m40s (1.0 images/s)']


def test_runner_test_pass_logs_progress(tmp_path, tiny_demo, monkeypatch):
    loop_module = importlib.import_module(
        'rsitr_mm.engine.runners.retrieval_loop')
    monkeypatch.setattr(loop_module, 'PROGRESS_INTERVAL_S', 0.0)
    data_root = tiny_demo.dataset(tmp_path, num_images=14, split=(4, 2, 8),
                                  seed=0)
    cfg = Config.fromfile(tiny_demo.config(
        tmp_path / 'cfg.py', data_root,
        extra='test_dataloader = dict(batch_size=2)\n'))
    cfg.work_dir = str(tmp_path / 'work')
    merge_cfg_options(cfg, {'data_root': data_root})
    set_dataloader_defaults(cfg)
    runner = Runner.from_cfg(cfg)
    lines = []
    logger = MMLogger.get_current_instance()
    original = logger.log
    monkeypatch.setattr(logger, 'log', lambda level, msg, *a, **k: (
        lines.append(str(msg)), original(level, msg, *a, **k)))
    runner.test()
    progress = [line for line in lines if line.startswith('test: ')]
    # 4 batches of 2: a line after batches 1-3, then the closing line
    assert [p.split(',')[0] for p in progress[:3]] == [
        'test: 2/8 images encoded', 'test: 4/8 images encoded',
        'test: 6/8 images encoded']
    assert progress[3].startswith('test: 8 images encoded in ')
    assert len(progress) == 4
