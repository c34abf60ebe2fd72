# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Wall time and peak memory of an RSICD-size retrieval evaluation.

Two measurements, each in a fresh subprocess so that peak memory is its own:

* ``pass``: the exact evaluation path of ``RSRetrievalTestLoop``
  (:func:`rsitr_mm.engine.runners.retrieval_loop.encode_loader` -> the
  model's ``compute_similarity`` -> ``RSRetrievalMetric``) for the demo model
  (TinyCNN + BiGRU, demo widths) on 1,093 images x 5 captions. The images
  are **random tensors** (64 px, fed as already-loaded uint8 batches, so
  image decoding is excluded); the captions are real synthetic-scene
  captions so the BiGRU sees realistic lengths.
* ``recall``: :func:`rsitr_mm.evaluation.retrieval_recall` alone on a random
  1,093 x 5,465 similarity matrix.

The pass also reports the share of its time spent outside the model: the
model's data preprocessor and forward calls are timed (synchronised on
CUDA) and subtracted from the pass's wall time; the rest is the loop,
feature gathering, the similarity matrix and the metric (goal <= 5%).

Peak memory is the growth of the process's peak resident set size during
the measurement (``ru_maxrss``), on top of the model and inputs already
built. On CUDA, the peak allocated GPU memory is reported too.

Example::

    python tools/benchmarks/evaluation.py --reps 3
"""
import argparse
import json
import os.path as osp
import resource
import statistics
import subprocess
import sys
import tempfile
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

NUM_IMAGES, CPI = 1093, 5


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--reps', type=int, default=3)
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--image-size', type=int, default=64)
    p.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    p.add_argument('--part', choices=['pass', 'recall'], default=None,
                   help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.


class _Split:
    img_size, text_size = NUM_IMAGES, NUM_IMAGES * CPI


def _batches(args, captions):
    import torch
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(0)
    out = []
    for start in range(0, NUM_IMAGES, args.batch_size):
        ids = range(start, min(start + args.batch_size, NUM_IMAGES))
        samples = []
        for k in ids:
            s = DataSample()
            s.set_field([captions[(k * CPI + j) % len(captions)]
                         for j in range(CPI)], 'text', field_type='metainfo')
            s.set_field(k, 'image_id', field_type='metainfo')
            s.set_field(list(range(k * CPI, k * CPI + CPI)), 'gt_text_id',
                        field_type='metainfo')
            samples.append(s)
        imgs = torch.randint(0, 256, (len(samples), 3, args.image_size,
                                      args.image_size), generator=g,
                             dtype=torch.uint8)
        out.append(dict(inputs=imgs, data_samples=samples))
    return out


def measure_pass(args):
    import torch
    import rsitr_mm  # noqa: F401
    from mmengine.config import Config
    from mmpretrain.registry import METRICS, MODELS

    from rsitr_mm.datasets.synthetic import generate_synthetic_dataset
    from rsitr_mm.engine.runners.retrieval_loop import encode_loader

    with tempfile.TemporaryDirectory() as tmp:
        ann = generate_synthetic_dataset(
            tmp, 200, 32, seed=0, split=(200, 0, 0), progress=False)
        captions = [s['raw'] for im in json.load(open(ann))['images']
                    for s in im['sentences']]
        cfg = Config.fromfile(
            osp.join(REPO, 'configs', 'demo_tinycnn-bigru_synthetic.py'))
        cfg.model.text_encoder.ann_files = [ann]
        model = MODELS.build(cfg.model).to(args.device).eval()

    class Loader(list):
        dataset = _Split()

    loader = Loader(_batches(args, captions))
    # time spent inside the model (data preprocessor + forward), so that
    # the rest of the pass (loop, gather, matrix, metric) is the difference
    inside = [0.0]
    sync = torch.cuda.synchronize if args.device == 'cuda' else (
        lambda: None)

    def timed(fn):
        def wrapper(*a, **kw):
            sync()
            t0 = time.perf_counter()
            out = fn(*a, **kw)
            sync()
            inside[0] += time.perf_counter() - t0
            return out
        return wrapper

    model._run_forward = timed(model._run_forward)
    model.data_preprocessor.forward = timed(model.data_preprocessor.forward)
    times, outside = [], []
    base = _peak_mb()
    for _ in range(args.reps):
        if args.device == 'cuda':
            torch.cuda.reset_peak_memory_stats()
        inside[0] = 0.0
        sync()
        start = time.perf_counter()
        img, txt = encode_loader(model, loader)
        with torch.no_grad():
            sim = model.compute_similarity(img, txt)
        metric = METRICS.build(dict(type='RSRetrievalMetric'))
        metric.dataset_meta = {}
        metric.process([], [dict(similarity=sim.float().cpu())])
        result = metric.evaluate(1)
        sync()
        total = time.perf_counter() - start
        times.append(total)
        outside.append((total - inside[0]) / total)
    assert len(result) >= 8, result
    out = dict(time=statistics.median(times), peak_mb=_peak_mb() - base,
               outside=statistics.median(outside))
    if args.device == 'cuda':
        out['gpu_peak_mb'] = torch.cuda.max_memory_allocated() / 2**20
    return out


def measure_recall(args):
    import torch

    from rsitr_mm.evaluation import retrieval_recall
    sim = torch.randn(NUM_IMAGES, NUM_IMAGES * CPI,
                      generator=torch.Generator().manual_seed(0))
    base = _peak_mb()
    times = []
    for _ in range(args.reps):
        start = time.perf_counter()
        retrieval_recall(sim, captions_per_image=CPI)
        times.append(time.perf_counter() - start)
    return dict(time=statistics.median(times), peak_mb=_peak_mb() - base)


def main(argv=None):
    args = parse_args(argv)
    if args.part is not None:
        fn = measure_pass if args.part == 'pass' else measure_recall
        print('RESULT ' + json.dumps(fn(args)))
        return
    results = {}
    for part in ('pass', 'recall'):
        cmd = [sys.executable, osp.abspath(__file__), '--part', part,
               '--reps', str(args.reps), '--batch-size', str(args.batch_size),
               '--image-size', str(args.image_size), '--device', args.device]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        line = [ln for ln in out.stdout.splitlines()
                if ln.startswith('RESULT ')][-1]
        results[part] = json.loads(line[len('RESULT '):])
    print(f'\n{NUM_IMAGES} images x {CPI} captions, device {args.device}, '
          f'median of {args.reps}; peak = growth of peak RSS\n')
    print('| what | wall time (s) | peak memory (MiB) |')
    print('|---|---:|---:|')
    p, r = results['pass'], results['recall']
    gpu = f" (GPU {p['gpu_peak_mb']:.0f})" if 'gpu_peak_mb' in p else ''
    print(f"| full test pass, demo model, random 64 px images, batch "
          f"{args.batch_size} | {p['time']:.2f} | {p['peak_mb']:.0f}{gpu} |")
    print(f"| retrieval_recall alone, random {NUM_IMAGES} x "
          f"{NUM_IMAGES * CPI} | {r['time']:.3f} | {r['peak_mb']:.0f} |")
    share = 100 * p['outside']
    print(f"\nfull pass: {share:.2f}% of the time outside the model "
          "(loop, gather, similarity matrix, metric; median of the reps); "
          f"goal <= 5%: {'HOLDS' if share <= 5 else 'NOT MET'}")


if __name__ == '__main__':
    main()
