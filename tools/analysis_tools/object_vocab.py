# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Show the OSFCM object vocabulary of a caption annotation file.

Usage::

    python tools/analysis_tools/object_vocab.py ANN_FILE [--split train] \
        [--top-k 50] [--class-field class] [--per-class 5] \
        [--extra-nouns NOUN ...] [--save PRIORS.npz]

Prints the vocabulary (the ``top_k`` lexicon nouns with the highest document
frequency, i.e. number of images whose captions mention them) and, per scene
class, the nouns mentioned by most of its images. The class of an image is the
filename prefix before the last ``_`` when there is one (``airport_12.jpg``),
else the json field ``--class-field``, else ``all``. ``--save`` writes the
priors ``.npz`` that ``ObjectSemanticClusterHead(priors_file=...)`` loads.
"""
import argparse
import os.path as osp
import sys
from collections import defaultdict
from typing import List, Optional

import numpy as np

from rsitr_mm.datasets.object_priors import (build_object_priors,
                                             load_caption_images)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Object-noun vocabulary and per-class top nouns')
    parser.add_argument('ann_file', help='Karpathy-format caption json')
    parser.add_argument(
        '--split', default='train', help="split to use ('all' for every "
        'image)')
    parser.add_argument('--top-k', type=int, default=50, help='vocab size')
    parser.add_argument(
        '--class-field',
        default='class',
        help='json field with the scene class (used when the filename has '
        'no "_" prefix)')
    parser.add_argument(
        '--per-class', type=int, default=5, help='nouns shown per class')
    parser.add_argument(
        '--extra-nouns', nargs='*', default=(), help='nouns added to the '
        'lexicon')
    parser.add_argument('--lexicon', help='lexicon file replacing the '
                        'shipped one')
    parser.add_argument('--save', help='write the priors to this .npz')
    return parser.parse_args(argv)


def class_of(filename: str, info: dict, class_field: str = 'class') -> str:
    """Scene class: filename prefix, else the json field, else ``'all'``."""
    stem = osp.splitext(osp.basename(filename))[0]
    if '_' in stem:
        return stem.rsplit('_', 1)[0]
    value = info.get(class_field)
    return str(value) if value not in (None, '') else 'all'


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    split = None if args.split == 'all' else args.split
    priors = build_object_priors(
        args.ann_file,
        split=split,
        top_k=args.top_k,
        lexicon=args.lexicon,
        extra_nouns=args.extra_nouns,
        cache_file=None)
    n = priors.num_images
    empty = int((priors.priors.sum(axis=1) == 0).sum())
    print(f'{args.ann_file}: {n} images of split {args.split!r}, '
          f'{priors.num_nouns} nouns, {empty} images without any '
          f'vocabulary noun')
    print(f'{"rank":>4}  {"noun":<22}{"images":>7}{"share":>8}')
    for rank, (noun, df) in enumerate(zip(priors.vocab, priors.doc_freq), 1):
        print(f'{rank:>4}  {noun:<22}{int(df):>7}{df / n:>8.1%}')

    rows_by_class = defaultdict(list)
    images = load_caption_images(args.ann_file, split)
    for row, img in enumerate(images):
        rows_by_class[class_of(img['filename'], img['info'],
                               args.class_field)].append(row)
    print(f'\nTop nouns per class (share of the class images mentioning '
          f'them), {len(rows_by_class)} classes:')
    for cls in sorted(rows_by_class):
        rows = rows_by_class[cls]
        share = (priors.counts[rows] > 0).mean(axis=0)
        order = sorted(
            np.nonzero(share)[0], key=lambda k: (-share[k], priors.vocab[k]))
        top = ', '.join(f'{priors.vocab[k]} {share[k]:.0%}'
                        for k in order[:args.per_class])
        print(f'  {cls} ({len(rows)}): {top or "-"}')
    if args.save:
        priors.save(args.save)
        print(f'\nsaved priors to {args.save}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
