# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Intra-op threads that fit the machine, and single-threaded small ops.

PyTorch starts one intra-op (OpenMP) thread per core. When another process
holds one of those cores, every parallel region waits for the thread that
is not scheduled: on a shared 2-core machine a demo training step took
seven times longer with 2 threads than with 1, and ``retrieval_recall`` 20
to 70 times longer (``docs/benchmarks.md``, "Threads on a shared
machine"). So every entry point calls :func:`setup_threads` once:

* ``--threads N`` (or ``RSITR_MM_THREADS=N``; ``OMP_NUM_THREADS`` is honoured
  too) is used as given;
* otherwise (``auto``) the main process takes the *free* cores: the cores it
  may run on (``os.sched_getaffinity``, divided among ``LOCAL_WORLD_SIZE``
  processes of a ``torchrun`` job), minus the cores other processes keep
  busy *now*, minus the data-loader workers that run beside it; never fewer
  than 1.

"Busy now" is sampled, not read from the load average: the 1-minute load
average lags (it still reads 0.9 a minute after other work ended, and a demo
then ran on 1 thread of an idle 2-core machine).
:func:`sample_others_busy` reads the busy jiffies of the usable cores from
``/proc/stat`` twice, :data:`SAMPLE_S` apart, subtracts this process's own
CPU time over the same window and divides by the elapsed time: the cores
other processes used. A core counts as busy when others use at least half of
it (:func:`busy_cores` rounds half up). Off Linux, or without ``/proc``, the
1-minute load average is the fallback.

The choice is made once, at start, and logged once. Loops of many small
reductions (the exact recall's rank loop) gain nothing from a thread pool
and lose most to a busy core, so they run under :func:`single_threaded`
whatever the setting. ``exact_topk`` (one large product and one top-k per
gallery chunk, which a busy core slows about 1.2x either way) keeps the
process's setting unless given ``threads`` (:func:`limited_threads`).
"""
import contextlib
import os
import time
from typing import ContextManager, Iterator, Optional, Tuple, Union

import torch

#: The environment variable that overrides the automatic choice.
ENV_VAR = 'RSITR_MM_THREADS'

_logged = False


def usable_cores() -> int:
    """Cores this process may run on, shared among local ranks.

    Returns:
        int: ``len(os.sched_getaffinity(0))`` (``os.cpu_count()`` off
        Linux) divided by ``LOCAL_WORLD_SIZE``; at least 1.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    local = max(1, int(os.environ.get('LOCAL_WORLD_SIZE', '1') or 1))
    return max(1, cores // local)


#: Seconds :func:`sample_others_busy` watches the CPU counters.
SAMPLE_S = 0.2

#: ``/proc/stat`` fields (after the name) that count busy time: user, nice,
#: system, irq, softirq, steal (guest time is already inside user/nice).
_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)

_busy_cache: Optional[Tuple[int, str]] = None


def _busy_seconds(cpus: Optional[set], stat: str = '/proc/stat') -> float:
    """Busy CPU seconds since boot, summed over ``cpus`` (all when None or
    when the file has no per-CPU lines)."""
    with open(stat) as f:
        lines = [line.split() for line in f if line.startswith('cpu')]
    per_cpu = {int(p[0][3:]): p for p in lines if p[0] != 'cpu'}
    if cpus is not None and per_cpu and cpus <= set(per_cpu):
        rows = [per_cpu[c] for c in cpus]
    else:
        rows = [p for p in lines if p[0] == 'cpu']
    jiffies = sum(int(p[1 + i]) for p in rows for i in _BUSY_FIELDS
                  if 1 + i < len(p))
    return jiffies / os.sysconf('SC_CLK_TCK')


def _own_seconds() -> float:
    """CPU seconds this process (all its threads) has used."""
    t = os.times()
    return t.user + t.system


def sample_others_busy(interval: float = SAMPLE_S) -> Optional[float]:
    """Cores other processes keep busy now, sampled over ``interval``.

    Reads the busy time of the cores this process may use (``/proc/stat``)
    before and after ``interval`` seconds, less this process's own CPU time
    over the window, divided by the elapsed wall time.

    Args:
        interval (float): seconds to watch (the call sleeps that long).

    Returns:
        float | None: cores busy by others (>= 0), ``None`` where
        ``/proc/stat`` cannot be read (not Linux).
    """
    try:
        cpus = set(os.sched_getaffinity(0))
    except AttributeError:
        cpus = None
    try:
        busy0, own0, t0 = _busy_seconds(cpus), _own_seconds(), \
            time.monotonic()
        time.sleep(interval)
        busy1, own1, t1 = _busy_seconds(cpus), _own_seconds(), \
            time.monotonic()
    except (OSError, ValueError, AttributeError):
        return None
    elapsed = max(t1 - t0, 1e-6)
    return max(0.0, ((busy1 - busy0) - (own1 - own0)) / elapsed)


def busy_cores() -> Tuple[int, str]:
    """Cores other processes keep busy, and what was measured (for the log).

    Sampled once per process (:func:`sample_others_busy`; a core counts
    when others use at least half of it); the 1-minute load average,
    rounded, where ``/proc/stat`` is missing; 0 when neither is available.

    Returns:
        tuple[int, str]: the count and e.g. ``'others busy 0.1 core(s)
        (sampled 0.2 s)'``.
    """
    global _busy_cache
    if _busy_cache is None:
        others = sample_others_busy()
        if others is not None:
            _busy_cache = (int(others + 0.5),
                           f'others busy {others:.1f} core(s) (sampled '
                           f'{SAMPLE_S:g} s)')
        else:
            try:
                load = os.getloadavg()[0]
                _busy_cache = (int(load + 0.5),
                               f'1-min load average {load:.1f}')
            except (AttributeError, OSError):
                _busy_cache = (0, 'load unknown')
    return _busy_cache


def _parse(value: Union[int, str, None], source: str) -> Optional[int]:
    """``None`` for automatic, else a positive int (ValueError otherwise)."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in ('', 'auto'):
        return None
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise ValueError(f'{source} must be a positive integer or "auto", '
                         f'got {value!r}')
    return number


def choose_threads(requested: Union[int, str, None] = None,
                   workers: int = 0) -> Tuple[int, str]:
    """The intra-op thread count for this process, and why.

    Args:
        requested (int | str, optional): ``--threads`` (``None`` or
            ``'auto'``: not given).
        workers (int): data-loader worker processes running beside the main
            process.

    Returns:
        tuple[int, str]: the count and a one-line reason for the log.
    """
    for value, source in ((requested, '--threads'),
                          (os.environ.get(ENV_VAR), ENV_VAR),
                          (os.environ.get('OMP_NUM_THREADS'),
                           'OMP_NUM_THREADS')):
        number = _parse(value, source)
        if number is not None:
            return number, f'set by {source}'
    cores, (busy, measured) = usable_cores(), busy_cores()
    free = max(1, cores - busy - max(0, workers))
    return free, (f'auto: {cores} usable core(s), {measured}, '
                  f'{workers} loader worker(s); override with --threads N '
                  f'or {ENV_VAR}=N')


def setup_threads(requested: Union[int, str, None] = None,
                  workers: int = 0,
                  log: bool = True) -> int:
    """Set ``torch.set_num_threads`` for this process (see module doc).

    Args:
        requested (int | str, optional): ``--threads``; ``None``/``'auto'``
            picks from the free cores.
        workers (int): data-loader workers beside the main process.
        log (bool): print the choice (once per process).

    Returns:
        int: the thread count now in use.
    """
    global _logged
    threads, why = choose_threads(requested, workers)
    torch.set_num_threads(threads)
    if log and not _logged:
        _logged = True
        from mmengine.logging import print_log
        print_log(f'intra-op threads: {threads} ({why})', logger='current')
    return threads


def loader_workers(cfg) -> int:
    """Most ``num_workers`` of the dataloaders in ``cfg`` (they run one at a
    time beside the main process).

    Args:
        cfg (Config | dict): a merged config.

    Returns:
        int: 0 when no loader has int workers.
    """
    most = 0
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key, None) if hasattr(cfg, 'get') else None
        workers = loader.get('num_workers', 0) if loader else 0
        if isinstance(workers, int):
            most = max(most, workers)
    return most


def add_threads_arg(parser) -> None:
    """Add ``--threads`` to an ``argparse`` parser."""
    parser.add_argument(
        '--threads',
        default=None,
        help='intra-op CPU threads of this process (default: auto, the free '
        f'cores; env {ENV_VAR})')


@contextlib.contextmanager
def limited_threads(count: Optional[int]) -> Iterator[None]:
    """Run the block with ``count`` intra-op threads, then restore the
    setting.

    Args:
        count (int, optional): threads for the block; ``None`` keeps the
            process's setting (a no-op).
    """
    before = torch.get_num_threads()
    if count is None or count == before:
        yield
        return
    if count < 1:
        raise ValueError(f'threads must be a positive integer, got {count}')
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def single_threaded(enabled: bool = True) -> ContextManager[None]:
    """Run the block with one intra-op thread, then restore the setting.

    For loops of small reductions on the CPU, where a thread pool adds
    synchronisation per op and stalls when a core is busy.

    Args:
        enabled (bool): ``False`` makes this a no-op (e.g. for a GPU
            tensor).
    """
    return limited_threads(1 if enabled else None)
