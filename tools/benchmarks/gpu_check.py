# Copyright (c) rsitr_mm contributors. All rights reserved.
"""One-process GPU check of the training step: today's vs the fixed step.

Variants, alternated in one process on the same model weights and
batches (``--reps`` rounds; in each round every variant runs once per
batch size):

* ``today``: captions as strings tokenised in the forward, the tokenizer's
  blocking copies, foreach AdamW, a ``GradScaler`` even in bf16, the loss
  terms read every step (``.item()`` per term, as mmengine's
  ``RuntimeInfoHook``) and a NaN check read;
* ``fixed``: the batch as tensors from the data pipeline (tokens, OSFCM
  targets, ids) copied with ``non_blocking`` from pinned memory, fused
  AdamW, no scaler in bf16, the losses read once per timed block;
* ``compiled``: ``fixed`` with the tensor regions compiled
  (``DualEncoderRetriever.compile_regions``);
* ``cudagraphs``: ``compiled`` with ``mode='reduce-overhead'``.

A timed block is ``--iters`` steps after ``--warmup`` steps; the device is
synchronised only at the edges of a block (and by what a variant itself
does inside it). Reported per run: images/s, ms per step, peak memory,
kernels and host syncs per step (one extra profiled / counted step after
the block: ``torch.profiler`` kernel count on CUDA, the ATen op count on
the CPU; syncs by :class:`~rsitr_mm.utils.host_syncs.HostSyncCounter`),
GPU busy share (kernel time over wall time of that step) and MFU (``--mfu``:
FLOPs of one step by ``torch.utils.flop_counter`` over ``--peak-tflops``).
The JSON (``--out``) is rewritten after every run, so a timeout loses
nothing; runs that would start after ``--budget-s`` seconds are skipped.

Examples::

    # H100, OSDPM ViT-B/32 random weights, bf16, batch 128 and 256
    python tools/benchmarks/gpu_check.py --device cuda --out gpu_check.json
    # CPU proof of the script (tiny towers, a few steps)
    python tools/benchmarks/gpu_check.py --device cpu --tiny \\
        --batch-sizes 4 8 --iters 2 --warmup 1 --reps 1 \\
        --variants today fixed compiled --compile-backend eager
"""
import argparse
import copy
import json
import os.path as osp
import sys
import tempfile
import time

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import rsitr_mm  # noqa: E402,F401
from mmengine.config import Config  # noqa: E402
from mmengine.dataset import default_collate  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmpretrain.registry import MODELS  # noqa: E402

from rsitr_mm.datasets.transforms import (CaptionDataCollate,  # noqa: E402
                                          PrepareCaptionData)
from rsitr_mm.utils.host_syncs import HostSyncCounter  # noqa: E402

VARIANTS = ('today', 'fixed', 'compiled', 'cudagraphs')
DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16, 'fp32': None}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--config',
                   default=osp.join(REPO, 'configs', 'osdpm_rsicd.py'))
    p.add_argument('--device', default='cuda', choices=['cuda', 'cpu'])
    p.add_argument('--tiny', action='store_true',
                   help='tiny random towers (CPU proof); default: the '
                   "config's full-size towers with random weights")
    p.add_argument('--precision', default='bf16', choices=list(DTYPES))
    p.add_argument('--batch-sizes', type=int, nargs='+', default=[128, 256])
    p.add_argument('--image-size', type=int, default=None,
                   help='default 224 (32 with --tiny)')
    p.add_argument('--variants', nargs='+', default=list(VARIANTS),
                   choices=VARIANTS)
    p.add_argument('--iters', type=int, default=20)
    p.add_argument('--warmup', type=int, default=5)
    p.add_argument('--reps', type=int, default=2)
    p.add_argument('--compile-backend', default='inductor')
    p.add_argument('--mfu', action='store_true')
    p.add_argument('--peak-tflops', type=float, default=989.4,
                   help='dense bf16 peak of an H100 SXM by default')
    p.add_argument('--budget-s', type=float, default=420,
                   help='start no run after this many seconds')
    p.add_argument('--out', default='gpu_check.json')
    return p.parse_args(argv)


