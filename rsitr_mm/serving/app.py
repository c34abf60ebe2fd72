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

Uploads are limited to ``max_upload_bytes`` (413 beyond) and
``max_pixels`` (400), and decoded in memory at a bounded size (see
:func:`decode_upload`: Pillow's JPEG ``draft`` and integer ``reduce``, so
a 36-megapixel PNG is encoded at about the size of the model's input, not
at full size); an undecodable file gets a 400 naming it. The image then
goes through the model's test pipeline from a file written only inside a
temporary folder that is removed when the query ends. At most
``max_concurrent_uploads`` uploads are decoded at once; another one waits
up to ``queue_timeout`` seconds for a slot, then gets 503 (``Retry-After``)
instead of holding a thread and memory, so heavy uploads cannot starve
the other requests. Queries go through the model one at a time.
"""
import base64
import io
import json
import math
import os.path as osp
import tempfile
import threading
from typing import Dict, List, Optional, Sequence, Tuple

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


class ServerBusy(RuntimeError):
    """Every upload slot stayed busy for ``queue_timeout`` seconds."""


#: Longest side uploads are reduced to (unless the pipeline resizes to
#: more than half of it).
DEFAULT_MAX_SIDE = 1024


def pipeline_side(pipeline: Sequence[dict]) -> Optional[int]:
    """The largest output size a resize/crop step of the pipeline sets.

    Looks at ``scale`` (an int or ``(w, h)``) and ``crop_size`` of each
    step; ``None`` when no step sets a size (the images keep theirs).
    """
    sizes = []
    for step in pipeline:
        for key in ('scale', 'crop_size'):
            value = dict(step).get(key)
            if isinstance(value, (int, float)) and value > 0:
                sizes.append(int(value))
            elif isinstance(value, (list, tuple)) and value and all(
                    isinstance(v, (int, float)) and v > 0 for v in value):
                sizes.append(int(max(value)))
    return max(sizes) if sizes else None


def decode_upload(data: bytes, name: str, max_pixels: int,
                  max_side: int) -> Tuple[object, Optional[str], bool]:
    """Decode an uploaded image at a bounded size.

    The header is read first: more than ``max_pixels`` pixels is refused
    before any decoding. A JPEG larger than ``max_side`` is decoded with
    ``draft`` (DCT scaling by 1/2, 1/4 or 1/8: the full image is never in
    memory); any image still larger is then reduced by an integer factor
    (``Image.reduce``, a box filter) so that its longest side is at most
    ``max_side``.

    Args:
        data (bytes): the uploaded file.
        name (str): its name, for the messages.
        max_pixels (int): largest accepted width x height.
        max_side (int): longest side of the decoded image.

    Returns:
        tuple: the RGB ``PIL.Image``, the Pillow format name, and whether
        it was reduced (then the query reads a PNG of it, not the bytes).

    Raises:
        QueryError: too many pixels, or not a decodable image.
    """
    from PIL import Image
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format
            width, height = im.size
            if width * height > max_pixels:
                raise QueryError(
                    f'the uploaded image {name!r} is {width}x{height} '
                    f'pixels; the limit is {max_pixels} pixels')
            reduced = max(width, height) > max_side
            if reduced and fmt == 'JPEG':
                factor = math.ceil(max(width, height) / max_side)
                im.draft('RGB', (math.ceil(width / factor),
                                 math.ceil(height / factor)))
            im.load()  # full decode: refuses truncated files
            if im.mode not in ('RGB', 'L', 'RGBA', 'I', 'F'):
                im = im.convert('RGB')
            factor = math.ceil(max(im.size) / max_side)
            if factor > 1:
                im = im.reduce(factor)
            rgb = im.convert('RGB')
    except QueryError:
        raise
    except Exception as e:  # noqa: BLE001  any decode failure -> 400
        raise QueryError(
            f'cannot decode the uploaded file {name!r} as an image '
            f'({type(e).__name__}: {e})') from e
    return rgb, fmt, reduced


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
        try:
            with open(path, encoding='utf-8') as f:
                data = json.load(f)
        except ValueError as e:  # JSON and UTF-8 decoding errors
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
        try:
            with open(path, encoding='utf-8') as f:
                captions = [line.strip() for line in f]
        except UnicodeDecodeError as e:
            raise ValueError(
                f'caption file {path!r} is not UTF-8 text: {e}') from e
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
               max_pixels: int = 16_777_216,
               max_query_chars: int = 1000,
               captions_source: Optional[str] = None,
               max_side: Optional[int] = None,
               max_concurrent_uploads: int = 2,
               queue_timeout: float = 5.0) -> Flask:
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
            decoded; a small file can hold a huge image. Default 4096 x
            4096.
        max_query_chars (int): longest accepted text query.
        captions_source (str, optional): where the captions come from,
            shown on the page.
        max_side (int, optional): longest side uploads are decoded at
            (see :func:`decode_upload`). Default: :data:`DEFAULT_MAX_SIDE`
            (1024), or twice the size the test pipeline resizes to
            (:func:`pipeline_side`) when that is larger. Images up to that
            size take exactly the path of indexed files.
        max_concurrent_uploads (int): uploads decoded and encoded at once.
        queue_timeout (float): seconds an upload waits for a slot before
            the answer is 503.

    Returns:
        Flask: the app (``app.run()``, or any WSGI server).
    """
    if not 1 <= k <= max_k:
        raise ValueError(f'k must be between 1 and max_k={max_k}, got {k}')
    if max_concurrent_uploads < 1:
        raise ValueError('max_concurrent_uploads must be >= 1, got '
                         f'{max_concurrent_uploads}')
    if max_side is None:
        from ..apis.model_loading import model_pipeline
        side = pipeline_side(model_pipeline(model))
        max_side = max(DEFAULT_MAX_SIDE, 2 * side if side else 0)
    index.check_model(model)
    captions = list(captions) if captions else []
    info = describe(model, index, captions, captions_source)
    files = list(index.files)
    paths = index.paths
    # one query at a time through the model (the server may be threaded)
    lock = threading.Lock()
    # a bounded number of uploads decoded at once; the others wait a while
    slots = threading.BoundedSemaphore(max_concurrent_uploads)

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
        if not slots.acquire(timeout=queue_timeout):
            raise ServerBusy(
                f'the server is busy with {max_concurrent_uploads} other '
                f'image queries; try {name!r} again in a few seconds')
        try:
            return _image_query(num, name, data)
        finally:
            slots.release()

    def _image_query(num: int, name: str, data: bytes) -> dict:
        rgb, fmt, reduced = decode_upload(data, name, max_pixels, max_side)
        preview = rgb.copy()
        preview.thumbnail((thumb_size, thumb_size))
        buf = io.BytesIO()
        preview.save(buf, 'JPEG', quality=85)
        preview_uri = 'data:image/jpeg;base64,' + base64.b64encode(
            buf.getvalue()).decode('ascii')
        with tempfile.TemporaryDirectory(prefix='rsitr_serve_') as tmp:
            ext = None if reduced else _FORMAT_EXT.get(fmt)
            path = osp.join(tmp, 'query' + (ext or '.png'))
            if ext:
                with open(path, 'wb') as f:
                    f.write(data)
            else:
                rgb.save(path, 'PNG', compress_level=1)
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
            return query_fn(), None, 200
        except ValueError as e:  # QueryError and the API's own refusals
            app.logger.info('refused %s query: %s', what, e)
            return None, str(e), 400
        except ServerBusy as e:
            app.logger.warning('%s query turned away: %s', what, e)
            return None, str(e), 503

    def busy_headers(status: int) -> dict:
        return {'Retry-After': '5'} if status == 503 else {}

    # ------------------------------------------------------------- routes
    @app.get('/')
    def home():
        if 'q' not in request.args:
            return page()
        result, error, status = run(text_query, 'text')
        return page(status, text=result, error=error,
                    q=request.args.get('q', ''))

    @app.post('/image')
    def image():
        result, error, status = run(image_query, 'image')
        resp = page(status, upload=result, error=error)
        resp.headers.update(busy_headers(status))
        return resp

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
        result, error, status = run(text_query, 'text')
        return (jsonify(error=error), status) if error else jsonify(result)

    @app.post('/api/image')
    def api_image():
        result, error, status = run(image_query, 'image')
        if error:
            return jsonify(error=error), status, busy_headers(status)
        result.pop('preview')
        return jsonify(result)

    @app.errorhandler(413)
    def too_large(e: HTTPException):
        msg = f'upload too large: the limit is {_size(max_upload_bytes)}'
        if request.path.startswith('/api/'):
            return jsonify(error=msg), 413
        return page(413, error=msg)

    return app
