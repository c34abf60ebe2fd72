# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Write the synthetic aerial-scene caption dataset.

Example::

    python tools/dataset_converters/generate_synthetic.py data/synthetic \
        --num-images 2000 --image-size 64 --seed 0

writes ``data/synthetic/images/*.png``,
``data/synthetic/dataset_synthetic.json`` (Karpathy layout with a per-image
``class``) and ``data/synthetic/classes.txt``.

The testbed profile (128 px, 4.3x object scale range, clutter, held-out
colour x kind combinations in test, plus a disjoint pretraining domain;
see docs/demo.md) writes a cached folder ``OUT_DIR/v<version>-<hash>``::

    python tools/dataset_converters/generate_synthetic.py data/testbed \
        --profile testbed
"""
import argparse
import os
import sys
import time
from typing import List, Optional, Union


def _number(text: str) -> Union[int, float]:
    """Parse a split entry: an integer count or a fraction."""
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f'split entries must be numbers, got {text!r}') from None


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Generate a synthetic aerial-scene caption dataset '
        '(Karpathy json + png images).')
    parser.add_argument('out_dir', help='output folder')
    parser.add_argument(
        '--profile',
        choices=['demo', 'testbed'],
        default='demo',
        help='demo: the 64 px make-demo scenes (default); testbed: target '
        'and pretraining domains in a cache folder under out_dir (only '
        '--seed, --image-size, --split (counts) and --num-workers apply; '
        '--num-images sets the pretraining images)')
    parser.add_argument(
        '--num-images',
        type=int,
        default=None,
        help='number of images '
        '(demo default 2000; testbed: pretraining images, default 5000)')
    parser.add_argument(
        '--image-size',
        type=int,
        default=None,
        help='image side in pixels (default 64; testbed 128)')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument(
        '--split',
        type=_number,
        nargs=3,
        default=None,
        metavar=('TRAIN', 'VAL', 'TEST'),
        help='train/val/test as integer counts summing to --num-images or '
        'as fractions summing to 1 (default: 0.8 0.1 0.1); testbed: '
        'target-domain counts (default 1000 200 1000)')
    parser.add_argument(
        '--num-workers',
        type=int,
        default=None,
        help='worker processes (default: number of CPUs, at most 8; '
        '0 works in this process). The output does not depend on it.')
    parser.add_argument(
        '--no-progress', action='store_true', help='hide the progress bar')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    # import here so that --help stays fast
    from rsitr_mm.datasets.synthetic import generate_synthetic_dataset
    workers = args.num_workers
    if workers is None:
        workers = min(8, os.cpu_count() or 1)
    start = time.perf_counter()
    if args.profile == 'testbed':
        from rsitr_mm.datasets.synthetic import generate_testbed
        overrides = dict(seed=args.seed)
        if args.image_size is not None:
            overrides['image_size'] = args.image_size
        if args.num_images is not None:
            overrides['pretrain_images'] = args.num_images
        if args.split is not None:
            overrides['target_split'] = tuple(args.split)
        try:
            path = generate_testbed(
                args.out_dir, num_workers=workers, **overrides)
        except (ValueError, TypeError) as err:
            print(f'error: {err}', file=sys.stderr)
            return 2
        print(f'testbed in {path} ({time.perf_counter() - start:.1f} s)')
        return 0
    if args.num_images is None:
        args.num_images = 2000
    if args.image_size is None:
        args.image_size = 64
    try:
        path = generate_synthetic_dataset(
            args.out_dir,
            num_images=args.num_images,
            image_size=args.image_size,
            seed=args.seed,
            split=tuple(args.split or (0.8, 0.1, 0.1)),
            num_workers=workers,
            progress=not args.no_progress)
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - start
    print(f'wrote {args.num_images} images of {args.image_size}px and '
          f'{path} in {elapsed:.1f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
