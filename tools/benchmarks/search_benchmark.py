# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Speed and memory of exact top-k search (rsitr_mm.apis.exact_topk).

Random L2-normalised embeddings stand in for an encoded gallery (the model's
encoding time is not part of this). For every gallery size the script

1. builds the on-disk galleries: ``.npy`` memory maps in float16 (all sizes)
   and float32 (sizes up to ``--max-fp32``), written chunk by chunk
   ("build s" = generating + normalising + writing them);
2. runs one batch of ``--queries`` queries, ``-k`` results, with each method
   in a fresh subprocess, so that its memory is measured alone:

   - ``chunked``: :func:`exact_topk` over the memory map, products in
     float32 or float16;
   - ``full``: the whole gallery in RAM, one ``queries @ gallery.T`` and
     ``torch.topk`` (sizes up to ``--max-full``).

Memory columns (Linux ``/proc/self/status``):

- ``peak RSS``: the process's peak resident size (``VmHWM``, reset right
  before the search), including torch itself and the memory-mapped file
  pages that were read (page cache, reclaimable);
- ``search anon``: the peak of anonymous memory (``RssAnon``, sampled every
  2 ms) minus its value before the search: what the search allocates.

Example::

    python tools/benchmarks/search_benchmark.py --sizes 10000 100000 1000000

prints a Markdown table.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np


def _status_kib(field: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    return -1


class AnonPeak:
    """Sample ``RssAnon`` in a thread; ``peak`` in KiB."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.peak = _status_kib('RssAnon')
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _status_kib('RssAnon'))
            time.sleep(self.interval)

    def __enter__(self) -> 'AnonPeak':
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _status_kib('RssAnon'))


def _reset_peak_rss() -> bool:
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def write_gallery(path: str, n: int, dim: int, dtype: str, seed: int,
                  chunk: int = 65536) -> float:
    """Write ``n`` random unit vectors to a ``.npy`` memory map; seconds."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(
        path, mode='w+', dtype=dtype, shape=(n, dim))
    for s in range(0, n, chunk):
        e = min(s + chunk, n)
        x = rng.standard_normal((e - s, dim), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[s:e] = x
    out.flush()
    del out
    return time.perf_counter() - t0


def worker(args: argparse.Namespace) -> None:
    """Run one (gallery, method) measurement; print a JSON line."""
    import torch

    from rsitr_mm.apis import exact_topk
    rng = np.random.default_rng(12345)
    q = rng.standard_normal((args.queries, args.dim), dtype=np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    queries = torch.from_numpy(q)
    gallery = np.load(args.gallery, mmap_mode='r')
    load_s = 0.0
    if args.method == 'full':
        t0 = time.perf_counter()
        gallery_t = torch.from_numpy(np.array(gallery, dtype=np.float32))
        load_s = time.perf_counter() - t0

    def run_once():
        if args.method == 'full':
            return torch.topk(queries @ gallery_t.t(), args.k, dim=1)
        return exact_topk(queries, gallery, args.k,
                          chunk_size=args.chunk_size, dtype=args.dtype)

    run_once()  # warm-up: file pages in the page cache, kernels ready
    reset = _reset_peak_rss()
    anon_before = _status_kib('RssAnon')
    times = []
    with AnonPeak() as anon:
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            run_once()
            times.append(time.perf_counter() - t0)
    print(json.dumps(dict(
        seconds=float(np.median(times)),
        load_s=load_s,
        peak_rss_mib=_status_kib('VmHWM') / 1024 if reset else None,
        search_anon_mib=(anon.peak - anon_before) / 1024,
        threads=torch.get_num_threads())))


def run_worker(gallery: str, method: str, dtype: str, args) -> dict:
    cmd = [
        sys.executable, osp.abspath(__file__), '--worker', '--gallery',
        gallery, '--method', method, '--dtype', dtype, '--queries',
        str(args.queries), '--dim', str(args.dim), '-k', str(args.k),
        '--chunk-size', str(args.chunk_size), '--repeats',
        str(args.repeats)
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--sizes', type=int, nargs='+',
                   default=[10000, 100000, 1000000])
    p.add_argument('--dim', type=int, default=512)
    p.add_argument('--queries', type=int, default=100)
    p.add_argument('-k', type=int, default=10)
    p.add_argument('--chunk-size', type=int, default=65536)
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--max-fp32', type=int, default=100000,
                   help='largest size also stored in float32')
    p.add_argument('--max-full', type=int, default=100000,
                   help='largest size with the full-product reference')
    p.add_argument('--work-dir', help='where the galleries go (default: a '
                   'temporary folder, removed at the end)')
    # worker mode (internal)
    p.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--gallery', help=argparse.SUPPRESS)
    p.add_argument('--method', help=argparse.SUPPRESS)
    p.add_argument('--dtype', default='float32', help=argparse.SUPPRESS)
    return p.parse_args()


def main() -> None:
    args = parse_args()
    if args.worker:
        worker(args)
        return
    tmp = None
    if args.work_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix='search_bench_')
        work_dir = tmp.name
    else:
        work_dir = args.work_dir
        os.makedirs(work_dir, exist_ok=True)
    rows = []
    load_before = os.getloadavg()[0]
    try:
        for n in args.sizes:
            stores = ['float16'] + (['float32'] if n <= args.max_fp32
                                    else [])
            built = {}
            for store in stores:
                path = osp.join(work_dir, f'gallery_{n}_{store}.npy')
                built[store] = (path, write_gallery(path, n, args.dim,
                                                    store, seed=n))
            plans = []
            for store in stores:
                plans.append((store, 'chunked', 'float32'))
            plans.append(('float16', 'chunked', 'float16'))
            if n <= args.max_full:
                plans.append((stores[-1], 'full', 'float32'))
            for store, method, dtype in plans:
                path, build_s = built[store]
                r = run_worker(path, method, dtype, args)
                rows.append((n, store, method, dtype, build_s, r))
                print(f'done: N={n} {store} {method} {dtype}: '
                      f'{r["seconds"]:.3f} s', file=sys.stderr)
            for path, _ in built.values():
                os.remove(path)
    finally:
        if tmp is not None:
            tmp.cleanup()

    print(f'\nQ={args.queries} queries, k={args.k}, D={args.dim}, '
          f'chunk_size={args.chunk_size}, median of {args.repeats} '
          f'warm runs, torch threads={rows[0][5]["threads"]}, '
          f'{os.cpu_count()} CPUs, 1-min load average {load_before:.1f} '
          f'before / {os.getloadavg()[0]:.1f} after\n')
    print('| gallery N | storage | method | products | build s | '
          'batch s | queries/s | peak RSS MiB | search anon MiB |')
    print('|---:|---|---|---|---:|---:|---:|---:|---:|')
    for n, store, method, dtype, build_s, r in rows:
        build = build_s + r['load_s']
        rss = '-' if r['peak_rss_mib'] is None else \
            f'{r["peak_rss_mib"]:.0f}'
        where = 'RAM (from ' + store + ' file)' if method == 'full' \
            else store + ' memmap'
        print(f'| {n:,} | {where} | {method} | {dtype} | {build:.2f} | '
              f'{r["seconds"]:.3f} | {args.queries / r["seconds"]:.0f} | '
              f'{rss} | {r["search_anon_mib"]:.0f} |')


if __name__ == '__main__':
    main()
