# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Moved: tools/analysis_tools/run_demo_ablation.py (this path forwards, same
arguments)."""
import os.path as osp
import runpy
import sys

NEW = osp.join(
    osp.dirname(osp.dirname(osp.abspath(__file__))), 'analysis_tools',
    'run_demo_ablation.py')


def main() -> None:
    print('note: tools/analysis/run_demo_ablation.py moved to '
          'tools/analysis_tools/run_demo_ablation.py; forwarding',
          file=sys.stderr)
    sys.argv[0] = NEW
    runpy.run_path(NEW, run_name='__main__')


if __name__ == '__main__':
    main()
