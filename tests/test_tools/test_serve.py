# Copyright (c) rsitr_mm contributors. All rights reserved.
"""tools/serve.py and rsitr_mm.serving: the search page over HTTP.

A tiny random model indexes real RSICD sample images (skipped when
``../shared/data`` is absent) and generated scenes (never skipped). The
page is queried through Flask's test client, and over a real socket
through the tool's own server on a free port of 127.0.0.1.
"""
import importlib.util
import io
import json
import os.path as osp
import re
import threading
import urllib.error
import urllib.request
import uuid

import numpy as np
import pytest
import torch
from PIL import Image

from rsitr_mm.apis import (ImageIndex, init_retriever, list_images,
                           search_by_text)
from rsitr_mm.datasets.synthetic import generate_synthetic_dataset
from rsitr_mm.serving import create_app, load_captions

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'serve.py')

CONFIG = """
_base_ = [r'{repo}/configs/demo_tinycnn-bigru_synthetic.py']
model = dict(
    image_encoder=dict(base_channels=8, num_stages=3, out_indices=(2, )),
    image_in_channels=32,
    text_encoder=dict(ann_files=[r'{ann}'], word_dim=16, hidden_dim=32),
    text_in_channels=32,
    embed_dim=32)
test_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(48, 48)),
    dict(type='PackInputs', algorithm_keys=['text'])]))
"""


