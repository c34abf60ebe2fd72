# Copyright (c) rsitr_mm contributors. All rights reserved.
"""A Flask app serving one retriever and one :class:`ImageIndex`.

Every query goes through :mod:`rsitr_mm.apis` (``search_by_text``,
``search_by_image``, ``search_captions``), so the page ranks exactly as the
Python API and ``tools/retrieve.py`` do; a query the API refuses (its
``ValueError``) is answered with status 400 and the API's message.

Routes:

- ``GET /?q=TEXT&k=K``: the page; with ``q``, the top-k indexed images.
- ``POST /image`` (form field ``image``, optional ``k``): the page with the
  nearest captions (when a caption list is served) and indexed images.
- ``GET /thumb/<row>``: a JPEG thumbnail of the index's image at that row.
  Only the index's own files can be read, by row number, never by path.
- ``GET /api/info``, ``GET /api/text?q=&k=``, ``POST /api/image``: the same
  as JSON (errors as ``{"error": message}``).

Uploads are decoded in memory first (an undecodable file gets a 400 naming
it), limited to ``max_upload_bytes`` (413 beyond), and written only inside a
temporary folder that is removed when the query ends.
"""
import base64
import io
import json
import os.path as osp
import tempfile
import threading
from typing import Dict, List, Optional, Sequence

import torch.nn as nn
from flask import (Flask, Response, jsonify, render_template_string,
                   request)
from werkzeug.exceptions import HTTPException

from ..apis import (ImageIndex, model_identity, search_by_image,
                    search_by_text, search_captions)
from .page import PAGE

#: Pillow format -> file extension the image pipeline reads as it is;
#: other formats are re-encoded as PNG before the query.
_FORMAT_EXT = {'JPEG': '.jpg', 'PNG': '.png', 'TIFF': '.tif', 'BMP': '.bmp'}


class QueryError(ValueError):
    """A query the page refuses; the message is shown to the user."""


