# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Intra-op threads: free cores (what others use now, sampled) minus loader
workers, overrides, logged once; small-op loops single-threaded (timings:
tools/benchmarks/thread_contention.py, docs/benchmarks.md)."""
import importlib
import math
import os
import sys

import pytest
import torch

from rsitr_mm.utils import threads


@pytest.fixture
def machine(monkeypatch):
    """A machine of ``cores`` usable cores where other processes keep
    ``busy`` cores busy now (the sampler's answer), no overrides."""
    for name in (threads.ENV_VAR, 'OMP_NUM_THREADS'):
        monkeypatch.delenv(name, raising=False)

    def set_machine(cores, busy):
        monkeypatch.setattr(threads.os, 'sched_getaffinity',
                            lambda pid: set(range(cores)))
        monkeypatch.setattr(threads, 'sample_others_busy',
                            lambda interval=threads.SAMPLE_S: busy)
        monkeypatch.setattr(threads, '_busy_cache', None)
    return set_machine


@pytest.mark.parametrize('cores,busy,workers,expected', [
    (2, 0.1, 0, 2),   # idle: every core
    (2, 0.4, 0, 2),   # less than half a core busy: not counted
    (2, 0.5, 0, 1),   # half a core or more counts as busy
    (2, 1.2, 0, 1),   # one busy core: the free one
    (2, 6.0, 0, 1),   # overloaded: never below 1
    (2, 0.0, 1, 1),   # a loader worker takes a core
    (16, 2.0, 4, 10),  # free cores minus the loader workers
])
def test_auto_takes_the_free_cores(machine, cores, busy, workers, expected):
    machine(cores, busy)
    count, why = threads.choose_threads(None, workers)
    assert count == expected
    assert why.startswith(f'auto: {cores} usable core(s), others busy '
                          f'{busy:.1f} core(s) (sampled '
                          f'{threads.SAMPLE_S:g} s), {workers} loader '
                          'worker(s)')


def test_busy_is_sampled_once_per_process(machine, monkeypatch):
    machine(2, 0.0)
    calls = []
    monkeypatch.setattr(threads, 'sample_others_busy',
                        lambda interval=0: calls.append(1) or 1.0)
    assert threads.choose_threads()[0] == 1
    assert threads.choose_threads(None, 0)[0] == 1
    assert calls == [1]


def test_load_average_is_the_fallback_without_proc(machine, monkeypatch):
    machine(2, None)  # /proc/stat unreadable
    monkeypatch.setattr(threads.os, 'getloadavg', lambda: (1.4, 1.0, 0.5))
    count, why = threads.choose_threads()
    assert count == 1
    assert '1-min load average 1.4' in why


def test_sampler_subtracts_own_time(monkeypatch):
    """Busy seconds of the cores minus this process's CPU seconds, over
    the elapsed time."""
    busy = iter([100.0, 100.9])   # 0.9 core-seconds on the cores
    own = iter([5.0, 5.5])        # 0.5 of them this process's
    clock = iter([10.0, 11.0])    # over 1 s
    monkeypatch.setattr(threads, '_busy_seconds', lambda cpus: next(busy))
    monkeypatch.setattr(threads, '_own_seconds', lambda: next(own))
    monkeypatch.setattr(threads.time, 'monotonic', lambda: next(clock))
    monkeypatch.setattr(threads.time, 'sleep', lambda s: None)
    assert threads.sample_others_busy(1.0) == pytest.approx(0.4)


def test_busy_seconds_reads_the_usable_cores(tmp_path, monkeypatch):
    stat = tmp_path / 'stat'
    # user nice system idle iowait irq softirq steal guest guest_nice
    stat.write_text('cpu  300 0 100 900 50 0 0 0 0 0\n'
                    'cpu0 100 0 0 500 50 0 0 0 0 0\n'
                    'cpu1 200 0 100 400 0 0 0 0 0 0\n'
                    'intr 12345\n')
    monkeypatch.setattr(threads.os, 'sysconf', lambda name: 100)
    assert threads._busy_seconds({1}, str(stat)) == pytest.approx(3.0)
    assert threads._busy_seconds(None, str(stat)) == pytest.approx(4.0)
    # a core the file does not list: the machine-wide line
    assert threads._busy_seconds({7}, str(stat)) == pytest.approx(4.0)


@pytest.mark.skipif(not sys.platform.startswith('linux'),
                    reason='/proc/stat is Linux only')
def test_real_sampler_on_linux():
    others = threads.sample_others_busy(0.05)
    assert others is not None and math.isfinite(others) and others >= 0
    assert others <= len(os.sched_getaffinity(0)) + 0.5


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
    assert logged == ['intra-op threads: 1 (auto: 2 usable core(s), others '
                      f'busy 1.0 core(s) (sampled {threads.SAMPLE_S:g} s), '
                      '0 loader worker(s); override with --threads N or '
                      f'{threads.ENV_VAR}=N)']


def test_loader_workers_is_the_largest():
    cfg = dict(train_dataloader=dict(num_workers=3),
               val_dataloader=dict(num_workers=1), test_dataloader=None)
    assert threads.loader_workers(cfg) == 3


def test_limited_threads_sets_and_restores():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with threads.limited_threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with threads.limited_threads(None):
            assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError):
            with threads.single_threaded():
                assert torch.get_num_threads() == 1
                raise RuntimeError('restored on errors too')
        assert torch.get_num_threads() == 2
        with threads.single_threaded(enabled=False):
            assert torch.get_num_threads() == 2
        with pytest.raises(ValueError, match='positive integer'):
            with threads.limited_threads(0):
                pass
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def threads_seen(monkeypatch):
    """Wrap ``module.name`` to record the intra-op threads it runs with;
    the test body runs with 2 threads, restored afterwards."""
    seen = []

    def spy_on(module, name):
        original = getattr(module, name)

        def spy(*args, **kwargs):
            seen.append(torch.get_num_threads())
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, spy)
        return seen

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield spy_on
    torch.set_num_threads(before)


