# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Seconds per training iteration: our Runner path vs a plain PyTorch loop.

Both train the same ``DualEncoderRetriever`` (built from the demo config,
same initial weights) on the same pre-loaded batches held in memory, so the
data pipeline is excluded and only what the framework adds per iteration is
measured (the config's train loop and custom hooks, default hooks,
logging, message hub, parameter scheduler, optimizer wrapper with gradient
clipping, data preprocessor call path). The plain loop
does the same maths: data preprocessor -> ``loss`` -> sum -> backward ->
``clip_grad_norm_(2.0)`` -> AdamW step, plus the same LR scheduler step.

The runs alternate (Runner, plain, Runner, plain, ...) in one process; the
time of an iteration is the gap between consecutive iteration ends, and the
reported figure is the median over the repetitions of each run's median.

Example::

    python tools/benchmarks/framework_overhead.py --reps 5 --iters 30
    python tools/benchmarks/framework_overhead.py --device cuda --amp
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
                           first_item)
from mmengine.config import Config  # noqa: E402
from mmengine.runner import Runner  # noqa: E402
from mmpretrain.registry import DATASETS, MODELS  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from rsitr_mm.datasets.synthetic import generate_synthetic_dataset  # noqa

DEMO = osp.join(REPO, 'configs', 'demo_tinycnn-bigru_synthetic.py')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    p.add_argument('--amp', action='store_true', help='mixed precision')
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--image-size', type=int, default=64)
    p.add_argument('--iters', type=int, default=30, help='per run')
    p.add_argument('--reps', type=int, default=5, help='runs of each kind')
    p.add_argument('--warmup', type=int, default=3,
                   help='iterations of each run left out of the median')
    p.add_argument('--profile', action='store_true',
                   help='print a cProfile summary of one Runner run')
    return p.parse_args(argv)


def build_setup(args, tmp):
    """Config, pre-loaded batches and the initial weights."""
    data_root = osp.join(tmp, 'data')
    n_img = max(2, (args.iters * args.batch_size) // 5 + 1)
    generate_synthetic_dataset(
        data_root, n_img + 2, args.image_size, seed=0,
        split=(n_img, 1, 1), progress=False)
    cfg = Config.fromfile(DEMO)
    ann = osp.join(data_root, 'dataset_synthetic.json')
    cfg.model.text_encoder.ann_files = [ann]
    ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    ds_cfg.data_root = data_root
    dataset = DATASETS.build(ds_cfg)
    from mmengine.dataset import default_collate
    bs = args.batch_size
    batches = [
        default_collate([dataset[i] for i in range(k * bs, (k + 1) * bs)])
        for k in range(args.iters)
    ]
    model = MODELS.build(cfg.model)
    model.init_weights()
    return cfg, batches, copy.deepcopy(model.state_dict())


def run_runner(cfg, batches, state, args, work_dir):
    model = MODELS.build(cfg.model)
    model.load_state_dict(state)
    stamp = StampHook(args.device == 'cuda')
    loader = DataLoader(PreparedBatches(batches), batch_size=1,
                        collate_fn=first_item)
    optim = copy.deepcopy(cfg.optim_wrapper)
    if args.amp:
        optim.type = 'AmpOptimWrapper'
        optim.loss_scale = 'dynamic'
    runner = Runner(
        model=model,
        work_dir=work_dir,
        train_dataloader=loader,
        optim_wrapper=optim,
        param_scheduler=copy.deepcopy(cfg.param_scheduler),
        # what tools/train.py runs: the config's train loop type and its
        # custom hooks (NaNGuardHook, SyncBuffersHook), plus the stamp
        train_cfg=dict(
            type=cfg.train_cfg.get('type', 'EpochBasedTrainLoop'),
            max_epochs=1),
        default_hooks=dict(copy.deepcopy(cfg.default_hooks),
                           checkpoint=None),
        custom_hooks=copy.deepcopy(list(cfg.get('custom_hooks', []))) +
        [stamp],
        default_scope='mmpretrain',
        randomness=dict(seed=0),
        log_level='WARNING',
        cfg=dict(),
    )
    runner.train()
    return stamp.stamps


def run_plain(cfg, batches, state, args):
    device = torch.device(args.device)
    model = MODELS.build(cfg.model).to(device)
    model.load_state_dict(state)
    model.train()
    o = cfg.optim_wrapper.optimizer
    opt = torch.optim.AdamW(model.parameters(), lr=o.lr,
                            weight_decay=o.weight_decay)
    sched = torch.optim.lr_scheduler.LinearLR(
        opt, start_factor=0.1, total_iters=len(batches))
    scaler = torch.amp.GradScaler(device.type, enabled=args.amp)
    max_norm = cfg.optim_wrapper.clip_grad.max_norm
    sync = args.device == 'cuda'
    stamps = [time.perf_counter()]
    for batch in batches:
        data = model.data_preprocessor(batch, True)
        with torch.autocast(device.type, enabled=args.amp):
            losses = model(**data, mode='loss')
        loss = sum(losses.values())
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        scaler.step(opt)
        scaler.update()
        sched.step()
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
    with tempfile.TemporaryDirectory() as tmp:
        cfg, batches, state = build_setup(args, tmp)
        if args.profile:
            import cProfile
            import pstats
            prof = cProfile.Profile()
            prof.enable()
            run_runner(cfg, batches, state, args, osp.join(tmp, 'prof'))
            prof.disable()
            pstats.Stats(prof).sort_stats('tottime').print_stats(25)
        runner_t, plain_t = [], []
        for rep in range(args.reps):
            runner_t.append(
                per_iter(run_runner(cfg, batches, state, args,
                                    osp.join(tmp, f'w{rep}')), args.warmup))
            plain_t.append(
                per_iter(run_plain(cfg, batches, state, args), args.warmup))
    r, p = statistics.median(runner_t), statistics.median(plain_t)
    dev = torch.cuda.get_device_name() if args.device == 'cuda' else \
        f'CPU, {torch.get_num_threads()} threads'
    print(f'\nDemo model (TinyCNN + BiGRU), batch {args.batch_size}, '
          f'{args.image_size} px, {dev}, amp={args.amp}; median of '
          f'{args.reps} alternated runs x {args.iters - args.warmup} '
          'iterations\n')
    print('| path | s / iter | overhead |')
    print('|---|---:|---:|')
    print(f'| plain PyTorch loop | {p:.4f} | - |')
    print(f'| rsitr_mm Runner | {r:.4f} | {100 * (r / p - 1):+.1f}% |')
    ratios = sorted(a / b for a, b in zip(runner_t, plain_t))
    over = 100 * (r / p - 1)
    print(f'\nper-pair overhead (runner / plain of the same repetition): '
          f'min {100 * (ratios[0] - 1):+.1f}%, median '
          f'{100 * (statistics.median(ratios) - 1):+.1f}%, max '
          f'{100 * (ratios[-1] - 1):+.1f}%')
    print(f'goal <= 3% (medians): {"HOLDS" if over <= 3 else "NOT MET"}')
    print('\nper-run medians (s): runner ' +
          ', '.join(f'{t:.4f}' for t in runner_t) + '; plain ' +
          ', '.join(f'{t:.4f}' for t in plain_t))


if __name__ == '__main__':
    main()
