# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Overlaps between the splits of two Karpathy-json caption datasets.

Example::

    python tools/analysis_tools/leakage.py \
        data/rsicd/dataset_rsicd.json data/rsitmd/dataset_rsitmd.json \
        --out work_dirs/leakage_rsicd_rsitmd.tsv

Prints one row per pair of splits: images of A, unique captions of A,
unique captions of A also in B, images of A sharing >= 1 / >= K / all of
their distinct captions with one image of B, identical file names / stems,
and (with ``--images-a`` and ``--images-b``) images of A whose difference
hash is within ``--hash-threshold`` bits of one of B. Captions are compared
after normalisation (lower case, punctuation removed, whitespace
collapsed). The list file has one line per leaking image of A
(``split_a, filename, split_b``). See docs/datasets.md ("Leakage between
datasets").
"""
import argparse
import os
import os.path as osp
import sys

from rsitr_mm.datasets.leakage import leakage_report

COLUMNS = (('split_a', 'A'), ('split_b', 'B'), ('images', 'imgs A'),
           ('unique_captions', 'uniq caps A'), ('captions_in_b',
                                                'caps A in B'),
           ('share_1', 'share>=1'), ('share_k', 'share>=K'),
           ('share_all', 'share all'), ('same_filename', 'same name'),
           ('same_stem', 'same stem'), ('hash_match', 'hash match'))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Overlaps (captions, file names, perceptual hashes) '
        'between every split of two Karpathy-json annotation files.')
    parser.add_argument('ann_a', help='first Karpathy json (A)')
    parser.add_argument('ann_b', help='second Karpathy json (B)')
    parser.add_argument(
        '--images-a',
        help='image folder of A (enables the '
        'perceptual-hash comparison with --images-b)')
    parser.add_argument('--images-b', help='image folder of B')
    parser.add_argument(
        '--min-shared',
        type=int,
        default=3,
        help='K: an image of A leaks when it shares at least K distinct '
        'captions with one image of B (default: 3)')
    parser.add_argument(
        '--hash-threshold',
        type=int,
        default=6,
        help='largest Hamming distance (of 64 bits) of a hash match '
        '(default: 6)')
    parser.add_argument(
        '--out',
        default='leakage.tsv',
        help='list file of the leaking images of A (default: leakage.tsv)')
    parser.add_argument(
        '--quiet', action='store_true', help='no progress output')
    return parser.parse_args(argv)


def format_table(rows) -> str:
    """The rows of :func:`leakage_report` as a markdown table."""
    head = [c[1] for c in COLUMNS]
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for row in rows:
        cells = ['-' if row[k] is None else str(row[k]) for k, _ in COLUMNS]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    for flag, path in (('ann_a', args.ann_a), ('ann_b', args.ann_b)):
        if not osp.isfile(path):
            print(f'error: {flag}: no such file {path!r}', file=sys.stderr)
            return 2
    if bool(args.images_a) != bool(args.images_b):
        print(
            'error: give both --images-a and --images-b (or neither)',
            file=sys.stderr)
        return 2
    for flag, path in (('--images-a', args.images_a), ('--images-b',
                                                       args.images_b)):
        if path and not osp.isdir(path):
            print(f'error: {flag}: no such folder {path!r}', file=sys.stderr)
            return 2

    def progress(msg):
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    rows = leakage_report(
        args.ann_a,
        args.ann_b,
        images_a=args.images_a,
        images_b=args.images_b,
        min_shared=args.min_shared,
        hash_threshold=args.hash_threshold,
        progress=progress)
    print(f'A = {args.ann_a}\nB = {args.ann_b}\nK = {args.min_shared}')
    print(format_table(rows))
    out_dir = osp.dirname(args.out)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    n = 0
    with open(args.out, 'w') as f:
        f.write('split_a\tfilename_a\tsplit_b\n')
        for row in rows:
            for name in row['leaking']:
                f.write(f"{row['split_a']}\t{name}\t{row['split_b']}\n")
                n += 1
    print(f'{n} leaking (image, split) pairs written to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