def _load_tool():
    spec = importlib.util.spec_from_file_location('serve_tool', TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def _make_setup(tiny_demo, root, images: str, ann: str) -> dict:
    """A tiny checkpoint (BatchNorm statistics from the images) + index."""
    config = str(root / 'tiny.py')
    with open(config, 'w') as f:
        f.write(CONFIG.format(repo=REPO, ann=ann))
    torch.manual_seed(0)
    ckpt = tiny_demo.save_calibrated(
        init_retriever(config),
        [osp.join(images, f) for f in list_images(images)],
        str(root / 'tiny.pth'))
    model = init_retriever(config, ckpt)
    index_dir = str(root / 'index')
    index = ImageIndex.build(model, images, index_dir, batch_size=16,
                             progress=False)
    return dict(root=root, config=config, ckpt=ckpt, images=images,
                index_dir=index_dir, model=model, index=index, ann=ann)


@pytest.fixture(scope='module')
def generated(tmp_path_factory, tiny_demo):
    root = tmp_path_factory.mktemp('serve_generated')
    data = str(root / 'data')
    generate_synthetic_dataset(
        data, num_images=12, image_size=32, seed=3, split=(6, 3, 3),
        progress=False)
    return _make_setup(tiny_demo, root, osp.join(data, 'images'),
                       osp.join(data, 'dataset_synthetic.json'))


@pytest.fixture(scope='module')
def rsicd(tmp_path_factory, shared_data, tiny_demo):
    sample = osp.join(shared_data, 'rsicd_sample')
    if not osp.isdir(osp.join(sample, 'images')):
        pytest.skip('rsicd_sample is absent')
    root = tmp_path_factory.mktemp('serve_rsicd')
    return _make_setup(tiny_demo, root, osp.join(sample, 'images'),
                       osp.join(sample, 'dataset_rsicd_sample.json'))


@pytest.fixture(params=['generated', 'rsicd'])
def served(request):
    """``(setup, Flask app)`` serving the setup's index and captions."""
    setup = request.getfixturevalue(request.param)
    captions = load_captions(setup['ann'])
    app = create_app(setup['model'], setup['index'], captions, k=4,
                     max_upload_bytes=200_000, captions_source=setup['ann'])
    return setup, app


def _cards(html: str):
    """(row, score, file) of every result card of a page."""
    cards = re.findall(
        r'<img src="/thumb/(\d+)".*?class="score">([-+0-9.]+)</span>.*?'
        r'class="file">([^<]*)</div>', html, re.S)
    return [(int(r), float(s), f) for r, s, f in cards]


def _upload(path_or_bytes, name='query.jpg', k=None):
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else open(
        path_or_bytes, 'rb').read()
    form = {'image': (io.BytesIO(data), name)}
    if k is not None:
        form['k'] = str(k)
    return dict(data=form, content_type='multipart/form-data')


def test_text_query_grid(served):
    setup, app = served
    index = setup['index']
    client = app.test_client()
    query = 'many buildings and green trees'
    resp = client.get('/', query_string=dict(q=query, k=3))
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert re.search(r'Top 3 images for\s+&ldquo;' + query, html)
    cards = _cards(html)
    assert len(cards) == 3
    # the same ranking as the Python API
    expected = search_by_text(setup['model'], index, query, k=3)
    assert [r for r, _, _ in cards] == [int(i) for i in expected.indices[0]]
    assert [f for _, _, f in cards] == [index.files[r] for r, _, _ in cards]
    np.testing.assert_allclose([s for _, s, _ in cards],
                               expected.scores[0], atol=1e-4)
    # thumbnails are served by row, as JPEG
    thumb = client.get(f'/thumb/{cards[0][0]}')
    assert thumb.status_code == 200 and thumb.mimetype == 'image/jpeg'
    assert Image.open(io.BytesIO(thumb.data)).size[0] <= 256
    # the JSON twin; default k
    data = client.get('/api/text', query_string=dict(q=query)).get_json()
    assert len(data['images']) == 4
    assert [r['row'] for r in data['images'][:3]] == [r for r, _, _ in cards]


def test_image_query_captions_and_images(served):
    setup, app = served
    index = setup['index']
    client = app.test_client()
    query = index.paths[2]
    resp = client.post('/image', **_upload(query, 'my scene.jpg', k=3))
    assert resp.status_code == 200, resp.get_data(as_text=True)[-500:]
    html = resp.get_data(as_text=True)
    assert 'Nearest captions for my scene.jpg' in html
    assert 'src="data:image/jpeg;base64,' in html  # the query, inline
    captions = re.findall(r'<li><span class="score">([-0-9.]+)</span>\s*'
                          r'(.*?)</li>', html)
    assert len(captions) == 3
    known = set(load_captions(setup['ann']))
    assert all(c in known for _, c in captions)
    cards = _cards(html)
    assert len(cards) == 3
    # an indexed image finds itself first
    assert cards[0][0] == 2 and cards[0][2] == index.files[2]
    assert cards[0][1] == pytest.approx(1.0, abs=2e-3)
    data = client.post('/api/image', **_upload(query)).get_json()
    assert data['images'][0]['row'] == 2 and len(data['captions']) == 4
    assert [c['caption'] for c in data['captions'][:3]] == \
        [c for _, c in captions]


def test_bad_queries_get_clear_errors(generated):
    app = create_app(generated['model'], generated['index'], None,
                     max_upload_bytes=50_000)
    client = app.test_client()
    for q in ('', '   '):
        resp = client.get('/', query_string=dict(q=q))
        assert resp.status_code == 400
        assert 'empty query' in resp.get_data(as_text=True)
    resp = client.get('/api/text', query_string=dict(q='x', k='many'))
    assert resp.status_code == 400
    assert "k must be a whole number from 1 to 100, got 'many'" in \
        resp.get_json()['error']
    assert client.get('/', query_string=dict(q='x', k=0)).status_code == 400

    # undecodable upload: named in the message
    resp = client.post('/image', **_upload(b'not an image', 'notes.jpg'))
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert 'cannot decode the uploaded file &#39;notes.jpg&#39; as an image' \
        in html
    # truncated JPEG
    buf = io.BytesIO()
    Image.fromarray(np.random.RandomState(0).randint(
        0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, 'JPEG')
    resp = client.post('/api/image',
                       **_upload(buf.getvalue()[:600], 'cut.jpg'))
    assert resp.status_code == 400
    assert "'cut.jpg'" in resp.get_json()['error']
    # nothing uploaded
    resp = client.post('/api/image', data={},
                       content_type='multipart/form-data')
    assert resp.status_code == 400
    assert 'no image uploaded' in resp.get_json()['error']
    # too large
    resp = client.post('/image', **_upload(b'\0' * 60_000, 'big.png'))
    assert resp.status_code == 413
    assert 'upload too large: the limit is 49 KiB' in resp.get_data(
        as_text=True)
    # an upload without a caption list returns images only
    resp = client.post('/image', **_upload(generated['index'].paths[0]))
    assert resp.status_code == 200
    assert 'No caption list is served\n' in resp.get_data(as_text=True)
    # too many pixels, too long a query
    small = create_app(generated['model'], generated['index'],
                       max_pixels=1000, max_query_chars=20).test_client()
    resp = small.post('/api/image', **_upload(generated['index'].paths[0],
                                              'scene.png'))
    assert resp.status_code == 400
    assert "'scene.png' is 32x32 pixels; the limit is 1000" in \
        resp.get_json()['error']
    resp = small.get('/api/text', query_string=dict(q='x' * 21))
    assert resp.status_code == 400
    assert 'query too long: 21 characters' in resp.get_json()['error']
    # thumbnails only by row of the index
    n = len(generated['index'])
    assert client.get(f'/thumb/{n}').status_code == 404
    assert client.get('/thumb/-1').status_code == 404
    assert client.get('/thumb/..%2Fmeta.json').status_code == 404


def test_page_shows_model_and_index(served):
    setup, app = served
    html = app.test_client().get('/').get_data(as_text=True)
    ident = re.search(r'<div class="ident" id="identity">(.*?)</div>', html,
                      re.S).group(1)
    index = setup['index']
    assert 'tiny.py' in ident and 'tiny.pth' in ident
    assert index.identity['weights_sha256'] in ident
    assert setup['index_dir'] in ident
    assert f'{len(index)} images' in ident
    assert 'captions:' in ident and str(len(load_captions(setup['ann']))) \
        in ident
    info = app.test_client().get('/api/info').get_json()
    assert info['index']['images'] == len(index)
    assert info['model']['checkpoint'] == osp.abspath(setup['ckpt'])


def test_other_model_is_refused(generated, tmp_path):
    model = init_retriever(generated['config'])  # random weights
    with pytest.raises(ValueError, match='built with a different model'):
        create_app(model, generated['index'])
    tool = _load_tool()
    ckpt = str(tmp_path / 'other.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    args = tool.parse_args([
        generated['index_dir'], '--config', generated['config'],
        '--checkpoint', ckpt, '--port', '0'
    ])
    with pytest.raises(SystemExit, match='error: index .* was built with a '
                       'different model'):
        tool.build_server(args)


def test_load_captions(tmp_path):
    txt = tmp_path / 'c.txt'
    txt.write_text('a harbor\n\n  a harbor \nsome tanks\n')
    assert load_captions(str(txt)) == ['a harbor', 'some tanks']
    js = tmp_path / 'd.json'
    js.write_text(json.dumps({'images': [
        {'sentences': [{'raw': 'a field .'}, {'raw': 'a road'}]},
        {'sentences': [{'raw': 'a road'}]}]}))
    assert load_captions(str(js)) == ['a field .', 'a road']
    js.write_text(json.dumps({'images': [{'sentences': [{'tokens': []}]}]}))
    with pytest.raises(ValueError, match=r'images\[0\]\.sentences\[0\]'):
        load_captions(str(js))
    js.write_text('[1, 2]')
    with pytest.raises(ValueError, match='Karpathy-style'):
        load_captions(str(js))
    csv = tmp_path / 'c.csv'
    csv.write_text('a harbor\n')
    with pytest.raises(ValueError, match='expected a .txt'):
        load_captions(str(csv))
    with pytest.raises(FileNotFoundError):
        load_captions(str(tmp_path / 'missing.txt'))


def _multipart(fields: dict, files: dict):
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; '
                     f'name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, data) in files.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; '
                     f'name="{name}"; filename="{filename}"\r\n'
                     'Content-Type: application/octet-stream\r\n\r\n'
                     .encode() + data + b'\r\n')
    body = b''.join(parts) + f'--{boundary}--\r\n'.encode()
    return body, f'multipart/form-data; boundary={boundary}'


