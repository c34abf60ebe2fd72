# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Command-line arguments shared by the model visualisation tools.

Every tool under ``tools/visualization/`` takes ``CONFIG CHECKPOINT`` first,
as mmpretrain's tools do, and refuses to draw without a checkpoint unless
``--random-init`` says that an untrained model is meant.

The old tool paths that moved (``tools/visualize_*.py``,
``tools/analysis/*.py``) forward with :func:`forward_to`, the image tools
after :func:`old_image_tool_argv` has put their old arguments in the new
order.
"""
import argparse
import os.path as osp
import runpy
import sys
from typing import List, Optional, Sequence

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


def add_image_args(parser: argparse.ArgumentParser,
                   img_size_default: str = 'keep') -> None:
    """:func:`add_model_args`, then ``IMAGE``, ``--out`` and ``--img-size``.

    For the tools that draw maps of one image (``CONFIG CHECKPOINT IMAGE
    --out OUT.png``); see :func:`load_model_and_image`.

    Args:
        parser (argparse.ArgumentParser): the tool's parser.
        img_size_default (str): what ``--img-size``'s help says of its
            default.
    """
    add_model_args(parser)
    parser.add_argument('image', help='image file')
    parser.add_argument('--out', required=True, help='output PNG path')
    parser.add_argument(
        '--img-size',
        type=int,
        default=None,
        help='resize the test pipeline\'s output to this square size '
        f'(default: {img_size_default})')


def load_model_and_image(parser: argparse.ArgumentParser,
                         args: argparse.Namespace,
                         usage: str = 'CONFIG CHECKPOINT IMAGE') -> tuple:
    """The model and test image of a tool built with :func:`add_image_args`.

    Exits through ``parser.error`` when the checkpoint is not as
    :func:`checked_checkpoint` expects or the image does not exist.

    Args:
        parser (argparse.ArgumentParser): the tool's parser.
        args (argparse.Namespace): its parsed arguments.
        usage (str): the positional arguments, for the message.

    Returns:
        tuple: ``(model, image, checkpoint)``: the retriever that
        ``init_retriever`` builds on ``args.device``, the ``(H, W, 3)`` BGR uint8 image as the config's
        test pipeline reads it (resized to ``--img-size``), and the
        checkpoint path (None with ``--random-init``).
    """
    from rsitr_mm.apis import init_retriever
    from .neck_maps import load_test_image
    checkpoint = checked_checkpoint(parser, args, usage)
    if not osp.isfile(args.image):
        parser.error(f'image {args.image!r} does not exist')
    model = init_retriever(args.config, checkpoint, args.device,
                           args.cfg_options,
                           trust_checkpoint=args.trust_checkpoint)
    image = load_test_image(model, args.image, args.img_size)
    return model, image, checkpoint

def old_image_tool_argv(prog: str, argv: List[str],
                        options: Sequence[str]) -> List[str]:
    """Old ``IMAGE CONFIG [--checkpoint CKPT] --out OUT`` in the new order.

    The result is ``CONFIG [CKPT] IMAGE --out OUT`` (``--random-init`` when
    no checkpoint is given, which the old paths then drew), the given
    ``options`` and ``--cfg-options`` passed on unchanged.

    Args:
        prog (str): the old tool's path, for its usage message.
        argv (list[str]): the old command line, without the program.
        options (Sequence[str]): the old tool's other options, as argparse
            destinations (``'img_size'`` for ``--img-size``).

    Returns:
        list[str]: the new tool's command line, without the program.
    """
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument('image')
    parser.add_argument('config')
    parser.add_argument('--checkpoint')
    parser.add_argument('--out', required=True)
    for opt in options:
        parser.add_argument('--' + opt.replace('_', '-'))
    parser.add_argument('--cfg-options', nargs='+')
    args = parser.parse_args(argv)
    new = [args.config] + ([args.checkpoint] if args.checkpoint else []) + [
        args.image, '--out', args.out
    ]
    if not args.checkpoint:
        new.append('--random-init')
    for opt in options:
        if getattr(args, opt, None) is not None:
            new += ['--' + opt.replace('_', '-'), getattr(args, opt)]
    if args.cfg_options:
        new += ['--cfg-options'] + args.cfg_options
    return new


def forward_to(new: str, argv: List[str], note: str) -> None:
    """Run the tool at path ``new`` as ``__main__`` with ``argv``.

    Prints ``note`` (where the tool moved) to stderr first; ``sys.argv``
    becomes ``[new] + argv``. What the tool raises (``SystemExit``) passes
    through.
    """
    print(note, file=sys.stderr)
    sys.argv = [new] + list(argv)
    runpy.run_path(new, run_name='__main__')
