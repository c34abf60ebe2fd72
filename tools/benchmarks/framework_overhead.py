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

The runs alternate (Runner, plain, Runner, plain, ...) in one process. By
default the figure of a run is its **CPU time** per iteration
(``time.process_time`` between consecutive iteration ends, averaged over
the timed iterations, so the periodic logging is included) with torch on
**one thread**: CPU time is what the framework costs and, unlike wall
time, is not inflated when other jobs take the cores (``--clock wall``
times wall-clock instead; ``--threads`` sets torch's threads). Each pair of
consecutive runs gives one overhead (Runner / plain - 1); the median over
the pairs is the result, printed with the spread (min, quartiles, max).
The goal is reported as holding only when the median **and the upper
quartile** of the per-pair overheads are <= 3%; a median <= 3% with a
wider spread is reported as not verified.

Example::

    python tools/benchmarks/framework_overhead.py --reps 9 --iters 23
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
    p.add_argument('--threads', type=int, default=1,
                   help='torch intra-op threads (CPU)')
    p.add_argument('--clock', default='cpu', choices=['cpu', 'wall'],
                   help='process CPU time (default) or wall-clock time')
    p.add_argument('--profile', action='store_true',
                   help='print a cProfile summary of one Runner run and '
                   'one plain run')
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
    return stamp.stamps, stamp.cpu_stamps


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
    stamps, cpu_stamps = [time.perf_counter()], [time.process_time()]
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
        cpu_stamps.append(time.process_time())
    return stamps, cpu_stamps


def per_iter(stamps, warmup, clock):
    """Mean time per timed iteration of one run (logging included)."""
    times = stamps[1] if clock == 'cpu' else stamps[0]
    gaps = [b - a for a, b in zip(times[:-1], times[1:])][warmup:]
    return sum(gaps) / len(gaps)


def quartiles(values):
    """(min, lower quartile, median, upper quartile, max)."""
    v = sorted(values)
    if len(v) < 2:
        return (v[0], ) * 5
    q1, q2, q3 = statistics.quantiles(v, n=4, method='inclusive')
    return v[0], q1, q2, q3, v[-1]


def verdict(overheads, goal=3.0):
    """The goal's verdict from per-pair overheads in percent."""
    _, _, med, q3, _ = quartiles(overheads)
    if med > goal:
        return 'NOT MET'
    if q3 > goal:
        return 'NOT VERIFIED (median <= 3%, upper quartile above)'
    return 'HOLDS'


def main(argv=None):
    args = parse_args(argv)
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: no CUDA device available')
    if args.device == 'cpu' and torch.cuda.is_available():
        raise SystemExit('the Runner picks the GPU when one is visible: '
                         'use --device cuda, or hide it with '
                         'CUDA_VISIBLE_DEVICES=')
    if args.device == 'cuda' and args.clock == 'cpu':
        args.clock = 'wall'  # GPU work is not CPU time of this process
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        cfg, batches, state = build_setup(args, tmp)
        if args.profile:
            import cProfile
            import pstats
            for name, fn in (('Runner', lambda: run_runner(
                    cfg, batches, state, args, osp.join(tmp, 'prof'))),
                             ('plain', lambda: run_plain(
                                 cfg, batches, state, args))):
                prof = cProfile.Profile()
                prof.enable()
                fn()
                prof.disable()
                print(f'\n== cProfile, one {name} run ==')
                pstats.Stats(prof).sort_stats('tottime').print_stats(30)
        runner_t, plain_t = [], []
        for rep in range(args.reps):
            runner_t.append(
                per_iter(run_runner(cfg, batches, state, args,
                                    osp.join(tmp, f'w{rep}')), args.warmup,
                         args.clock))
            plain_t.append(
                per_iter(run_plain(cfg, batches, state, args), args.warmup,
                         args.clock))
    r, p = statistics.median(runner_t), statistics.median(plain_t)
    dev = torch.cuda.get_device_name() if args.device == 'cuda' else \
        f'CPU, {torch.get_num_threads()} thread(s)'
    clock = 'CPU time' if args.clock == 'cpu' else 'wall time'
    print(f'\nDemo model (TinyCNN + BiGRU), batch {args.batch_size}, '
          f'{args.image_size} px, {dev}, amp={args.amp}; {clock} per '
          f'iteration, mean of {args.iters - args.warmup} iterations per '
          f'run, {args.reps} alternated runs of each\n')
    overheads = [100 * (a / b - 1) for a, b in zip(runner_t, plain_t)]
    lo, q1, med, q3, hi = quartiles(overheads)
    print('| plain loop (s/iter, median) | Runner (s/iter, median) | '
          'overhead (median of pairs) | spread: min / quartiles / max |')
    print('|---:|---:|---:|---|')
    print(f'| {p:.4f} | {r:.4f} | **{med:+.2f}%** | {lo:+.2f}% / '
          f'{q1:+.2f}% .. {q3:+.2f}% / {hi:+.2f}% |')
    print('\nper-run (s/iter): runner ' +
          ', '.join(f'{t:.4f}' for t in runner_t) + '; plain ' +
          ', '.join(f'{t:.4f}' for t in plain_t))
    print('per-pair overheads: ' +
          ', '.join(f'{o:+.2f}%' for o in overheads))
    print(f'\ngoal (framework overhead <= 3% per iteration, {clock}): '
          f'{verdict(overheads)}')


if __name__ == '__main__':
    main()