def test_recall_rank_loop_runs_single_threaded(threads_seen):
    """retrieval_recall counts ranks with one thread, then restores the
    process's setting."""
    rr = importlib.import_module(
        'rsitr_mm.evaluation.functional.retrieval_recall')
    seen = threads_seen(rr, '_ranks')
    result = rr.retrieval_recall(torch.eye(4).repeat_interleave(5, 1))
    assert torch.get_num_threads() == 2
    assert seen == [1]
    assert result['i2t_R@1'] == 100.0 and result['t2i_R@1'] == 100.0


def test_exact_topk_threads_argument(threads_seen):
    """``exact_topk(threads=1)`` runs its chunk loop on one intra-op thread
    with the same result; the process's setting is back afterwards;
    ``None`` keeps it; 0 is refused."""
    from rsitr_mm.apis import exact_topk, search
    seen = threads_seen(search, '_chunk_topk')
    g = torch.Generator().manual_seed(3)
    queries, gallery = torch.randn(6, 16, generator=g), torch.randn(
        300, 16, generator=g)
    single = exact_topk(queries, gallery, 5, chunk_size=100, threads=1)
    assert torch.get_num_threads() == 2
    pooled = exact_topk(queries, gallery, 5, chunk_size=100)
    assert seen == [1, 1, 1, 2, 2, 2]
    expected = torch.topk(queries @ gallery.t(), 5, dim=1)
    assert (single[1] == expected.indices.numpy()).all()
    assert (single[1] == pooled[1]).all()
    assert torch.allclose(torch.from_numpy(single[0]), expected.values,
                          atol=1e-5)
    with pytest.raises(ValueError, match='threads must be >= 1'):
        exact_topk(queries, gallery, 5, threads=0)
