# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Images per second of one data-loading worker for the RS train pipelines.

Runs the transforms of ``configs/_base_/datasets/rsitmd.py`` /
``rsicd.py`` (``LoadImageFromFile`` -> ``RandomResizedCrop(224, bicubic)``
-> ``RandomFlip`` -> ``PackInputs``) in this process, i.e. one worker, on
the real sample images shipped with the shared data (256 px tif of the
RSITMD/UCM samples; 224 px jpg of the RSICD sample), cycled. The OS file
cache is warm after the first pass, as in a real multi-epoch run. Then it
prints how many workers a consumer of ``--target`` images/s would need.

Example::

    python tools/benchmarks/data_pipeline.py --images 600 --reps 3
"""
import argparse
import glob
import math
import os.path as osp
import statistics
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

import cv2  # noqa: E402
import rsitr_mm  # noqa: E402,F401
from mmengine.dataset import Compose  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

DATA = osp.join(osp.dirname(REPO), 'shared', 'data')
PACK = dict(type='PackInputs', algorithm_keys=['text', 'image_id'],
            meta_keys=['img_path'])
CROP = dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.5, 1.0),
            interpolation='bicubic')
FLIP = dict(type='RandomFlip', prob=0.5, direction='horizontal')
LOAD = dict(type='LoadImageFromFile')

CASES = [
    ('256 px tif (RSITMD/UCM samples), crop+flip',
     ['rsitmd_sample/images/*.tif', 'ucm_sample/images/*.tif'],
     [LOAD, CROP, FLIP, PACK]),
    ('224 px jpg (RSICD sample), crop+flip',
     ['rsicd_sample/images/*.jpg'], [LOAD, CROP, FLIP, PACK]),
    ('224 px jpg (RSICD sample), decode + pack only',
     ['rsicd_sample/images/*.jpg'], [LOAD, PACK]),
]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data', default=DATA, help='shared data folder')
    p.add_argument('--images', type=int, default=600, help='per repetition')
    p.add_argument('--reps', type=int, default=3)
    p.add_argument('--target', type=float, default=2000.,
                   help='images/s the GPU consumes')
    return p.parse_args(argv)


def rate(files, transforms, n):
    pipeline = Compose(transforms)
    start = time.perf_counter()
    for i in range(n):
        pipeline(dict(img_path=files[i % len(files)], text='a caption',
                      image_id=i))
    return n / (time.perf_counter() - start)


def main(argv=None):
    args = parse_args(argv)
    init_default_scope('mmpretrain')
    cv2.setNumThreads(0)  # as in mmengine workers (opencv_num_threads=0)
    rows = []
    for name, patterns, transforms in CASES:
        files = sorted(f for p in patterns
                       for f in glob.glob(osp.join(args.data, p)))
        if not files:
            rows.append((name, 0, None))
            continue
        rate(files, transforms, len(files))  # warm the file cache
        r = statistics.median(
            rate(files, transforms, args.images) for _ in range(args.reps))
        rows.append((name, len(files), r))
    print(f'\nOne worker (this process), median of {args.reps} x '
          f'{args.images} images; workers for {args.target:.0f} images/s\n')
    print('| pipeline | files | images/s/worker | workers needed |')
    print('|---|---:|---:|---:|')
    for name, n, r in rows:
        if r is None:
            print(f'| {name} | 0 | not measured (no files) | - |')
        else:
            print(f'| {name} | {n} | {r:.0f} | '
                  f'{math.ceil(args.target / r)} |')


if __name__ == '__main__':
    main()
