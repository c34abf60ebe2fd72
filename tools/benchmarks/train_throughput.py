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
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import rsitr_mm  # noqa: E402,F401
from runner_timing import (PreparedBatches, StampHook,  # noqa: E402
                           check_device, first_item)
from mmengine.config import Config  # noqa: E402
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
    from rsitr_mm.models.utils import localise_tiny, make_tiny_clip_dir
    ann = generate_synthetic_dataset(
        osp.join(tmp, 'synth'), num_images=12, image_size=32, seed=0,
        split=(8, 2, 2), progress=False)
    return localise_tiny(model_cfg, make_tiny_clip_dir(osp.join(tmp, 'clip')),
                         ann)


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


def run_runner(cfg, model_cfg, state, batches, precision, args, work_dir):
    model = MODELS.build(copy.deepcopy(model_cfg))
    model.load_state_dict(state)
    stamp = StampHook(args.device == 'cuda')
    optim = copy.deepcopy(cfg.optim_wrapper)
    if precision != 'fp32':
        optim.type = 'AmpOptimWrapper'
        optim.dtype = 'float16' if precision == 'fp16' else 'bfloat16'
        if precision == 'fp16':
            optim.loss_scale = 'dynamic'
    runner = Runner(
        model=model, work_dir=work_dir,
        train_dataloader=DataLoader(PreparedBatches(batches), batch_size=1,
                                    collate_fn=first_item),
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
    check_device(args.device)
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
