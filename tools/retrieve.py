# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Index images with a trained retriever and search them.

Sub-commands::

    # encode a folder of images (recursive) into an index folder; re-running
    # the same command resumes an interrupted build
    python tools/retrieve.py index CONFIG CHECKPOINT IMAGE_DIR INDEX_DIR \
        [--batch-size 32] [--dtype float16]

    # text -> image: pass the model the index was built with (checked
    # against the identity the index recorded) ...
    python tools/retrieve.py text INDEX_DIR "two white storage tanks" \
        --config CONFIG --checkpoint CHECKPOINT [-k 5] [--out grid.png]
    # ... or reuse the config/checkpoint named in the index, explicitly
    python tools/retrieve.py text INDEX_DIR "two white storage tanks" \
        --use-index-model

    # image -> image
    python tools/retrieve.py image INDEX_DIR QUERY.png --config CONFIG \
        --checkpoint CHECKPOINT [-k 5] [--out grid.png]

An index folder is data only: opening one never executes the config or loads
the checkpoint it names unless ``--use-index-model`` is given, and then the
files' sha256 must match the ones recorded when the index was built. The
``--cfg-options`` it recorded are compared with the run's and shown when they
differ, never applied.

    # upgrade an index of format 1 or 2 (no embeddings hash), explicitly
    python tools/retrieve.py migrate INDEX_DIR
Checkpoints are unpickled without running code unless ``--trust-checkpoint``
is given.

    # image -> caption over a caption file (one caption per line)
    python tools/retrieve.py captions CONFIG CHECKPOINT IMAGE \
        --captions FILE.txt [-k 5] [--out grid.png]
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import List, Optional

from rsitr_mm.engine.config_check import CfgOptionsAction

from rsitr_mm.utils.threads import add_threads_arg, setup_threads


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument('--device', default='cpu', help='e.g. cpu or cuda:0')
    add_threads_arg(p)
    p.add_argument(
        '--trust-checkpoint',
        action='store_true',
        help='unpickle the checkpoint with full pickle, which can run code '
        'from the file (default: tensors and mmengine values only)')
    p.add_argument(
        '--cfg-options',
        nargs='+',
        action=CfgOptionsAction,
        help='override config settings, as in tools/test.py')


def _add_search_args(p: argparse.ArgumentParser) -> None:
    p.add_argument('-k', type=int, default=5, help='results per query')
    p.add_argument('--out', help='write a PNG grid of the results')
    p.add_argument(
        '--chunk-size',
        type=int,
        default=65536,
        help='gallery rows per matrix product (memory bound)')
    p.add_argument(
        '--search-dtype',
        choices=['float32', 'float16'],
        default='float32',
        help='precision of the score products')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Index images and search them with a retriever.')
    sub = parser.add_subparsers(dest='command', required=True)

    p = sub.add_parser('index', help='encode images into an index folder')
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument(
        'image_dir',
        help='folder searched recursively for images, or a .txt file '
        'listing image paths')
    p.add_argument('index_dir')
    p.add_argument('--batch-size', type=int, default=32)
    p.add_argument(
        '--num-workers', type=int, default=min(4, os.cpu_count() or 1),
        help='image-loading worker processes (0: read in the main process)')
    p.add_argument(
        '--dtype', choices=['float32', 'float16'], default='float32',
        help='storage type of the embeddings')
    p.add_argument(
        '--overwrite', action='store_true',
        help='discard an existing index instead of resuming it')
    p.add_argument('--no-progress', action='store_true')
    _add_model_args(p)

    for name, what in (('text', 'caption(s)'), ('image', 'image file(s)')):
        p = sub.add_parser(name, help=f'search an index with {what}')
        p.add_argument('index_dir')
        p.add_argument('queries', nargs='+', help=f'query {what}')
        p.add_argument(
            '--config', help='config of the model the index was built with')
        p.add_argument(
            '--checkpoint',
            help='checkpoint of the model the index was built with')
        p.add_argument(
            '--use-index-model',
            action='store_true',
            help='use the config and checkpoint recorded in the index '
            '(executes that config; their sha256 must match the index)')
        _add_model_args(p)
        _add_search_args(p)

    p = sub.add_parser(
        'migrate', help='upgrade an index of format 1 or 2 (no embeddings '
        'hash) to the current format, taking its rows as they are')
    p.add_argument('index_dir')

    p = sub.add_parser('captions', help='rank captions for image(s)')
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('images', nargs='+', help='query image file(s)')
    p.add_argument(
        '--captions', required=True,
        help='text file with one candidate caption per line')
    _add_model_args(p)
    _add_search_args(p)
    return parser.parse_args(argv)


def draw_grid(result, out_file: str, query_kind: str) -> None:
    """One row per query: the query, then its top-k images (see
    :func:`rsitr_mm.visualization.draw_image_results`, shared with
    ``tools/test.py --show-dir``)."""
    from rsitr_mm.visualization import draw_image_results
    draw_image_results(result, out_file, query_kind)


def draw_captions(result, out_file: str) -> None:
    """One row per query image: the image and its ranked captions (see
    :func:`rsitr_mm.visualization.draw_caption_results`)."""
    from rsitr_mm.visualization import draw_caption_results
    draw_caption_results(result, out_file)


