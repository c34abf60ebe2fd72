# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Goal: ``retrieval_recall`` >= 10x faster than the per-query argsort loop.

The reference is the loop used by AMFMN / GaLR-style evaluation code: for
every image, ``argsort`` its row of the similarity matrix and take the best
position of its captions; for every caption, ``argsort`` its column and
take the position of its image (numpy, one thread). Here the sorts are
stable (``kind='stable'`` on the negated scores) so that the reference
applies the same tie rule as :func:`rsitr_mm.evaluation.retrieval_recall`
(equal scores: lower index first) and the recalls must be identical; the
literal AMFMN loop (``argsort()[::-1]``, quicksort) is timed as well.

Both run in this process, interleaved, ``--reps`` times each; the best
time of each is compared (and the median is printed).

Example::

    python tools/benchmarks/recall_speed.py --reps 7
"""
import argparse
import os.path as osp
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

GOAL = 10.0


def reference_recall(sim: np.ndarray, cpi: int = 5, ks=(1, 5, 10),
                     stable: bool = True) -> dict:
    """Per-query argsort loop (AMFMN / GaLR style), numpy."""
    n, t = sim.shape
    i2t = np.zeros(n)
    for i in range(n):
        if stable:
            inds = np.argsort(-sim[i], kind='stable')
        else:
            inds = np.argsort(sim[i])[::-1]
        rank = 1e20
        for j in range(i * cpi, (i + 1) * cpi):
            tmp = np.where(inds == j)[0][0]
            rank = min(rank, tmp)
        i2t[i] = rank
    simt = sim.T
    t2i = np.zeros(t)
    for j in range(t):
        if stable:
            inds = np.argsort(-simt[j], kind='stable')
        else:
            inds = np.argsort(simt[j])[::-1]
        t2i[j] = np.where(inds == j // cpi)[0][0]
    out = {}
    for k in ks:
        out[f'i2t_R@{k}'] = 100.0 * float(np.mean(i2t < k))
    for k in ks:
        out[f't2i_R@{k}'] = 100.0 * float(np.mean(t2i < k))
    vals = list(out.values())
    out['mR'] = sum(vals) / len(vals)
    out['rsum'] = sum(vals)
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--images', type=int, default=1093)
    p.add_argument('--reps', type=int, default=7)
    p.add_argument('--threads', type=int, default=None,
                   help='torch threads (default: torch default)')
    p.add_argument('--device', default='cpu')
    args = p.parse_args(argv)

    import torch
    from rsitr_mm.evaluation import retrieval_recall
    if args.threads:
        torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    n = args.images
    sim_t = torch.randn(n, 5 * n, generator=g)
    # make the matrix informative (recalls far from 0) and add real ties:
    # some captions are duplicates of others (same column).
    sim_t[torch.arange(n).repeat_interleave(5), torch.arange(5 * n)] += 2.5
    dup = torch.randperm(5 * n, generator=g)[:5 * n // 10]
    sim_t[:, dup] = sim_t[:, (dup + 5) % (5 * n)]
    sim = sim_t.numpy()

    ours_res = retrieval_recall(sim_t.to(args.device))
    ref_res = reference_recall(sim)
    lit_res = reference_recall(sim, stable=False)
    same = all(ours_res[k] == ref_res[k] for k in ref_res)
    print('recalls (ours):', {k: round(v, 4) for k, v in ours_res.items()})
    print('identical to the stable-argsort reference:', same)
    print('identical to the literal AMFMN loop (quicksort, reversed):',
          all(ours_res[k] == lit_res[k] for k in lit_res))

    times = {'ours': [], 'ref_stable': [], 'ref_amfmn': []}
    dev = sim_t.to(args.device)
    sync = (torch.cuda.synchronize if dev.is_cuda else (lambda: None))
    for _ in range(args.reps):
        sync()
        t0 = time.perf_counter()
        retrieval_recall(dev)
        sync()
        times['ours'].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        reference_recall(sim)
        times['ref_stable'].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        reference_recall(sim, stable=False)
        times['ref_amfmn'].append(time.perf_counter() - t0)
    print(f'\n{n} x {5 * n} float32, device {args.device}, '
          f'torch threads {torch.get_num_threads()}, {args.reps} '
          'interleaved reps in one process\n')
    print('| method | best (ms) | median (ms) |')
    print('|---|---:|---:|')
    names = {'ours': 'rsitr_mm retrieval_recall',
             'ref_stable': 'argsort loop, stable (same tie rule)',
             'ref_amfmn': 'argsort loop, literal AMFMN (quicksort)'}
    for key, name in names.items():
        print(f'| {name} | {min(times[key]) * 1e3:.1f} | '
              f'{statistics.median(times[key]) * 1e3:.1f} |')
    ref_best = min(min(times['ref_stable']), min(times['ref_amfmn']))
    ratio = ref_best / min(times['ours'])
    print(f'\nspeed-up over the faster reference (best of each): '
          f'{ratio:.1f}x; goal >= {GOAL:.0f}x: '
          f'{"HOLDS" if ratio >= GOAL and same else "NOT MET"}')


if __name__ == '__main__':
    main()
