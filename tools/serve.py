# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Serve a local search page over an image index.

Usage::

    python tools/serve.py INDEX_DIR --config CONFIG --checkpoint CKPT \
        [--captions captions.txt|dataset.json] [--port 8000] [-k 8]

then open http://127.0.0.1:8000 . The config and checkpoint are given
explicitly: the ones recorded in the index are never loaded, only compared
(the index refuses a model other than the one it was built with); nothing
from the index folder is merged into the config.
"""
import argparse
import sys
from typing import List, Optional

from rsitr_mm.engine.config_check import CfgOptionsAction

from rsitr_mm.utils.threads import add_threads_arg, setup_threads


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Serve a local text/image search page over an image '
        'index built with tools/retrieve.py index.')
    parser.add_argument('index_dir', help='the index folder')
    parser.add_argument(
        '--config', required=True, help='the config the index was built '
        'with (never taken from the index)')
    parser.add_argument(
        '--checkpoint', required=True,
        help='the checkpoint the index was built with')
    parser.add_argument(
        '--captions',
        help='captions ranked for uploaded images: a .txt file (one per '
        'line) or a Karpathy-style dataset .json')
    parser.add_argument('-k', type=int, default=8,
                        help='default number of results')
    parser.add_argument(
        '--host', default='127.0.0.1',
        help='address to listen on (default: this machine only)')
    parser.add_argument(
        '--port', type=int, default=8000,
        help='port to listen on (0: any free port)')
    parser.add_argument('--device', default='cpu', help='e.g. cpu or cuda:0')
    add_threads_arg(parser)
    parser.add_argument(
        '--max-upload-mb', type=float, default=10,
        help='largest accepted upload, in MiB')
    parser.add_argument(
        '--max-pixels', type=int, default=4096 * 4096,
        help='largest accepted upload in pixels (width x height); checked '
        'from the header, before decoding')
    parser.add_argument(
        '--max-side', type=int, default=None,
        help='longest side an upload is decoded at (default: 1024, or '
        'twice the test pipeline\'s resize when larger)')
    parser.add_argument(
        '--max-concurrent-uploads', type=int, default=2,
        help='image queries decoded and encoded at once; more wait up to '
        '--queue-timeout seconds, then get 503')
    parser.add_argument('--queue-timeout', type=float, default=5.0)
    parser.add_argument(
        '--trust-checkpoint', action='store_true',
        help='allow a checkpoint holding arbitrary pickled objects (runs '
        'code from the file); only for checkpoints you trust')
    parser.add_argument(
        '--cfg-options', nargs='+', action=CfgOptionsAction,
        help='override config settings, as in tools/test.py')
    return parser.parse_args(argv)


def build_server(args: argparse.Namespace):
    """Load the model, the index and the captions; make the WSGI server.

    Returns:
        werkzeug.serving.BaseWSGIServer: a threaded server, not started.
    """
    from werkzeug.serving import make_server

    from rsitr_mm.apis import ImageIndex, init_retriever
    from rsitr_mm.serving import create_app, load_captions

    index = ImageIndex.load(args.index_dir)
    captions = load_captions(args.captions) if args.captions else None
    kwargs = dict(trust_checkpoint=True) if args.trust_checkpoint else {}
    model = init_retriever(
        args.config, args.checkpoint, device=args.device,
        cfg_options=args.cfg_options, **kwargs)
    try:
        app = create_app(
            model, index, captions, k=args.k,
            max_upload_bytes=int(args.max_upload_mb * 2**20),
            captions_source=args.captions, max_pixels=args.max_pixels,
            max_side=args.max_side,
            max_concurrent_uploads=args.max_concurrent_uploads,
            queue_timeout=args.queue_timeout)
    except ValueError as e:
        recorded = index.identity.get('cfg_options')
        hint = (f' The index was built with --cfg-options {recorded}.'
                if recorded else '')
        raise SystemExit(f'error: {e}{hint}') from e
    return make_server(args.host, args.port, app, threaded=True)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    setup_threads(args.threads)
    server = build_server(args)
    host = server.server_address[0]
    if host not in ('127.0.0.1', 'localhost', '::1'):
        print(f'warning: listening on {host}, reachable from other '
              'machines; the page has no authentication', file=sys.stderr)
    shown = f'[{host}]' if ':' in host else host
    print(f'serving {args.index_dir} on http://{shown}:{server.port}/ '
          '(Ctrl+C to stop)', flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == '__main__':
    main()
