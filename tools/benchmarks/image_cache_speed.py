# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Goal: the decoded-image cache gives >= 3x images/s/worker, same output.

One worker = this process running a dataset's train transforms, taken from
its config (``configs/_base_/datasets/<name>.py``: ``LoadImageFromFile`` ->
``RandomResizedCrop(img_scale, bicubic, 0.5-1.0)`` -> ``RandomFlip(0.5)``
-> ``PackInputs``), on the real sample images of the shared data folder,
cycled, OpenCV and torch single-threaded as in mmengine workers. Variants:

* ``decode``: the pipeline as configured (the file cache is warm);
* ``cache``: what ``image_cache=dict(cache_dir=...)`` in the dataset config
  makes of it (:func:`rsitr_mm.datasets.image_cache.attach_image_cache`):
  ``LoadImageFromCache`` (a read-only view of the memory map, no copy) and
  the exact fast transforms, the crop fused with the flip and the packing
  (``use_fast_transforms(..., fuse=True)``);
* for attribution, ``decode + fast``: decoding with the same fused fast
  transforms,
  and ``cache, original transforms``: the cache with mmpretrain's / mmcv's
  transforms (``fast_transforms=False``).

The variants alternate ``--reps`` times in one process. Rates are images
per **CPU second of this process** (``time.process_time``: one worker is
one single-threaded process, and CPU time is not inflated by other jobs
taking the cores, unlike wall time; wall rates are printed too). Medians
of the reps; the goal compares ``cache`` with ``decode``. Before timing,
every image is run through every variant with the same seed and the packed
tensors are compared (must be identical, as must be the random state
after them).

``--attribution`` also times each step of the cache path per image.

Example::

    python tools/benchmarks/image_cache_speed.py --images 300 --reps 7
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
from mmengine.config import Config  # noqa: E402
from mmengine.dataset import Compose  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

import rsitr_mm  # noqa: E402,F401
from rsitr_mm.datasets.image_cache import ImageCache  # noqa: E402
from rsitr_mm.datasets.transforms import (LoadImageFromCache,  # noqa: E402
                                          use_fast_transforms)

DATA = osp.join(osp.dirname(REPO), 'shared', 'data')
GOAL = 3.0
#: (dataset config, sample folder, what the images are)
CASES = [
    ('rsicd', 'rsicd_sample', 'RSICD, 224 px jpg'),
    ('rsitmd', 'rsitmd_sample', 'RSITMD, 256 px tif'),
    ('ucm', 'ucm_sample', 'UCM, 256 px tif'),
    ('sydney', 'sydney_sample', 'Sydney, 500 px tif (PackBits)'),
]
VARIANTS = ('decode', 'cache', 'decode + fast', 'cache, original transforms')


def pipelines(cfg_pipeline, cache):
    """The four variants of a train pipeline (see the module docstring)."""
    out = {}
    for name in VARIANTS:
        pipe = Compose(cfg_pipeline)
        if name.startswith('cache'):
            fast = name == 'cache'
            pipe.transforms[0] = LoadImageFromCache(
                cache, loader=pipe.transforms[0], copy=not fast)
        else:
            fast = name == 'decode + fast'
        if fast:
            use_fast_transforms(pipe.transforms, fuse=True)
        out[name] = pipe
    return out


def rate(pipeline, files, n):
    """(images per CPU second, images per wall second)."""
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(n):
        pipeline(dict(img_path=files[i % len(files)], text='a caption',
                      image_id=i, text_id=i, filename=''))
    return (n / (time.process_time() - cpu),
            n / (time.perf_counter() - wall))


def identical(pipes, files, rounds=4):
    """Same packed tensor and random state from every variant."""
    for i in range(rounds * len(files)):
        outs = []
        for pipe in pipes.values():
            random.seed(i)
            np.random.seed(i)
            torch.manual_seed(i)
            out = pipe(dict(img_path=files[i % len(files)], text='c',
                            image_id=i, text_id=i, filename=''))
            outs.append((out['inputs'], np.random.random_sample()))
        for t, u in outs[1:]:
            if not (torch.equal(outs[0][0], t) and outs[0][1] == u):
                return False
    return True


STAGES = ('load', 'crop params', 'resize', 'flip draw + flip', 'allocate',
          'split', 'pack', 'rest')