def test_real_http_round_trip(generated, monkeypatch, capsys):
    """``tools/serve.py`` main() on a free port of 127.0.0.1, in a thread."""
    tool = _load_tool()
    captions = str(generated['root'] / 'captions.txt')
    with open(captions, 'w') as f:
        f.write('a dense forest\nsome storage tanks\na river\n')
    servers = []
    build = tool.build_server

    def build_and_keep(args):
        assert args.host == '127.0.0.1'  # the default
        servers.append(build(args))
        return servers[-1]

    monkeypatch.setattr(tool, 'build_server', build_and_keep)
    thread = threading.Thread(target=tool.main, daemon=True, args=([
        generated['index_dir'], '--config', generated['config'],
        '--checkpoint', generated['ckpt'], '--captions', captions,
        '--port', '0', '-k', '3'
    ], ))
    thread.start()
    for _ in range(600):  # the model loads in the thread (bounded wait)
        if servers or not thread.is_alive():
            break
        thread.join(timeout=0.1)
    assert servers, 'the server did not start'
    server = servers[0]
    base = f'http://127.0.0.1:{server.port}'
    try:
        with urllib.request.urlopen(
                base + '/?q=two+white+storage+tanks', timeout=60) as r:
            assert r.status == 200
            html = r.read().decode()
        cards = _cards(html)
        assert len(cards) == 3
        files = generated['index'].files
        assert all(files[row] == f for row, _, f in cards)
        with urllib.request.urlopen(f'{base}/thumb/{cards[0][0]}',
                                    timeout=60) as r:
            assert r.headers['Content-Type'] == 'image/jpeg'
        body, ctype = _multipart(
            {'k': '2'}, {'image': ('q.jpg',
                                   open(generated['index'].paths[1],
                                        'rb').read())})
        req = urllib.request.Request(base + '/api/image', data=body,
                                     headers={'Content-Type': ctype})
        with urllib.request.urlopen(req, timeout=60) as r:
            data = json.loads(r.read())
        assert data['images'][0]['row'] == 1
        assert len(data['captions']) == 2
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + '/api/text?q=', timeout=60)
        assert e.value.code == 400
        assert 'empty query' in json.loads(e.value.read())['error']
    finally:
        server.shutdown()  # main() returns once serve_forever stops
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert f'on http://127.0.0.1:{server.port}/' in capsys.readouterr().out


