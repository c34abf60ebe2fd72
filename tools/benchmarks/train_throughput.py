# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Training images/s and peak memory: our Runner vs a plain PyTorch loop.

Builds the model of ``CONFIG`` and trains it on the same pre-loaded random
batches (uint8 images at ``--image-size``, short captions; the data pipeline
is excluded) with

* ``runner``: mmengine's ``Runner`` as ``tools/train.py`` sets it up (the
  config's optimizer wrapper incl. ``paramwise_cfg`` and ``clip_grad``, its
  LR schedulers and default hooks; ``AmpOptimWrapper`` with the requested
  ``dtype`` for fp16 / bf16);
* ``plain``: a hand-written loop over the same model and initial weights
  (data preprocessor -> loss -> backward -> clip -> AdamW step; AMP via
  ``torch.autocast`` and a ``GradScaler`` for fp16).

Runs alternate in one process (``--reps`` of each, per precision); an
iteration's time is the gap between consecutive iteration ends (the first
``--warmup`` left out), median per run, then median of runs. Peak memory is
the peak allocated GPU memory of each run (CUDA only).

``--tiny`` swaps the towers for tiny random ones (no pretrained weights,
no dataset needed): the CI-size mode that runs on a CPU. Without it the
config's own weights paths must exist.

Examples::

    # CPU, CI size
    python tools/benchmarks/train_throughput.py \\
        configs/clip_vit-b32_finetune_rsicd.py --tiny --iters 6 --reps 2
    # GPU, real towers, fp32 and both AMP precisions
    python tools/benchmarks/train_throughput.py \\
        configs/clip_vit-b32_finetune_rsicd.py --device cuda \\
        --precisions fp32 fp16 bf16 --batch-size 128 --image-size 224