def _load_index_model(args, index):
    """The query model: given by the user, or the index's own on request."""
    from rsitr_mm.apis import init_retriever
    from rsitr_mm.apis.model_loading import file_sha256
    ident = index.identity
    if args.use_index_model:
        if args.config or args.checkpoint:
            sys.exit('error: give either --use-index-model or '
                     '--config/--checkpoint, not both')
        config, checkpoint = ident.get('config'), ident.get('checkpoint')
        for what, path in (('config', config), ('checkpoint', checkpoint)):
            if what == 'checkpoint' and not path:
                continue
            if not path or not osp.isfile(path):
                sys.exit(f'error: the {what} recorded in index '
                         f'{args.index_dir!r} ({path!r}) is not there; pass '
                         f'--config and --checkpoint')
            recorded = ident.get(f'{what}_sha256')
            if not recorded:
                sys.exit(f'error: index {args.index_dir!r} records no '
                         f'sha256 for its {what}, so --use-index-model '
                         'cannot verify it; pass --config and --checkpoint')
            actual = file_sha256(path, len(recorded))
            if actual != recorded:
                sys.exit(f'error: {what} {path!r} has sha256 {actual}, but '
                         f'index {args.index_dir!r} was built with '
                         f'{recorded}: the file changed; refusing to load '
                         'it. Pass --config and --checkpoint')
    else:
        config, checkpoint = args.config, args.checkpoint
        if not config:
            sys.exit(f'error: pass --config and --checkpoint (the model index '
                     f'{args.index_dir!r} was built with: config '
                     f'{ident.get("config")!r}, checkpoint '
                     f'{ident.get("checkpoint")!r}), or --use-index-model '
                     'to load those (runs that config)')
        if not osp.isfile(config):
            sys.exit(f'error: config {config!r} does not exist')
        if checkpoint and not osp.isfile(checkpoint):
            sys.exit(f'error: checkpoint {checkpoint!r} does not exist')
    warn_options_differ(index, args.cfg_options)
    return init_retriever(
        config, checkpoint, device=args.device, cfg_options=args.cfg_options,
        trust_checkpoint=args.trust_checkpoint)


def warn_options_differ(index, cfg_options: Optional[dict]) -> None:
    """Say when ``--cfg-options`` differ from the ones the index recorded.

    The recorded options are data: they are shown, never merged into the
    config (an edited ``meta.json`` could name any type there).
    """
    from rsitr_mm.apis.model_loading import _jsonable
    recorded = index.identity.get('cfg_options') or {}
    given = _jsonable(cfg_options or {})
    if recorded != given:
        print(f'note: index {index.index_dir!r} was built with '
              f'--cfg-options {json.dumps(recorded)}; this run has '
              f'{json.dumps(given)}. They are not applied from the index: '
              'pass them yourself if the model needs them (the model is '
              'checked against the index either way).', file=sys.stderr)


def _read_image_list(path: str) -> List[str]:
    base = osp.dirname(osp.abspath(path))
    with open(path, encoding='utf-8') as f:
        names = [line.strip() for line in f if line.strip()]
    return [n if osp.isabs(n) else osp.join(base, n) for n in names]


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    setup_threads(getattr(args, 'threads', None),
                  getattr(args, 'num_workers', 0))
    from rsitr_mm.apis import (ImageIndex, init_retriever, search_by_image,
                               search_by_text, search_captions)

    if args.command == 'index':
        model = init_retriever(
            args.config, args.checkpoint, device=args.device,
            cfg_options=args.cfg_options,
            trust_checkpoint=args.trust_checkpoint)
        images = args.image_dir if osp.isdir(args.image_dir) \
            else _read_image_list(args.image_dir)
        index = ImageIndex.build(
            model, images, args.index_dir, batch_size=args.batch_size,
            dtype=args.dtype, progress=not args.no_progress,
            overwrite=args.overwrite, num_workers=args.num_workers)
        print(f'{index}: {len(index)} images indexed, '
              f'{len(index.skipped)} skipped')
        for name, reason in sorted(index.skipped.items()):
            print(f'  skipped {name}: {reason}')
        return

    if args.command == 'migrate':
        index = ImageIndex.migrate(args.index_dir)
        print(f'{index}: migrated to format {index.meta["format_version"]}')
        return

    search_kwargs = dict(
        k=args.k, chunk_size=args.chunk_size, dtype=args.search_dtype)
    if args.command in ('text', 'image'):
        index = ImageIndex.load(args.index_dir)
        model = _load_index_model(args, index)
        if args.command == 'text':
            result = search_by_text(model, index, args.queries,
                                    **search_kwargs)
        else:
            result = search_by_image(model, index, args.queries,
                                     **search_kwargs)
        print(result.format())
        if args.out:
            draw_grid(result, args.out, args.command)
            print(f'grid written to {args.out}')
        return

    # captions
    with open(args.captions, encoding='utf-8') as f:
        captions = [line.strip() for line in f if line.strip()]
    model = init_retriever(
        args.config, args.checkpoint, device=args.device,
        cfg_options=args.cfg_options,
        trust_checkpoint=args.trust_checkpoint)
    result = search_captions(model, args.images, captions, **search_kwargs)
    print(result.format())
    if args.out:
        draw_captions(result, args.out)
        print(f'figure written to {args.out}')


if __name__ == '__main__':
    main()