def host_batches(model, n, batch_size, size, pin):
    """``n`` collated batches (uint8 images, captions of varying length
    and their pipeline tensors), pinned when ``pin``."""
    prepare = PrepareCaptionData(model.caption_data_preparers())
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(batch_size)
    out = []
    for it in range(n):
        items = []
        for i in range(batch_size):
            s = DataSample().set_gt_label(i % 7)
            words = ['many', 'white', 'storage', 'tanks', 'near', 'a',
                     'road', 'and', 'green', 'trees', 'beside', 'buildings']
            s.set_field(' '.join(words[:4 + (i + it) % 9]), 'text')
            s.set_field(i // 5, 'image_id')
            s.set_field(f'{i // 5}.jpg', 'img_path', field_type='metainfo')
            img = torch.randint(0, 256, (3, size, size), generator=g,
                                dtype=torch.uint8)
            items.append(prepare(dict(inputs=img, data_samples=s)))
        batch = CaptionDataCollate(default_collate, prepare)(items)
        if pin:
            batch['inputs'] = batch['inputs'].pin_memory()
            batch['text_data'] = {
                k: v.pin_memory() if k != 'lengths' else v
                for k, v in batch['text_data'].items()
            }
        out.append(batch)
    return out


class Step:
    """One variant's training step on a copy of the model."""

    def __init__(self, variant, model_cfg, state, args):
        self.variant = variant
        self.device = torch.device(args.device)
        cfg = copy.deepcopy(model_cfg)
        self.model = MODELS.build(cfg).to(self.device)
        self.model.load_state_dict(state)
        self.model.train()
        if variant in ('compiled', 'cudagraphs'):
            opts = dict(backend=args.compile_backend)
            if variant == 'cudagraphs':
                opts['mode'] = 'reduce-overhead'
            self.model.compile_regions(opts)
        params = [p for p in self.model.parameters() if p.requires_grad]
        # today: foreach on CUDA (the for-loop on the CPU); fixed: fused
        # (on the CPU too, so that the CPU proof counts the same calls)
        fused = variant != 'today'
        self.opt = torch.optim.AdamW(
            params, lr=1e-5, fused=True if fused else None,
            foreach=None if fused else self.device.type == 'cuda')
        self.dtype = DTYPES[args.precision]
        scale = self.dtype is torch.float16 or (
            variant == 'today' and self.dtype is not None)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=scale)
        self.pending = []

    def __call__(self, batch):
        model = self.model
        if self.variant == 'today':
            # strings to the forward (tokenised there, blocking copies)
            batch = dict(inputs=batch['inputs'],
                         data_samples=batch['data_samples'])
            self.model.data_preprocessor._non_blocking = False
        data = model.data_preprocessor(batch, True)
        with torch.autocast(self.device.type, dtype=self.dtype,
                            enabled=self.dtype is not None):
            losses = model(**data, mode='loss')
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.opt)
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        self.scaler.step(self.opt)
        self.scaler.update()
        if self.variant == 'today':
            # RuntimeInfoHook: one read per term; clipping's float(norm);
            # NaN check
            for v in losses.values():
                v.item()
            float(norm)
            bool(torch.isfinite(loss))
        else:
            self.pending.append(torch.stack(
                [v.detach().float() for v in losses.values()] +
                [norm.float()]))

    def flush(self):
        """The losses of the block, one read (a timed block's edge)."""
        if self.pending:
            values = torch.stack(self.pending).tolist()
            self.pending = []
            return values
        return []


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize()


