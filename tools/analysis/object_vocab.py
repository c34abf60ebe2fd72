# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Moved: tools/analysis_tools/object_vocab.py (this path forwards, same
arguments)."""
import os.path as osp
import runpy
import sys

NEW = osp.join(
    osp.dirname(osp.dirname(osp.abspath(__file__))), 'analysis_tools',
    'object_vocab.py')


def main() -> None:
    print('note: tools/analysis/object_vocab.py moved to '
          'tools/analysis_tools/object_vocab.py; forwarding',
          file=sys.stderr)
    sys.argv[0] = NEW
    runpy.run_path(NEW, run_name='__main__')


if __name__ == '__main__':
    main()
