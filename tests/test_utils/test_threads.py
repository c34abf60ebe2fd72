# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Intra-op threads: free cores minus loader workers, overrides, logged
once; small-op loops single-threaded (timings: tools/benchmarks/
thread_contention.py, docs/benchmarks.md)."""
import importlib

import pytest
import torch

from rsitr_mm.utils import threads


@pytest.fixture
def machine(monkeypatch):
    """A machine of ``cores`` usable cores at a given load, no overrides."""
    for name in (threads.ENV_VAR, 'OMP_NUM_THREADS'):
        monkeypatch.delenv(name, raising=False)

    def set_machine(cores, load):
        monkeypatch.setattr(threads.os, 'sched_getaffinity',
                            lambda pid: set(range(cores)))
        monkeypatch.setattr(threads.os, 'getloadavg',
                            lambda: (load, load, load))
    return set_machine


@pytest.mark.parametrize('cores,load,workers,expected', [
    (2, 0.1, 0, 2),   # idle: every core
    (2, 1.2, 0, 1),   # one busy core: the free one
    (2, 6.0, 0, 1),   # overloaded: never below 1
    (16, 2.0, 4, 10),  # free cores minus the loader workers
])
def test_auto_takes_the_free_cores(machine, cores, load, workers, expected):
    machine(cores, load)
    count, why = threads.choose_threads(None, workers)
    assert count == expected
    assert why.startswith(f'auto: {cores} usable core(s), load '
                          f'{round(load)}, {workers} loader worker(s)')


def test_local_ranks_share_the_cores(machine, monkeypatch):
    machine(16, 0.0)
    monkeypatch.setenv('LOCAL_WORLD_SIZE', '4')
    assert threads.choose_threads()[0] == 4


def test_overrides_win_in_order(machine, monkeypatch):
    machine(2, 5.0)
    monkeypatch.setenv('OMP_NUM_THREADS', '2')
    assert threads.choose_threads() == (2, 'set by OMP_NUM_THREADS')
    monkeypatch.setenv(threads.ENV_VAR, '3')
    assert threads.choose_threads() == (3, f'set by {threads.ENV_VAR}')
    assert threads.choose_threads('4') == (4, 'set by --threads')
    monkeypatch.setenv(threads.ENV_VAR, 'auto')
    assert threads.choose_threads('auto')[1] == 'set by OMP_NUM_THREADS'
    with pytest.raises(ValueError, match='--threads must be a positive'):
        threads.choose_threads('0')


def test_setup_sets_torch_and_logs_once(machine, monkeypatch):
    machine(2, 1.0)
    logged = []
    monkeypatch.setattr(threads, '_logged', False)
    import mmengine.logging
    monkeypatch.setattr(mmengine.logging, 'print_log',
                        lambda msg, **kw: logged.append(msg))
    before = torch.get_num_threads()
    try:
        assert threads.setup_threads(None, workers=0) == 1
        assert torch.get_num_threads() == 1
        threads.setup_threads('2')
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert logged == ['intra-op threads: 1 (auto: 2 usable core(s), load 1, '
                      '0 loader worker(s); override with --threads N or '
                      f'{threads.ENV_VAR}=N)']


def test_loader_workers_is_the_largest():
    cfg = dict(train_dataloader=dict(num_workers=3),
               val_dataloader=dict(num_workers=1), test_dataloader=None)
    assert threads.loader_workers(cfg) == 3


def test_recall_rank_loop_runs_single_threaded(monkeypatch):
    """retrieval_recall counts ranks with one thread, then restores the
    process's setting."""
    rr = importlib.import_module(
        'rsitr_mm.evaluation.functional.retrieval_recall')
    seen = []
    original = rr._ranks

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(*args, **kwargs)

    monkeypatch.setattr(rr, '_ranks', spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        result = rr.retrieval_recall(torch.eye(4).repeat_interleave(5, 1))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert seen == [1]
    assert result['i2t_R@1'] == 100.0 and result['t2i_R@1'] == 100.0
