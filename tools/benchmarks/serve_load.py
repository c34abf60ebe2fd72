# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Can heavy uploads starve the search page? A load test on 127.0.0.1.

Serves an index with ``tools/serve.py`` (a subprocess, so its memory is
measured alone) and sends, at the same moment, ``--heavy`` uploads of a
small PNG holding a huge image (default 6000 x 6000 = 36 Mpx, about
100 KiB) and ``--requests`` ordinary requests (text queries, thumbnails,
``/api/info``) from ``--threads`` client threads, started evenly over
``--spread`` seconds, every request with a ``--timeout`` second client
limit. Prints, per server setting, the
ordinary requests that timed out or failed, their latency (median, p95,
max), the status of the heavy uploads and the server's peak resident
memory (``VmHWM``) and its peak above the idle server.

Settings (``--settings``, comma-separated):

- ``bounded``: the page's defaults (bounded decode, 2 upload slots with a
  5 s queue) with ``--max-pixels 40000000`` so the 36 Mpx uploads are
  accepted and processed;
- ``default``: the defaults as shipped (such an upload is refused from its
  header: more than 4096 x 4096 pixels);
- ``unbounded``: the page as it was before bounded decoding: full-size
  decode and encode, no upload slots (``--max-side 100000
  --max-concurrent-uploads 64``).

The model is the demo config's (``configs/demo_tinycnn-bigru_synthetic.py``:
TinyCNN + BiGRU) with random weights, over an index of generated scenes.

Usage::

    python tools/benchmarks/serve_load.py [--settings bounded,unbounded]
