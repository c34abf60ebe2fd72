# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Convert a precomp caption folder into a Karpathy-format json.

Example::

    python tools/dataset_converters/precomp_to_karpathy.py \
        path/to/ucm_precomp data/ucm/dataset_precomp.json --dataset ucm

The precomp ``test`` files of the common UCM/Sydney copies hold the
Karpathy *val* split; see docs/datasets.md.
"""
import argparse
import sys
from collections import Counter

from rsitr_mm.datasets.precomp import convert_precomp


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert precomp {split}_caps.txt / {split}_filename.txt '
        'files into a Karpathy json (splits train/test, and val if present).')
    parser.add_argument('precomp_dir', help='folder with the precomp files')
    parser.add_argument('out_json', help='output json path')
    parser.add_argument(
        '--captions-per-image',
        type=int,
        default=5,
        help='captions per image (default: 5)')
    parser.add_argument(
        '--dataset',
        default=None,
        help='value of the "dataset" field (default: folder name)')
    parser.add_argument(
        '--suffix',
        default='',
        help='prefer files named {split}_caps{SUFFIX}.txt, e.g. _verify')
    parser.add_argument(
        '--val-from-train',
        type=int,
        default=0,
        metavar='N',
        help='for copies without val files: move N random train images '
        '(seeded by --seed) to a new val split')
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of --val-from-train')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        data = convert_precomp(args.precomp_dir, args.out_json,
                               args.captions_per_image, args.dataset,
                               args.suffix, args.val_from_train, args.seed)
    except (OSError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    counts = Counter(img['split'] for img in data['images'])
    n_caps = sum(len(img['sentences']) for img in data['images'])
    summary = ', '.join(f'{s} {n}' for s, n in counts.items())
    print(f'wrote {args.out_json}: {len(data["images"])} images '
          f'({summary}), {n_caps} captions')
    return 0


if __name__ == '__main__':
    sys.exit(main())
