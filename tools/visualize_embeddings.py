# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Moved: tools/visualization/visualize_embeddings.py (this path forwards).

The old command line ``python tools/visualize_embeddings.py CONFIG
CHECKPOINT --out OUT.png ...`` keeps working; its ``none`` checkpoint (an
untrained model) becomes ``--random-init``.
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

from rsitr_mm.visualization.tool_args import forward_to

NEW = osp.join(osp.dirname(osp.abspath(__file__)), 'visualization',
               'visualize_embeddings.py')


def translate(argv: List[str]) -> List[str]:
    """The old arguments for the new tool (``none`` -> ``--random-init``)."""
    parser = argparse.ArgumentParser(prog='tools/visualize_embeddings.py')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--cfg-options', nargs='+')
    options = ('out', 'split', 'max_images', 'method', 'perplexity',
               'ann_file', 'top_k', 'device', 'seed')
    for opt in options:
        parser.add_argument('--' + opt.replace('_', '-'))
    args = parser.parse_args(argv)
    new = [args.config]
    if args.checkpoint.lower() == 'none':
        new.append('--random-init')
    else:
        new.insert(1, args.checkpoint)
    for opt in options:
        if getattr(args, opt) is not None:
            new += ['--' + opt.replace('_', '-'), getattr(args, opt)]
    if args.cfg_options:
        new += ['--cfg-options'] + args.cfg_options
    return new


def main(argv: Optional[List[str]] = None) -> None:
    forward_to(
        NEW, translate(sys.argv[1:] if argv is None else argv),
        'note: tools/visualize_embeddings.py moved to '
        'tools/visualization/visualize_embeddings.py; forwarding')


if __name__ == '__main__':
    main()
