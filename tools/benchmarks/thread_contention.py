# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Threads on a shared machine: what a busy core costs, before and after.

Starts ``--busy`` spinning processes beside this one (a busy core, as a
data-loader worker, a second job or a neighbour on a shared node makes one),
then times in this process, interleaved:

* the exact metric: ``retrieval_recall`` as shipped (its rank loop runs
  single-threaded), the same code with the thread pool of every core (the
  behaviour before), and the per-query argsort loop (the reference of goal
  1, one thread), on a 1093 x 5465 matrix;
* a demo training step (tiny CNN + BiGRU, batch 64) with the thread count
  :func:`rsitr_mm.utils.threads.choose_threads` picks, and with one thread
  per core (PyTorch's default).

Goals printed: ``retrieval_recall`` >= 10x faster than the argsort loop
under the same load; a training step with the chosen threads within 2x of
the best of (1 thread, all cores) measured without the busy processes
(``--busy 0`` run first, or ``--idle-ms``).

``--demo-epochs N`` instead times whole ``tools/demo.py --epochs N`` runs
(subprocesses, alternating: the automatic threads, then ``--threads`` of
every core as before), the busy processes running throughout.

Example::

    python tools/benchmarks/thread_contention.py --busy 1 --reps 5
    python tools/benchmarks/thread_contention.py --busy 1 --demo-epochs 2 \
        --reps 2
"""
import argparse
import contextlib
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
import time

HERE = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, osp.dirname(osp.dirname(HERE)))
sys.path.insert(0, HERE)

import importlib  # noqa: E402

import torch  # noqa: E402

# the module (the package exports a function of the same name)
rr = importlib.import_module(
    'rsitr_mm.evaluation.functional.retrieval_recall')
from rsitr_mm.utils.threads import choose_threads, usable_cores  # noqa

SPIN = 'while True:\n    pass\n'


@contextlib.contextmanager
def busy_processes(count: int):
    """``count`` processes spinning on the CPU for the duration."""
    procs = [subprocess.Popen([sys.executable, '-c', SPIN])
             for _ in range(count)]
    try:
        time.sleep(1.0 if count else 0)
        yield procs
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def pool_recall(sim):
    """``retrieval_recall`` with the thread pool of every core (before)."""
    original = rr.single_threaded
    rr.single_threaded = lambda enabled=True: contextlib.nullcontext()
    torch.set_num_threads(usable_cores())
    try:
        return rr.retrieval_recall(sim)
    finally:
        rr.single_threaded = original


def timed(fn, *args):
    t0 = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - t0) * 1000


def recall_rows(reps: int, images: int):
    from recall_speed import reference_recall
    g = torch.Generator().manual_seed(0)
    sim = torch.randn(images, 5 * images, generator=g)
    sim[torch.arange(images).repeat_interleave(5),
        torch.arange(5 * images)] += 2.5
    sim_np = sim.numpy()
    assert rr.retrieval_recall(sim) == pool_recall(sim)
    times = {'shipped': [], 'pool': [], 'argsort': []}
    for _ in range(reps):
        torch.set_num_threads(usable_cores())
        times['shipped'].append(timed(rr.retrieval_recall, sim))
        times['pool'].append(timed(pool_recall, sim))
        times['argsort'].append(timed(reference_recall, sim_np))
    return times


def step_rows(reps: int, chosen: int):
    from framework_overhead import PlainLoop, build_setup
    args = argparse.Namespace(iters=2, batch_size=64, image_size=64,
                              device='cpu', amp=False)
    with tempfile.TemporaryDirectory() as tmp:
        cfg, batches, state = build_setup(args, tmp)
        loop = PlainLoop(cfg, state, args, 10 * reps)
    loop(batches[0])  # warm-up
    times = {'chosen': [], 'all cores': []}
    for i in range(reps):
        for name, threads in (('chosen', chosen),
                              ('all cores', usable_cores())):
            torch.set_num_threads(threads)
            times[name].append(timed(loop, batches[i % len(batches)]))
    return times


def demo_rows(reps: int, epochs: int):
    """Wall seconds of whole demo runs, automatic vs every-core threads."""
    root = osp.dirname(osp.dirname(HERE))
    env = {k: v for k, v in os.environ.items()
           if k not in ('OMP_NUM_THREADS', 'RSITR_MM_THREADS')}
    times = {'auto threads': [], f'--threads {usable_cores()}': []}
    with tempfile.TemporaryDirectory() as tmp:
        data = osp.join(tmp, 'data')
        from rsitr_mm.datasets.synthetic import generate_synthetic_dataset
        generate_synthetic_dataset(data, 2000, 64, seed=0, progress=False)
        for _ in range(reps):
            for name in times:
                extra = [] if name == 'auto threads' else [
                    '--threads', str(usable_cores())]
                cmd = [sys.executable, osp.join(root, 'tools', 'demo.py'),
                       '--epochs', str(epochs), '--data-root', data,
                       '--work-dir', osp.join(tmp, 'work')] + extra
                t0 = time.perf_counter()
                subprocess.run(cmd, env=env, check=True,
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
                times[name].append(time.perf_counter() - t0)
    return times


def table(times, unit='ms'):
    lines = [f'| | best ({unit}) | median ({unit}) |', '|---|---:|---:|']
    for name, values in times.items():
        lines.append(f'| {name} | {min(values):.1f} | '
                     f'{statistics.median(values):.1f} |')
    return '\n'.join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--busy', type=int, default=1,
                   help='spinning processes started beside this one')
    p.add_argument('--reps', type=int, default=5)
    p.add_argument('--images', type=int, default=1093)
    p.add_argument('--skip-step', action='store_true',
                   help='only the metric')
    p.add_argument('--demo-epochs', type=int, default=None,
                   help='time whole demo runs of this many epochs instead')
    p.add_argument('--idle-ms', type=float, default=None,
                   help='best demo step time of an idle run, for the 2x '
                   'goal')
    args = p.parse_args(argv)
    with busy_processes(args.busy):
        chosen, why = choose_threads(None, 0)
        print(f'{usable_cores()} usable cores, {args.busy} busy process(es) '
              f'started, 1-min load {os.getloadavg()[0]:.1f}; chosen '
              f'threads: {chosen} ({why})\n')
        if args.demo_epochs:
            demo = demo_rows(args.reps, args.demo_epochs)
            print(f'tools/demo.py --epochs {args.demo_epochs} (wall '
                  'seconds, scenes generated beforehand):\n')
            print(table(demo, 's'))
            return
        rec = recall_rows(args.reps, args.images)
        print(f'retrieval_recall, {args.images} x {5 * args.images}, '
              f'{args.reps} interleaved reps:\n')
        print(table(rec))
        speedup = min(rec['argsort']) / min(rec['shipped'])
        print(f'\nshipped vs argsort loop: {speedup:.1f}x (goal >= 10x: '
              f'{"holds" if speedup >= 10 else "not met"}); pool (before) '
              f'vs shipped: {min(rec["pool"]) / min(rec["shipped"]):.1f}x '
              'slower')
        if args.skip_step:
            return
        step = step_rows(args.reps, chosen)
        print('\ndemo training step (batch 64):\n')
        print(table(step))
        ratio = min(step['all cores']) / min(step['chosen'])
        print(f'\nall cores vs chosen: {ratio:.1f}x slower')
        if args.idle_ms:
            worst = min(step['chosen']) / args.idle_ms
            print(f'chosen under load vs idle ({args.idle_ms:.1f} ms): '
                  f'{worst:.2f}x (goal <= 2x: '
                  f'{"holds" if worst <= 2 else "not met"})')


if __name__ == '__main__':
    main()