def measure(step, batches, args):
    """Time one block; then count kernels and syncs of one more step."""
    device = step.device
    for b in batches[:args.warmup]:
        step(b)
    step.flush()
    sync(device)
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for i in range(args.iters):
        step(batches[args.warmup + i % (len(batches) - args.warmup)])
    step.flush()
    sync(device)
    wall = time.perf_counter() - t0
    batch = batches[-1]
    counter = HostSyncCounter(record_sites=False)
    kernels, busy = None, None
    if device.type == 'cuda':
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU,
                                 ProfilerActivity.CUDA]) as prof:
            t1 = time.perf_counter()
            with counter:
                step(batch)
                step.flush()
            sync(device)
            step_wall = time.perf_counter() - t1
        events = [e for e in prof.events()
                  if e.device_type == torch.autograd.DeviceType.CUDA]
        kernels = len(events)
        busy = sum(e.device_time for e in events) / 1e6 / step_wall
    else:
        from op_census import _Census, _CountOps
        census = _Census()
        with counter, _CountOps(census):
            step(batch)
            step.flush()
        kernels = sum(census.counts.values())
    n = batch['inputs'].shape[0]
    return dict(
        images_per_s=n * args.iters / wall,
        ms_per_step=1e3 * wall / args.iters,
        peak_mem_gib=torch.cuda.max_memory_allocated() / 2**30
        if device.type == 'cuda' else None,
        kernels_per_step=kernels,
        syncs_per_step=counter.count,
        gpu_busy=busy)


def step_flops(model_cfg, state, batch, args):
    from torch.utils.flop_counter import FlopCounterMode
    step = Step('fixed', model_cfg, state, args)
    with FlopCounterMode(display=False) as fc:
        step(batch)
    return fc.get_total_flops()


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    size = args.image_size or (32 if args.tiny else 224)
    init_default_scope('mmpretrain')
    from train_throughput import local_towers
    report = dict(device=torch.cuda.get_device_name()
                  if args.device == 'cuda' else 'cpu',
                  torch=torch.__version__, precision=args.precision,
                  config=osp.relpath(args.config, REPO),
                  towers='tiny' if args.tiny else 'full-size random',
                  iters=args.iters, warmup=args.warmup, runs=[])

    def save():
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=1)

    with tempfile.TemporaryDirectory() as tmp:
        cfg = Config.fromfile(args.config)
        model_cfg = local_towers(cfg.model.to_dict(), tmp, tiny=args.tiny)
        torch.manual_seed(0)
        base = MODELS.build(copy.deepcopy(model_cfg))
        state = base.state_dict()
        data = {
            bs: host_batches(base, args.warmup + 4, bs, size,
                             pin=args.device == 'cuda')
            for bs in args.batch_sizes
        }
        if args.mfu:
            report['flops_per_step'] = {
                bs: step_flops(model_cfg, state, data[bs][0], args)
                for bs in args.batch_sizes
            }
        save()
        steps = {}
        for rep in range(args.reps):
            for bs in args.batch_sizes:
                for variant in args.variants:
                    elapsed = time.perf_counter() - start
                    if elapsed > args.budget_s:
                        report.setdefault('skipped', []).append(
                            dict(rep=rep, batch_size=bs, variant=variant))
                        save()
                        continue
                    if variant not in steps:
                        steps[variant] = Step(variant, model_cfg, state,
                                              args)
                    row = dict(rep=rep, batch_size=bs, variant=variant)
                    try:
                        row.update(measure(steps[variant], data[bs], args))
                    except Exception as e:  # a failed variant is a result
                        row['error'] = f'{type(e).__name__}: {e}'[:500]
                    if args.mfu and 'images_per_s' in row:
                        flops = report['flops_per_step'][bs]
                        row['mfu'] = flops * row['images_per_s'] / bs / (
                            args.peak_tflops * 1e12)
                    row['elapsed_s'] = time.perf_counter() - start
                    report['runs'].append(row)
                    save()
                    print(json.dumps(row), flush=True)
    return report


if __name__ == '__main__':
    main()
