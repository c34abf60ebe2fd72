# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Moved: tools/visualization/visualize_attention.py (this path forwards).

The old command line python tools/visualize_attention.py IMAGE CONFIG
[--checkpoint CKPT] --out OUT.png ... keeps working: it runs
tools/visualization/visualize_attention.py CONFIG CKPT IMAGE ..., or with
--random-init when no checkpoint is given (what this path did).
"""
import os.path as osp
import sys
from typing import List, Optional

from rsitr_mm.visualization.tool_args import forward_to, old_image_tool_argv

NEW = osp.join(osp.dirname(osp.abspath(__file__)), 'visualization',
               'visualize_attention.py')


def translate(argv: List[str]) -> List[str]:
    """Old arguments (IMAGE CONFIG [--checkpoint CKPT]) in the new order."""
    return old_image_tool_argv('tools/visualize_attention.py', argv,
                               ('img_size', 'alpha', 'device'))


def main(argv: Optional[List[str]] = None) -> None:
    forward_to(
        NEW, translate(sys.argv[1:] if argv is None else argv),
        'note: tools/visualize_attention.py moved to '
        'tools/visualization/visualize_attention.py (CONFIG CHECKPOINT '
        'IMAGE first); forwarding')


if __name__ == '__main__':
    main()
