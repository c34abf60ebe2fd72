# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Moved: tools/visualization/visualize_salience.py (this path forwards).

The old command line python tools/visualize_salience.py IMAGE CONFIG
[--checkpoint CKPT] --out OUT.png ... keeps working: it runs
tools/visualization/visualize_salience.py CONFIG CKPT IMAGE ..., or with
--random-init when no checkpoint is given (what this path did).
"""
import argparse
import os.path as osp
import runpy
import sys
from typing import List, Optional

NEW = osp.join(osp.dirname(osp.abspath(__file__)), 'visualization',
               'visualize_salience.py')


def translate(argv: List[str]) -> List[str]:
    """Old arguments (IMAGE CONFIG [--checkpoint CKPT]) in the new order."""
    parser = argparse.ArgumentParser(prog='tools/visualize_salience.py')
    parser.add_argument('image')
    parser.add_argument('config')
    parser.add_argument('--checkpoint')
    parser.add_argument('--out', required=True)
    parser.add_argument('--img-size')
    parser.add_argument('--device')
    parser.add_argument('--cfg-options', nargs='+')
    args = parser.parse_args(argv)
    new = [args.config] + ([args.checkpoint] if args.checkpoint else []) + [
        args.image, '--out', args.out
    ]
    if not args.checkpoint:
        new.append('--random-init')
    for opt in ('img_size', 'alpha', 'device'):
        if getattr(args, opt, None) is not None:
            new += ['--' + opt.replace('_', '-'), getattr(args, opt)]
    if args.cfg_options:
        new += ['--cfg-options'] + args.cfg_options
    return new


def main(argv: Optional[List[str]] = None) -> None:
    new = translate(sys.argv[1:] if argv is None else argv)
    print('note: tools/visualize_salience.py moved to '
          'tools/visualization/visualize_salience.py (CONFIG CHECKPOINT '
          'IMAGE first); forwarding', file=sys.stderr)
    sys.argv = [NEW] + new
    runpy.run_path(NEW, run_name='__main__')


if __name__ == '__main__':
    main()
