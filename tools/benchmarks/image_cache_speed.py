# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Goal: the decoded-image cache gives >= 3x images/s/worker, same output.

One worker = this process running the RS train transforms
(``LoadImageFromFile`` -> ``RandomResizedCrop(224, bicubic, 0.5-1.0)`` ->
``RandomFlip(0.5)`` -> ``PackInputs``) on the real sample images of the
shared data folder, cycled, OpenCV single-threaded as in mmengine workers:

* ``decode``: the pipeline as configured (the file cache is warm);
* ``cache``: the same pipeline with ``LoadImageFromFile`` served by
  :class:`rsitr_mm.datasets.transforms.LoadImageFromCache` (built once into
  a temporary folder before timing; what ``image_cache=dict(...)`` in a
  dataset config does).

The two alternate ``--reps`` times in one process; the ratio of the
medians is printed. Before timing, every image is run through both with the
same seed and the packed tensors are compared (must be identical).

Example::

    python tools/benchmarks/image_cache_speed.py --images 600 --reps 5
"""
import argparse
import glob
import os.path as osp
import random
import statistics
import sys
import tempfile
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.dataset import Compose  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

import rsitr_mm  # noqa: E402,F401
from rsitr_mm.datasets.image_cache import ImageCache  # noqa: E402
from rsitr_mm.datasets.transforms import LoadImageFromCache  # noqa: E402

DATA = osp.join(osp.dirname(REPO), 'shared', 'data')
GOAL = 3.0
TAIL = [
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.5, 1.0),
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs', algorithm_keys=['text', 'image_id'],
         meta_keys=['img_path']),
]
CASES = [
    ('256 px tif (RSITMD/UCM samples)',
     ['rsitmd_sample/images/*.tif', 'ucm_sample/images/*.tif']),
    ('224 px jpg (RSICD sample)', ['rsicd_sample/images/*.jpg']),
]


def rate(pipeline, files, n):
    start = time.perf_counter()
    for i in range(n):
        pipeline(dict(img_path=files[i % len(files)], text='a caption',
                      image_id=i))
    return n / (time.perf_counter() - start)


def identical(plain, cached, files):
    for i, f in enumerate(files):
        outs = []
        for pipe in (plain, cached):
            random.seed(i)
            np.random.seed(i)
            torch.manual_seed(i)
            outs.append(pipe(dict(img_path=f, text='c', image_id=i)))
        if not torch.equal(outs[0]['inputs'], outs[1]['inputs']):
            return False
    return True


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data', default=DATA, help='shared data folder')
    p.add_argument('--images', type=int, default=600, help='per repetition')
    p.add_argument('--reps', type=int, default=5)
    args = p.parse_args(argv)
    init_default_scope('mmpretrain')
    cv2.setNumThreads(0)  # as in mmengine workers (opencv_num_threads=0)
    torch.set_num_threads(1)
    rows, held = [], True
    with tempfile.TemporaryDirectory() as tmp:
        for name, patterns in CASES:
            files = sorted(f for pat in patterns
                           for f in glob.glob(osp.join(args.data, pat)))
            if not files:
                continue
            t0 = time.perf_counter()
            cache = ImageCache.build(files, tmp, progress=False)
            build_s = time.perf_counter() - t0
            plain = Compose([dict(type='LoadImageFromFile')] + TAIL)
            cached = Compose([LoadImageFromCache(cache)] + TAIL)
            same = identical(plain, cached, files)
            rate(plain, files, len(files))  # warm the file cache
            rate(cached, files, len(files))
            r_plain, r_cache = [], []
            for _ in range(args.reps):
                r_plain.append(rate(plain, files, args.images))
                r_cache.append(rate(cached, files, args.images))
            a, b = statistics.median(r_plain), statistics.median(r_cache)
            held &= same and b / a >= GOAL
            rows.append((name, len(files), a, b, same, build_s))
    print(f'\nOne worker (this process), {args.reps} interleaved reps x '
          f'{args.images} images, medians\n')
    print('| images | files | decode (images/s) | cache (images/s) | ratio |'
          ' identical output | cache build (s) |')
    print('|---|---:|---:|---:|---:|---|---:|')
    for name, n, a, b, same, build_s in rows:
        print(f'| {name} | {n} | {a:.0f} | {b:.0f} | {b / a:.2f}x | '
              f'{same} | {build_s:.2f} |')
    print(f'\ngoal (>= {GOAL:.0f}x images/s/worker, identical output): '
          f'{"HOLDS" if held and rows else "NOT MET"}')


if __name__ == '__main__':
    main()