"""
import argparse
import copy
import os.path as osp
import statistics
import sys
import tempfile
import time

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

import rsitr_mm  # noqa: E402,F401
from mmengine.config import Config  # noqa: E402
from mmengine.hooks import Hook  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.runner import Runner  # noqa: E402
from mmpretrain.registry import MODELS  # noqa: E402
from mmpretrain.structures import DataSample  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

DTYPES = {'fp16': torch.float16, 'bf16': torch.bfloat16}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    p.add_argument('--precisions', nargs='+', default=['fp32'],
                   choices=['fp32', 'fp16', 'bf16'])
    p.add_argument('--tiny', action='store_true',
                   help='tiny random towers (CI size, runs on CPU)')
    p.add_argument('--batch-size', type=int, default=8)
    p.add_argument('--image-size', type=int, default=None,
                   help='default: 32 with --tiny, else 224')
    p.add_argument('--iters', type=int, default=10, help='per run')
    p.add_argument('--reps', type=int, default=3)
    p.add_argument('--warmup', type=int, default=2)
    return p.parse_args(argv)


def tiny_towers(model_cfg: dict, tmp: str) -> dict:
    """Swap pretrained / data-dependent parts for tiny random ones."""
    from rsitr_mm.datasets.synthetic import generate_synthetic_dataset
    from rsitr_mm.models.utils import make_tiny_clip_dir
    ann = generate_synthetic_dataset(
        osp.join(tmp, 'synth'), num_images=12, image_size=32, seed=0,
        split=(8, 2, 2), progress=False)
    clip_dir = None
    for key in ('image_encoder', 'text_encoder'):
        enc = model_cfg.get(key) or {}
        if enc.get('type') in ('CLIPVisionBackbone', 'CLIPTextEncoder'):
            clip_dir = clip_dir or make_tiny_clip_dir(osp.join(tmp, 'clip'))
            enc['pretrained'] = clip_dir
            model_cfg['embed_dim'] = 32
        if enc.get('type') == 'BiGRUTextEncoder':
            enc['ann_files'] = [ann]
            enc['vocab_cache'] = None
            enc['word_dim'] = 16
        if enc.get('type') == 'ResNet':
            enc['init_cfg'] = None
    if model_cfg['image_encoder'].get('type') == 'CLIPVisionBackbone':
        enc = model_cfg['image_encoder']
        enc['out_indices'] = tuple(
            min(i, 1) if i >= 0 else i for i in enc.get('out_indices', ()))
        neck = model_cfg.get('image_neck')
        if neck:
            if isinstance(neck.get('in_channels'), (list, tuple)):
                neck['in_channels'] = [32] * len(neck['in_channels'])
            else:
                neck['in_channels'] = 32
            if 'embed_dim' in neck:
                neck['embed_dim'] = 32
        for head in model_cfg.get('heads', None) or []:
            for k in ('in_channels', 'embed_dim'):
                if k in head:
                    head[k] = 32
            if 'semantic_dim' in head:
                head['semantic_dim'] = 8
    for head in model_cfg.get('heads', None) or []:
        for k in ('ann_file', 'priors_file', 'cache_file'):
            if k in head and head[k] is not None:
                head[k] = ann if k == 'ann_file' else None
    return model_cfg


def make_batches(n: int, batch_size: int, size: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    batches = []
    for it in range(n):
        samples = []
        for i in range(batch_size):
            s = DataSample().set_gt_label(i % 2)
            s.set_field(f'a caption number {i} with {it % 5} storage tanks',
                        'text')
            s.set_field(it * batch_size + i // 2, 'image_id')
            samples.append(s)
        imgs = torch.randint(0, 256, (batch_size, 3, size, size),
                             generator=g, dtype=torch.uint8)
        batches.append(dict(inputs=imgs, data_samples=samples))
    return batches


class _Batches(torch.utils.data.Dataset):

    def __init__(self, batches):
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, idx):
        return self.batches[idx]


def _first(items):
    return items[0]


class _Stamp(Hook):
    priority = 'LOWEST'

    def __init__(self, sync):
        self.sync, self.stamps = sync, []

    def before_train_epoch(self, runner):
        self._stamp()

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self._stamp()

    def _stamp(self):
        if self.sync:
            torch.cuda.synchronize()
        self.stamps.append(time.perf_counter())


def run_runner(cfg, model_cfg, state, batches, precision, args, work_dir):
    model = MODELS.build(copy.deepcopy(model_cfg))
    model.load_state_dict(state)
    stamp = _Stamp(args.device == 'cuda')
    optim = copy.deepcopy(cfg.optim_wrapper)
    if precision != 'fp32':
        optim.type = 'AmpOptimWrapper'
        optim.dtype = 'float16' if precision == 'fp16' else 'bfloat16'
        if precision == 'fp16':
            optim.loss_scale = 'dynamic'
    runner = Runner(
        model=model, work_dir=work_dir,
        train_dataloader=DataLoader(_Batches(batches), batch_size=1,
                                    collate_fn=_first),
        optim_wrapper=optim,
        param_scheduler=copy.deepcopy(cfg.get('param_scheduler')),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        default_hooks=dict(copy.deepcopy(cfg.default_hooks),
                           checkpoint=None),
        custom_hooks=[stamp], default_scope='mmpretrain',
        randomness=dict(seed=0), log_level='WARNING', cfg=dict())
    runner.train()
    return stamp.stamps


def run_plain(cfg, model_cfg, state, batches, precision, args):
    device = torch.device(args.device)
    model = MODELS.build(copy.deepcopy(model_cfg)).to(device)
    model.load_state_dict(state)
    model.train()
    o = cfg.optim_wrapper.optimizer
    opt = torch.optim.AdamW(model.parameters(), lr=o.lr,
                            weight_decay=o.get('weight_decay', 0.01))
    amp = precision != 'fp32'
    scaler = torch.amp.GradScaler(device.type, enabled=precision == 'fp16')
    clip = (cfg.optim_wrapper.get('clip_grad') or {}).get('max_norm')
    sync = args.device == 'cuda'
    stamps = [time.perf_counter()]
    for batch in batches:
        data = model.data_preprocessor(batch, True)
        with torch.autocast(device.type, dtype=DTYPES.get(precision),
                            enabled=amp):
            losses = model(**data, mode='loss')
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        scaler.step(opt)
        scaler.update()
        if sync:
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())
    return stamps


def per_iter(stamps, warmup):
    gaps = [b - a for a, b in zip(stamps[:-1], stamps[1:])][warmup:]
    return statistics.median(gaps)


def main(argv=None):
    args = parse_args(argv)
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: no CUDA device available')
    if args.device == 'cpu' and torch.cuda.is_available():
        raise SystemExit('the Runner picks the GPU when one is visible: '
                         'use --device cuda, or hide it with '
                         'CUDA_VISIBLE_DEVICES=')
    if args.device == 'cpu' and set(args.precisions) - {'fp32'}:
        raise SystemExit('AMP precisions need --device cuda (mmengine\'s '
                         'AmpOptimWrapper does not run on the CPU)')
    if args.iters <= args.warmup:
        raise SystemExit('--iters must be larger than --warmup')
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(args.config)
    size = args.image_size or (32 if args.tiny else 224)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model_cfg = cfg.model.to_dict()
        if args.tiny:
            model_cfg = tiny_towers(model_cfg, tmp)
        model = MODELS.build(copy.deepcopy(model_cfg))
        model.init_weights()
        state = copy.deepcopy(model.state_dict())
        del model
        batches = make_batches(args.iters, args.batch_size, size)
        for precision in args.precisions:
            times = {'runner': [], 'plain': []}
            peaks = {'runner': [], 'plain': []}
            for rep in range(args.reps):
                for path in ('runner', 'plain'):
                    if args.device == 'cuda':
                        torch.cuda.empty_cache()
                        torch.cuda.reset_peak_memory_stats()
                    if path == 'runner':
                        stamps = run_runner(cfg, model_cfg, state, batches,
                                            precision, args,
                                            osp.join(tmp, f'w{rep}'))
                    else:
                        stamps = run_plain(cfg, model_cfg, state, batches,
                                           precision, args)
                    times[path].append(per_iter(stamps, args.warmup))
                    if args.device == 'cuda':
                        peaks[path].append(
                            torch.cuda.max_memory_allocated() / 2**20)
            rows.append((precision, times, peaks))
    dev = torch.cuda.get_device_name() if args.device == 'cuda' else \
        f'CPU, {torch.get_num_threads()} threads'
    tiny = ' (tiny towers)' if args.tiny else ''
    print(f'\n{osp.basename(args.config)}{tiny}, batch {args.batch_size}, '
          f'{size} px, {dev}; median of '
          f'{args.reps} alternated runs x {args.iters - args.warmup} '
          'iterations\n')
    print('| precision | plain images/s | runner images/s | runner '
          'overhead | plain peak MiB | runner peak MiB |')
    print('|---|---:|---:|---:|---:|---:|')
    for precision, times, peaks in rows:
        p = statistics.median(times['plain'])
        r = statistics.median(times['runner'])
        mem = [f'{max(peaks[k]):.0f}' if peaks[k] else 'n/a (CPU)'
               for k in ('plain', 'runner')]
        print(f'| {precision} | {args.batch_size / p:.1f} | '
              f'{args.batch_size / r:.1f} | {100 * (r / p - 1):+.1f}% | '
              f'{mem[0]} | {mem[1]} |')


if __name__ == '__main__':
    main()