def load_captions(path: str) -> List[str]:
    """Captions to rank for image queries, from a file.

    Args:
        path (str): a ``.txt`` file with one caption per line, or a
            Karpathy-style ``.json`` (``images[*].sentences[*].raw``).

    Returns:
        list[str]: the captions, in file order, without repeats.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'caption file {path!r} does not exist')
    ext = osp.splitext(path)[1].lower()
    if ext == '.json':
        with open(path, encoding='utf-8') as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(
                    f'caption file {path!r} is not valid JSON: {e}') from e
        images = data.get('images') if isinstance(data, dict) else None
        if not isinstance(images, list):
            raise ValueError(
                f'caption file {path!r}: expected a Karpathy-style JSON '
                'object with an "images" list whose entries have '
                '"sentences": [{"raw": caption}, ...]')
        captions = []
        for i, img in enumerate(images):
            for j, sent in enumerate(img.get('sentences', [])):
                raw = sent.get('raw') if isinstance(sent, dict) else None
                if not isinstance(raw, str):
                    raise ValueError(
                        f'caption file {path!r}: images[{i}].sentences[{j}]'
                        ' has no "raw" caption string')
                captions.append(raw.strip())
    elif ext == '.txt':
        with open(path, encoding='utf-8') as f:
            captions = [line.strip() for line in f]
    else:
        raise ValueError(
            f'caption file {path!r}: expected a .txt (one caption per line)'
            ' or a Karpathy-style .json file')
    captions = list(dict.fromkeys(c for c in captions if c))
    if not captions:
        raise ValueError(f'caption file {path!r} holds no caption')
    return captions


def _size(num_bytes: int) -> str:
    if num_bytes >= 2**20:
        return f'{num_bytes / 2**20:.1f} MiB'
    return f'{num_bytes / 2**10:.0f} KiB'


def _short(value: Optional[str]) -> str:
    return osp.basename(value) if value else '(none)'


def describe(model: nn.Module, index: ImageIndex,
             captions: Optional[Sequence[str]],
             captions_source: Optional[str]) -> Dict[str, object]:
    """What the page serves: model, index and caption list identities."""
    ident = model_identity(model)
    return dict(
        model=dict(
            config=ident.get('config'),
            checkpoint=ident.get('checkpoint'),
            checkpoint_sha256=ident.get('checkpoint_sha256'),
            weights_sha256=ident.get('weights_sha256'),
            embed_dim=ident.get('embed_dim'),
            type=type(model).__name__),
        index=dict(
            folder=index.index_dir,
            images=len(index),
            skipped=len(index.skipped),
            dtype=index.meta.get('dtype'),
            root=index.meta.get('root')),
        captions=dict(
            count=len(captions) if captions else 0,
            source=captions_source))


def create_app(model: nn.Module,
               index: ImageIndex,
               captions: Optional[Sequence[str]] = None,
               k: int = 8,
               max_k: int = 100,
               max_upload_bytes: int = 10 * 1024 * 1024,
               thumb_size: int = 256,
               max_pixels: int = 40_000_000,
               max_query_chars: int = 1000,
               captions_source: Optional[str] = None) -> Flask:
    """Build the search page app.

    Args:
        model (nn.Module): the retriever (see
            :func:`~rsitr_mm.apis.init_retriever`); it must be the model the
            index was built with (checked here, ``ValueError`` otherwise).
        index (ImageIndex): the image index to search.
        captions (Sequence[str], optional): captions ranked for uploaded
            images (see :func:`load_captions`); without them an upload
            returns images only.
        k (int): default number of results.
        max_k (int): largest ``k`` a query may ask for.
        max_upload_bytes (int): largest accepted request body (uploads).
        thumb_size (int): longest side of the thumbnails, in pixels.
        max_pixels (int): largest uploaded image (width x height) that is
            decoded; a small file can hold a huge image.
        max_query_chars (int): longest accepted text query.
        captions_source (str, optional): where the captions come from,
            shown on the page.

    Returns:
        Flask: the app (``app.run()``, or any WSGI server).
    """
    if not 1 <= k <= max_k:
        raise ValueError(f'k must be between 1 and max_k={max_k}, got {k}')
    index.check_model(model)
    captions = list(captions) if captions else []
    info = describe(model, index, captions, captions_source)
    files = list(index.files)
    paths = index.paths
    # one query at a time through the model (the server may be threaded)
    lock = threading.Lock()

    app = Flask(__name__)
    app.config['MAX_CONTENT_LENGTH'] = max_upload_bytes
    app.extensions['rsitr_mm'] = dict(model=model, index=index,
                                      captions=captions, info=info)

    # ------------------------------------------------------------ helpers
    def parse_k() -> int:
        raw = request.values.get('k', '').strip()
        if not raw:
            return k
        try:
            value = int(raw)
        except ValueError:
            value = None
        if value is None or not 1 <= value <= max_k:
            raise QueryError(
                f'k must be a whole number from 1 to {max_k}, got {raw!r}')
        return value

    def rows_of(result) -> List[dict]:
        return [
            dict(rank=r + 1, row=int(i), file=files[int(i)],
                 score=round(float(s), 4))
            for r, (i, s) in enumerate(zip(result.indices[0],
                                           result.scores[0]))
        ]

    def text_query() -> dict:
        query = request.values.get('q', '')
        num = parse_k()
        if not query.strip():
            raise QueryError(
                'empty query: type a description of the images to find, '
                'e.g. "many buildings near a green park"')
        if len(query) > max_query_chars:
            raise QueryError(f'query too long: {len(query)} characters, '
                             f'the limit is {max_query_chars}')
        with lock:
            result = search_by_text(model, index, [query.strip()], k=num)
        # no query word in the model's vocabulary: the scores rank an
        # empty query, and the page says so
        return dict(query=query.strip(), k=num, images=rows_of(result),
                    unknown_words=bool(result.unknown_queries))

    def image_query() -> dict:
        num = parse_k()
        upload = request.files.get('image')
        name = (upload.filename or 'upload') if upload else None
        data = upload.read() if upload else b''
        if not data:
            raise QueryError('no image uploaded: choose an image file '
                             '(form field "image")')
        try:
            from PIL import Image
            with Image.open(io.BytesIO(data)) as im:
                fmt = im.format
                if im.width * im.height > max_pixels:
                    raise QueryError(
                        f'the uploaded image {name!r} is {im.width}x'
                        f'{im.height} pixels; the limit is {max_pixels} '
                        'pixels')
                im.load()  # full decode: refuses truncated files
                rgb = im.convert('RGB')
        except QueryError:
            raise
        except Exception as e:  # noqa: BLE001  any decode failure -> 400
            raise QueryError(
                f'cannot decode the uploaded file {name!r} as an image '
                f'({type(e).__name__}: {e})') from e
        preview = rgb.copy()
        preview.thumbnail((thumb_size, thumb_size))
        buf = io.BytesIO()
        preview.save(buf, 'JPEG', quality=85)
        preview_uri = 'data:image/jpeg;base64,' + base64.b64encode(
            buf.getvalue()).decode('ascii')
        with tempfile.TemporaryDirectory(prefix='rsitr_serve_') as tmp:
            ext = _FORMAT_EXT.get(fmt)
            path = osp.join(tmp, 'query' + (ext or '.png'))
            if ext:
                with open(path, 'wb') as f:
                    f.write(data)
            else:
                rgb.save(path, 'PNG')
            try:
                with lock:
                    images = search_by_image(model, index, [path], k=num)
                    caps = search_captions(
                        model, [path], captions, k=min(num, len(captions))
                    ) if captions else None
            except ValueError as e:
                # the API names the file: name the upload, not the temp file
                raise QueryError(str(e).replace(path, name)) from e
        out = dict(query=name, k=num, preview=preview_uri,
                   images=rows_of(images), captions=[])
        if caps is not None:
            out['captions'] = [
                dict(rank=r + 1, caption=c, score=round(float(s), 4))
                for r, (c, s) in enumerate(zip(caps.items[0],
                                               caps.scores[0]))
            ]
        return out

    def page(status: int = 200, **kwargs) -> Response:
        html = render_template_string(
            PAGE, info=info, default_k=k, max_k=max_k,
            max_upload=_size(max_upload_bytes), _short=_short,
            **kwargs)
        return Response(html, status=status, mimetype='text/html')

    def run(query_fn, what: str):
        try:
            return query_fn(), None
        except ValueError as e:  # QueryError and the API's own refusals
            app.logger.info('refused %s query: %s', what, e)
            return None, str(e)

    # ------------------------------------------------------------- routes
    @app.get('/')
    def home():
        if 'q' not in request.args:
            return page()
        result, error = run(text_query, 'text')
        return page(400 if error else 200, text=result, error=error,
                    q=request.args.get('q', ''))

    @app.post('/image')
    def image():
        result, error = run(image_query, 'image')
        return page(400 if error else 200, upload=result, error=error)

    @app.get('/thumb/<int:row>')
    def thumb(row: int):
        if not 0 <= row < len(paths):
            return Response(f'no image at row {row} (the index has '
                            f'{len(paths)} rows)\n', status=404,
                            mimetype='text/plain')
        try:
            from PIL import Image
            with Image.open(paths[row]) as im:
                im = im.convert('RGB')
                im.thumbnail((thumb_size, thumb_size))
                buf = io.BytesIO()
                im.save(buf, 'JPEG', quality=85)
        except Exception as e:  # noqa: BLE001
            return Response(f'cannot read {files[row]!r}: {e}\n', status=404,
                            mimetype='text/plain')
        resp = Response(buf.getvalue(), mimetype='image/jpeg')
        resp.headers['Cache-Control'] = 'max-age=3600'
        return resp

    @app.get('/api/info')
    def api_info():
        return jsonify(info)

    @app.get('/api/text')
    def api_text():
        result, error = run(text_query, 'text')
        return (jsonify(error=error), 400) if error else jsonify(result)

    @app.post('/api/image')
    def api_image():
        result, error = run(image_query, 'image')
        if error:
            return jsonify(error=error), 400
        result.pop('preview')
        return jsonify(result)

    @app.errorhandler(413)
    def too_large(e: HTTPException):
        msg = f'upload too large: the limit is {_size(max_upload_bytes)}'
        if request.path.startswith('/api/'):
            return jsonify(error=msg), 413
        return page(413, error=msg)

    return app