def attribution(pipe, files, n):
    """CPU us per image of each step of the fused cache path, and in all.

    Re-runs the steps of ``FastRandomResizedCrop``'s fused path (crop
    fused with ``FastRandomFlip`` and ``FastPackInputs``) one by one with a
    CPU clock read between them, on the transforms of the ``cache``
    pipeline; ``rest`` is the time of the whole pipeline (measured apart,
    without the clock reads) minus the steps (Compose, calls, checks).
    """
    from rsitr_mm.datasets.transforms.fast_transforms import (
        _CV2_INTERP, _FLIP_CODES, _crop_params, _scratch)
    load, crop = pipe.transforms
    flip, pack = crop.fused
    size = tuple(crop.scale[::-1])
    code = _CV2_INTERP[crop.interpolation]
    clock = time.process_time_ns
    acc = [0] * 7
    np.random.seed(0)
    for i in range(n):
        results = dict(img_path=files[i % len(files)], text='a caption',
                       image_id=i, text_id=i, filename='')
        t0 = clock()
        results = load(results)
        img = results['img']
        t1 = clock()
        top, left, h, w = _crop_params(crop, img)
        t2 = clock()
        buf, flipped = _scratch(size[::-1] + img.shape[2:])
        img = cv2.resize(img[top:top + h, left:left + w], size, dst=buf,
                         interpolation=code)
        t3 = clock()
        if np.random.random_sample() < flip._cdf[0]:
            img = cv2.flip(img, _FLIP_CODES[flip.direction], flipped)
        t4 = clock()
        out = np.empty((img.shape[2], ) + img.shape[:2], np.uint8)
        planes = list(out)
        t5 = clock()
        cv2.split(img, planes)
        t6 = clock()
        results['img'] = torch.from_numpy(out)
        pack.transform(results)
        t7 = clock()
        for k, (a, b) in enumerate(zip((t0, t1, t2, t3, t4, t5, t6),
                                       (t1, t2, t3, t4, t5, t6, t7))):
            acc[k] += b - a
    steps = [a / n / 1000 for a in acc]
    whole = 1e6 / rate(pipe, files, n)[0]
    return dict(zip(STAGES, steps + [whole - sum(steps)])), whole


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data', default=DATA, help='shared data folder')
    p.add_argument('--images', type=int, default=300, help='per repetition')
    p.add_argument('--reps', type=int, default=7)
    p.add_argument('--attribution', action='store_true',
                   help='also time each step of the cache path')
    args = p.parse_args(argv)
    init_default_scope('mmpretrain')
    cv2.setNumThreads(0)  # as in mmengine workers (opencv_num_threads=0)
    torch.set_num_threads(1)
    rows, held, parts = [], True, []
    with tempfile.TemporaryDirectory() as tmp:
        for cfg_name, folder, label in CASES:
            files = sorted(glob.glob(osp.join(args.data, folder, 'images',
                                              '*')))
            if not files:
                continue
            cfg = Config.fromfile(
                osp.join(REPO, 'configs', '_base_', 'datasets',
                         cfg_name + '.py'))
            t0 = time.perf_counter()
            cache = ImageCache.build(files, osp.join(tmp, cfg_name),
                                     progress=False)
            build_s = time.perf_counter() - t0
            pipes = pipelines(cfg.train_pipeline, cache)
            same = identical(pipes, files)
            for pipe in pipes.values():  # warm up
                rate(pipe, files, len(files))
            rates = {name: [] for name in pipes}
            for _ in range(args.reps):
                for name, pipe in pipes.items():
                    rates[name].append(rate(pipe, files, args.images))
            med = {name: (statistics.median(r[0] for r in rs),
                          statistics.median(r[1] for r in rs))
                   for name, rs in rates.items()}
            ratio = med['cache'][0] / med['decode'][0]
            held &= same and ratio >= GOAL
            rows.append((label, len(files), med, ratio, same, build_s))
            if args.attribution:
                parts.append((label, *attribution(pipes['cache'], files,
                                                  3 * args.images),
                              1e6 / med['decode'][0]))
    print(f'\nOne worker (this process, 1 thread), {args.reps} interleaved '
          f'reps x {args.images} images, medians; images per CPU second '
          '(per wall second in brackets)\n')
    print('| images | files | decode | cache | **ratio** | decode + fast | '
          'cache, original transforms | identical output | '
          'cache build (s) |')
    print('|---|---:|---:|---:|---:|---:|---:|---|---:|')
    for label, n, med, ratio, same, build_s in rows:
        cells = {k: f'{v[0]:.0f} ({v[1]:.0f})' for k, v in med.items()}
        print(f'| {label} | {n} | {cells["decode"]} | {cells["cache"]} | '
              f'**{ratio:.2f}x** | {cells["decode + fast"]} | '
              f'{cells["cache, original transforms"]} | {same} | '
              f'{build_s:.2f} |')
    print('\nratio = cache / decode (CPU-time rates). Without the fast '
          'transforms the cache gives: ' + ', '.join(
              f'{label.split(",")[0]} '
              f'{med["cache, original transforms"][0] / med["decode"][0]:.2f}x'
              for label, _, med, _, _, _ in rows)
          + '; the fast transforms alone (decode + fast / decode): '
          + ', '.join(
              f'{label.split(",")[0]} '
              f'{med["decode + fast"][0] / med["decode"][0]:.2f}x'
              for label, _, med, _, _, _ in rows))
    if parts:
        print('\nCPU us per image in the cache path (fused transforms), '
              f'{3 * args.images} images, each step timed apart; "whole" '
              'is the pipeline without clock reads, "decode" the decoding '
              'pipeline (median above)\n')
        print('| images | ' + ' | '.join(STAGES) + ' | whole | decode |')
        print('|---|' + '---:|' * (len(STAGES) + 2))
        for label, steps, whole, decode in parts:
            print(f'| {label} | '
                  + ' | '.join(f'{steps[k]:.1f}' for k in STAGES)
                  + f' | {whole:.1f} | {decode:.1f} |')
    print(f'\ngoal (>= {GOAL:.0f}x images/s/worker, identical output): '
          f'{"HOLDS" if held and rows else "NOT MET"}')


if __name__ == '__main__':
    main()
