# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Command-line arguments shared by the model visualisation tools.

Every tool under ``tools/visualization/`` takes ``CONFIG CHECKPOINT`` first,
as mmpretrain's tools do, and refuses to draw without a checkpoint unless
``--random-init`` says that an untrained model is meant.
"""
import argparse
import os.path as osp
from typing import Optional

from mmengine.config import DictAction


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """Add ``config``, optional ``checkpoint`` and the model options.

    Positional arguments the tool adds afterwards (e.g. ``image``) follow
    ``CHECKPOINT``; with ``--random-init`` the checkpoint is left out
    (``CONFIG IMAGE --random-init``).
    """
    parser.add_argument('config', help='model config file')
    parser.add_argument(
        'checkpoint',
        nargs='?',
        help='checkpoint to load (required unless --random-init)')
    parser.add_argument(
        '--random-init',
        action='store_true',
        help='draw the model as initialised by the config, without a '
        'checkpoint (to check a config, not to interpret a model)')
    parser.add_argument(
        '--trust-checkpoint',
        action='store_true',
        help='unpickle the checkpoint with full pickle, which can run code '
        'from the file (default: tensors and mmengine values only)')
    parser.add_argument('--device', default='cpu', help='torch device')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings')


def checked_checkpoint(parser: argparse.ArgumentParser,
                       args: argparse.Namespace,
                       usage: str = 'CONFIG CHECKPOINT') -> Optional[str]:
    """The checkpoint to load, or None with ``--random-init``.

    Exits through ``parser.error`` (status 2, one message) when the
    checkpoint is missing without ``--random-init``, given together with
    it, or not a file.

    Args:
        parser (argparse.ArgumentParser): the tool's parser.
        args (argparse.Namespace): its parsed arguments.
        usage (str): the positional arguments, for the message.

    Returns:
        str | None: the checkpoint path.
    """
    if args.random_init:
        if args.checkpoint:
            parser.error(f'give CHECKPOINT ({args.checkpoint!r}) or '
                         '--random-init, not both')
        return None
    if not args.checkpoint:
        parser.error(f'CHECKPOINT is missing (expected {usage}); pass '
                     '--random-init to draw an untrained model on purpose')
    if not osp.isfile(args.checkpoint):
        parser.error(f'checkpoint {args.checkpoint!r} does not exist '
                     '(pass --random-init to draw an untrained model)')
    return args.checkpoint
