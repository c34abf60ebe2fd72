# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Goal: ``exact_topk`` close to the bare matrix product it must compute.

For every gallery size, random L2-normalised float32 embeddings (and a
float16 copy of them, as stored by an image index) are held in RAM as numpy
arrays. In ONE process, interleaved, ``--reps`` times each:

* ``bare GEMM``: ``queries @ gallery.T`` on the float32 gallery (a torch
  tensor sharing the numpy memory), nothing else: the floor;
* ``exact_topk fp32``: :func:`rsitr_mm.apis.exact_topk` on the float32
  gallery (float32 products);
* ``exact_topk fp16 store``: the same on the float16 gallery (float32
  products; each chunk is converted on the fly).

The ratios of the best times are printed with the goal (<= 1.25x for the
float32 gallery, <= 1.5x for the float16 one). Exactness is checked against
the full product followed by a stable sort (lower index first on ties):
same indices, scores equal to 1e-5.

Example::

    python tools/benchmarks/topk_speed.py --sizes 300000 1000000 --reps 5
"""
import argparse
import os.path as osp
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

GOALS = {'fp32': 1.25, 'fp16': 1.5}


def _gallery(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    for s in range(0, n, 65536):
        e = min(s + 65536, n)
        x = rng.standard_normal((e - s, dim), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[s:e] = x
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--sizes', type=int, nargs='+',
                   default=[300000, 1000000])
    p.add_argument('--dim', type=int, default=512)
    p.add_argument('--queries', type=int, default=100)
    p.add_argument('-k', type=int, default=10)
    p.add_argument('--reps', type=int, default=5)
    p.add_argument('--threads', type=int, default=None)
    p.add_argument('--chunk-size', type=int, default=None,
                   help='exact_topk chunk_size (default: its default)')
    args = p.parse_args(argv)

    import torch

    from rsitr_mm.apis.search import exact_topk
    if args.threads:
        torch.set_num_threads(args.threads)
    kw = {} if args.chunk_size is None else dict(chunk_size=args.chunk_size)
    rng = np.random.default_rng(0)
    q = rng.standard_normal((args.queries, args.dim), dtype=np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    queries = torch.from_numpy(q)
    rows = []
    all_ok = True
    for n in args.sizes:
        g32 = _gallery(n, args.dim, seed=n)
        g16 = g32.astype(np.float16)
        g32_t = torch.from_numpy(g32)

        # exactness against the full product + stable sort
        for name, gal in (('fp32', g32), ('fp16', g16)):
            full = queries @ torch.from_numpy(gal).float().t()
            ref = torch.sort(full, dim=1, descending=True, stable=True)
            ref_i = ref.indices[:, :args.k].numpy()
            ref_s = ref.values[:, :args.k].numpy()
            del full, ref
            s, i = exact_topk(queries, gal, args.k, **kw)
            ok = bool((i == ref_i).all() and np.allclose(s, ref_s,
                                                         atol=1e-5))
            all_ok &= ok
            print(f'N={n:,} {name} store: same results as full product + '
                  f'stable sort: {ok}', flush=True)

        times = {'bare': [], 'fp32': [], 'fp16': []}
        for _ in range(args.reps):
            t0 = time.perf_counter()
            out = queries @ g32_t.t()
            times['bare'].append(time.perf_counter() - t0)
            del out
            t0 = time.perf_counter()
            exact_topk(queries, g32, args.k, **kw)
            times['fp32'].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            exact_topk(queries, g16, args.k, **kw)
            times['fp16'].append(time.perf_counter() - t0)
        rows.append((n, times))
        del g32, g16, g32_t

    print(f'\nQ={args.queries}, k={args.k}, D={args.dim}, torch threads '
          f'{torch.get_num_threads()}, {args.reps} interleaved reps in one '
          'process, galleries in RAM\n')
    print('| gallery N | bare fp32 GEMM best / median (s) | exact_topk fp32 '
          'best / median (s) | ratio | exact_topk fp16 store best / median '
          '(s) | ratio |')
    print('|---:|---:|---:|---:|---:|---:|')
    verdicts = []
    for n, t in rows:
        b = min(t['bare'])
        r32, r16 = min(t['fp32']) / b, min(t['fp16']) / b
        verdicts.append(r32 <= GOALS['fp32'] and r16 <= GOALS['fp16'])
        med = {key: statistics.median(v) for key, v in t.items()}
        print(f"| {n:,} | {b:.3f} / {med['bare']:.3f} | "
              f"{min(t['fp32']):.3f} / {med['fp32']:.3f} | {r32:.2f}x | "
              f"{min(t['fp16']):.3f} / {med['fp16']:.3f} | {r16:.2f}x |")
    held = all(verdicts) and all_ok
    print(f"\ngoal (<= {GOALS['fp32']}x fp32, <= {GOALS['fp16']}x fp16 "
          f"store, exact results): {'HOLDS' if held else 'NOT MET'}")


if __name__ == '__main__':
    main()