"""
import argparse
import concurrent.futures as cf
import io
import json
import os
import os.path as osp
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SETTINGS = {
    'bounded': ['--max-pixels', '40000000'],
    'default': [],
    'unbounded': ['--max-pixels', '40000000', '--max-side', '100000',
                  '--max-concurrent-uploads', '64'],
}
QUERIES = ['a storage tank next to a road', 'many buildings', 'a runway',
           'two white planes', 'green trees near a river']


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--settings', default='bounded,unbounded')
    p.add_argument('--heavy', type=int, default=3)
    p.add_argument('--side', type=int, default=6000)
    p.add_argument('--requests', type=int, default=200)
    p.add_argument('--threads', type=int, default=50)
    p.add_argument('--timeout', type=float, default=10.0)
    p.add_argument(
        '--spread', type=float, default=20.0,
        help='the ordinary requests start evenly over this many seconds '
        '(0: all at once), so they arrive while the uploads are processed')
    p.add_argument('--num-images', type=int, default=64)
    p.add_argument('--work-dir', default=None)
    return p.parse_args()


def _huge_png(side: int) -> bytes:
    from PIL import Image
    img = Image.new('L', (side, side), 128)
    band = Image.linear_gradient('L').resize((side, 64))
    img.paste(band, (0, side // 2))
    buf = io.BytesIO()
    img.convert('RGB').save(buf, 'PNG', compress_level=9)
    return buf.getvalue()


def prepare(work: str, num_images: int):
    """Generated scenes, a random demo checkpoint and an index of them."""
    import torch

    from rsitr_mm.apis import ImageIndex, init_retriever
    from rsitr_mm.datasets.synthetic import generate_synthetic_dataset
    data = osp.join(work, 'data')
    if not osp.isdir(data):
        generate_synthetic_dataset(data, num_images=num_images,
                                   image_size=64, seed=0,
                                   split=(num_images - 8, 4, 4),
                                   progress=False)
    cfg_path = osp.join(work, 'demo.py')
    base = osp.join(REPO, 'configs', 'demo_tinycnn-bigru_synthetic.py')
    ann = osp.join(data, 'dataset_synthetic.json')
    with open(cfg_path, 'w') as f:
        f.write(f"_base_ = [r'{base}']\n"
                f"model = dict(text_encoder=dict(ann_files=[r'{ann}']))\n")
    torch.manual_seed(0)
    model = init_retriever(cfg_path)
    ckpt = osp.join(work, 'random.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    model = init_retriever(cfg_path, ckpt)
    index = osp.join(work, 'index')
    ImageIndex.build(model, osp.join(data, 'images'), index, progress=False,
                     num_workers=0)
    return cfg_path, ckpt, index, len(ImageIndex.load(index))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _status(pid: int, key: str) -> int:
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith(key + ':'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _multipart(field: str, name: str, data: bytes):
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; '
            f'name="{field}"; filename="{name}"\r\nContent-Type: '
            'application/octet-stream\r\n\r\n').encode() + data + \
        f'\r\n--{boundary}--\r\n'.encode()
    return body, f'multipart/form-data; boundary={boundary}'


def _request(url: str, timeout: float, body=None, ctype=None):
    """(status or 'timeout'/'error: ...', seconds)."""
    start = time.perf_counter()
    req = urllib.request.Request(url, data=body)
    if ctype:
        req.add_header('Content-Type', ctype)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            resp.read()
            status = resp.status
    except urllib.error.HTTPError as e:
        status = e.code
    except (socket.timeout, TimeoutError):
        status = 'timeout'
    except urllib.error.URLError as e:
        status = 'timeout' if isinstance(e.reason, (socket.timeout,
                                                    TimeoutError)) \
            else f'error: {e.reason}'
    except OSError as e:
        status = f'error: {e}'
    return status, time.perf_counter() - start


def run_setting(name, args, cfg, ckpt, index, rows, png):
    port = _free_port()
    cmd = [sys.executable, osp.join(REPO, 'tools', 'serve.py'), index,
           '--config', cfg, '--checkpoint', ckpt, '--port', str(port),
           '--max-upload-mb', '10'] + SETTINGS[name]
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True,
                              env=dict(os.environ, HF_HUB_OFFLINE='1'))
    base = f'http://127.0.0.1:{port}'
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            if _request(base + '/api/info', 5)[0] == 200:
                break
            if server.poll() is not None:
                raise RuntimeError(server.stdout.read())
            time.sleep(0.5)
        idle_rss = _status(server.pid, 'VmRSS')
        peak = [idle_rss]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], _status(server.pid, 'VmRSS'))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        urls = []
        for i in range(args.requests):
            kind = i % 4
            if kind in (0, 1):
                q = urllib.parse.quote(QUERIES[i % len(QUERIES)])
                urls.append(f'{base}/api/text?q={q}&k=8')
            elif kind == 2:
                urls.append(f'{base}/thumb/{i % rows}')
            else:
                urls.append(f'{base}/api/info')
        body, ctype = _multipart('image', 'huge.png', png)
        with cf.ThreadPoolExecutor(args.heavy) as heavy_pool, \
                cf.ThreadPoolExecutor(args.threads) as pool:
            heavy = [heavy_pool.submit(_request, base + '/api/image',
                                       args.timeout, body, ctype)
                     for _ in range(args.heavy)]
            time.sleep(0.2)  # the uploads are in flight first
            t0 = time.perf_counter()
            step = args.spread / max(1, len(urls))

            def paced(item):
                i, url = item
                time.sleep(max(0.0, t0 + i * step - time.perf_counter()))
                return _request(url, args.timeout)

            ordinary = list(pool.map(paced, enumerate(urls)))
            heavy = [h.result() for h in heavy]
        time.sleep(1.0)
        stop.set()
        sampler.join()
        hwm = _status(server.pid, 'VmHWM')
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
    ok = [t for s, t in ordinary if s == 200]
    lat = sorted(t for _, t in ordinary)
    return dict(
        setting=name,
        timeouts=sum(s == 'timeout' for s, _ in ordinary),
        failed=sum(s not in (200, 'timeout') for s, _ in ordinary),
        ok=len(ok),
        median_s=statistics.median(lat),
        p95_s=lat[int(0.95 * (len(lat) - 1))],
        max_s=lat[-1],
        heavy=[s for s, _ in heavy],
        heavy_s=[round(t, 1) for _, t in heavy],
        idle_rss_mib=idle_rss / 2**20,
        peak_rss_mib=max(peak[0], hwm) / 2**20,
        peak_above_idle_mib=(max(peak[0], hwm) - idle_rss) / 2**20)


def main():
    args = parse_args()
    work = args.work_dir or tempfile.mkdtemp(prefix='serve_load_')
    os.makedirs(work, exist_ok=True)
    print(f'load average before: {os.getloadavg()}', flush=True)
    cfg, ckpt, index, rows = prepare(work, args.num_images)
    png = _huge_png(args.side)
    print(f'heavy upload: {args.side}x{args.side} PNG, {len(png)} bytes; '
          f'index of {rows} images', flush=True)
    results = []
    for name in args.settings.split(','):
        results.append(run_setting(name, args, cfg, ckpt, index, rows, png))
        print(json.dumps(results[-1]), flush=True)
    print(f'load average after: {os.getloadavg()}')
    print('\n| setting | ordinary requests timed out (of '
          f'{args.requests}) | failed | median / p95 / max s | heavy uploads '
          '(status, s) | server RSS idle / peak MiB |')
    print('|---|---:|---:|---|---|---|')
    for r in results:
        heavy = ', '.join(f'{s} ({t})' for s, t in zip(r['heavy'],
                                                       r['heavy_s']))
        print(f"| {r['setting']} | {r['timeouts']} | {r['failed']} | "
              f"{r['median_s']:.2f} / {r['p95_s']:.2f} / {r['max_s']:.2f} | "
              f"{heavy} | {r['idle_rss_mib']:.0f} / "
              f"{r['peak_rss_mib']:.0f} |")


if __name__ == '__main__':
    main()