# ------------------------------------------- heavy uploads (issue #22)
def _encoded(size, fmt, mode='RGB'):
    """A large, highly compressible image (a gradient band on grey)."""
    img = Image.new(mode, size, 'gray' if mode == 'RGB' else 128)
    band = Image.linear_gradient('L').resize((size[0], 64))
    img.paste(band.convert(mode), (0, size[1] // 2))
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


@pytest.mark.parametrize('fmt,name', [('PNG', 'huge.png'),
                                      ('JPEG', 'huge.jpg')])
def test_large_upload_is_encoded_at_the_pipeline_size(generated, monkeypatch,
                                                      fmt, name):
    import rsitr_mm.serving.app as app_mod
    seen = []
    real = app_mod.search_by_image

    def spy(model, index, paths, **kwargs):
        with Image.open(paths[0]) as im:
            seen.append(im.size)
        return real(model, index, paths, **kwargs)

    monkeypatch.setattr(app_mod, 'search_by_image', spy)
    client = create_app(generated['model'], generated['index'],
                        max_upload_bytes=20 * 2**20).test_client()
    resp = client.post('/api/image', **_upload(_encoded((3000, 2000), fmt),
                                               name))
    assert resp.status_code == 200, resp.get_json()
    # decoded at most 1024 px on the longest side (the pipeline resizes to
    # 48, so twice that is less than the default)
    assert seen and 512 <= max(seen[0]) <= 1024, seen


def test_default_pixel_limit_is_4096_squared(generated):
    client = create_app(generated['model'], generated['index'],
                        max_upload_bytes=20 * 2**20).test_client()
    resp = client.post('/api/image', **_upload(
        _encoded((5000, 4000), 'PNG', 'L'), 'bomb.png'))
    assert resp.status_code == 400
    assert ("'bomb.png' is 5000x4000 pixels; the limit is 16777216" in
            resp.get_json()['error'])


def test_busy_upload_slots_answer_503(generated, monkeypatch):
    import rsitr_mm.serving.app as app_mod
    inside, release = threading.Event(), threading.Event()
    real = app_mod.search_by_image

    def slow(*args, **kwargs):
        inside.set()
        release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(app_mod, 'search_by_image', slow)
    app = create_app(generated['model'], generated['index'],
                     max_concurrent_uploads=1, queue_timeout=0.2)
    image = generated['index'].paths[0]
    first = []
    worker = threading.Thread(target=lambda: first.append(
        app.test_client().post('/api/image', **_upload(image, 'a.png'))))
    worker.start()
    try:
        assert inside.wait(30)
        resp = app.test_client().post('/api/image',
                                      **_upload(image, 'b.png'))
        assert resp.status_code == 503
        assert resp.headers['Retry-After'] == '5'
        assert "busy" in resp.get_json()['error'] and \
            "'b.png'" in resp.get_json()['error']
    finally:
        release.set()
        worker.join(30)
    assert first[0].status_code == 200


def test_page_says_when_every_query_word_is_unknown(generated):
    client = create_app(generated['model'], generated['index'],
                        None).test_client()
    html = client.get('/', query_string=dict(q='zzqx qqvw')).get_data(
        as_text=True)
    assert 'id="unknown-words"' in html and "model's vocabulary" in html
    assert client.get('/api/text', query_string=dict(
        q='zzqx qqvw')).get_json()['unknown_words'] is True
    known = client.get('/', query_string=dict(q='buildings'))
    assert 'id="unknown-words"' not in known.get_data(as_text=True)
    assert client.get('/api/text', query_string=dict(
        q='buildings')).get_json()['unknown_words'] is False
