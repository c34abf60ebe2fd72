# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Time per training iteration: our Runner path vs a plain PyTorch loop.

Both train the same ``DualEncoderRetriever`` (built from the demo config,
same initial weights) on the same pre-loaded batches held in memory, so the
data pipeline is excluded and only what the framework adds per iteration is
measured (the config's train loop and custom hooks, default hooks incl. the
checkpoint hook, logging, message hub, parameter schedulers, optimizer
wrapper with gradient clipping, data preprocessor call path). The plain
loop does the same maths: data preprocessor -> ``loss`` -> sum -> backward
-> ``clip_grad_norm_(2.0)`` -> AdamW step, plus the same LR scheduler step.

Default (``--mode paired``): the two alternate **iteration by iteration**
in one process. A hook of the lowest priority ends every Runner iteration
by running one iteration of the plain loop on its own copy of the model;
the Runner iteration is timed from the end of the previous plain iteration
to the end of its own hooks, the plain one from there to its end. Slow
drifts of the machine (other jobs, frequency) then hit both sides of every
pair alike. Time is the **CPU time of the process** (``time.process_time``)
with torch on **one thread** by default: what the framework costs, not
inflated when other jobs take the cores (``--clock wall`` for wall time,
``--threads`` for torch's threads). The overhead is sum(Runner) /
sum(plain) - 1 over the timed iterations (whole logging periods, so the
periodic logging is included), with a 95% bootstrap interval over blocks of
one logging period and the spread of the per-block overheads. The goal is
reported as holding when the upper end of the interval is <= 3%, as not
met when the lower end is above 3%, otherwise as not verified.

``--mode runs``: whole runs alternate (Runner, plain, Runner, ...), the
older method; the median of per-pair overheads is reported.

Example::

    python tools/benchmarks/framework_overhead.py --reps 4 --iters 53
    python tools/benchmarks/framework_overhead.py --device cuda --amp
"""
import argparse
import copy
import os.path as osp
import random
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
from mmengine.hooks import Hook  # noqa: E402
from mmengine.runner import Runner  # noqa: E402
from mmpretrain.registry import DATASETS, MODELS  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from rsitr_mm.datasets.synthetic import generate_synthetic_dataset  # noqa

DEMO = osp.join(REPO, 'configs', 'demo_tinycnn-bigru_synthetic.py')
GOAL = 3.0


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    p.add_argument('--amp', action='store_true', help='mixed precision')
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--image-size', type=int, default=64)
    p.add_argument('--iters', type=int, default=53, help='per run')
    p.add_argument('--reps', type=int, default=4, help='runs of each kind')
    p.add_argument('--warmup', type=int, default=3,
                   help='iterations of each run left out')
    p.add_argument('--mode', default='paired', choices=['paired', 'runs'],
                   help='alternate iteration by iteration (default) or '
                   'whole runs')
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


class PlainLoop:
    """The plain PyTorch training loop, one iteration per call."""

    def __init__(self, cfg, state, args, n_iters):
        self.device = torch.device(args.device)
        self.model = MODELS.build(cfg.model).to(self.device)
        self.model.load_state_dict(state)
        self.model.train()
        o = cfg.optim_wrapper.optimizer
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=o.lr,
                                     weight_decay=o.weight_decay)
        self.sched = torch.optim.lr_scheduler.LinearLR(
            self.opt, start_factor=0.1, total_iters=n_iters)
        self.scaler = torch.amp.GradScaler(self.device.type,
                                           enabled=args.amp)
        self.amp = args.amp
        self.max_norm = cfg.optim_wrapper.clip_grad.max_norm

    def __call__(self, batch):
        model = self.model
        data = model.data_preprocessor(batch, True)
        with torch.autocast(self.device.type, enabled=self.amp):
            losses = model(**data, mode='loss')
        loss = sum(losses.values())
        self.opt.zero_grad()
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), self.max_norm)
        self.scaler.step(self.opt)
        self.scaler.update()
        self.sched.step()


def _now(sync):
    if sync:
        torch.cuda.synchronize()
    return time.perf_counter(), time.process_time()


class PairedHook(Hook):
    """Ends every Runner iteration with one plain-loop iteration and
    records the (wall, CPU) time of both (see the module docstring)."""
    priority = 'LOWEST'

    def __init__(self, plain, sync):
        self.plain, self.sync = plain, sync
        self.runner_times, self.plain_times = [], []

    def before_train_epoch(self, runner):
        self._last = _now(self.sync)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        t1 = _now(self.sync)
        self.plain(data_batch)
        t2 = _now(self.sync)
        self.runner_times.append((t1[0] - self._last[0],
                                  t1[1] - self._last[1]))
        self.plain_times.append((t2[0] - t1[0], t2[1] - t1[1]))
        self._last = t2


def run_runner(cfg, batches, state, args, work_dir, extra_hook):
    model = MODELS.build(cfg.model)
    model.load_state_dict(state)
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
        # custom hooks (NaNGuardHook, SyncBuffersHook), plus ours
        train_cfg=dict(
            type=cfg.train_cfg.get('type', 'EpochBasedTrainLoop'),
            max_epochs=1),
        # the config's hooks; the checkpoint hook without save_best (no
        # validation here); it writes after the epoch, outside the timing
        default_hooks=dict(
            copy.deepcopy(cfg.default_hooks),
            checkpoint=dict(copy.deepcopy(cfg.default_hooks.checkpoint),
                            save_best=None, max_keep_ckpts=1)),
        custom_hooks=copy.deepcopy(list(cfg.get('custom_hooks', []))) +
        [extra_hook],
        default_scope='mmpretrain',
        randomness=dict(seed=0),
        log_level='WARNING',
        cfg=dict(),
    )
    runner.train()


def run_plain(cfg, batches, state, args):
    loop = PlainLoop(cfg, state, args, len(batches))
    sync = args.device == 'cuda'
    stamps, cpu_stamps = [time.perf_counter()], [time.process_time()]
    for batch in batches:
        loop(batch)
        if sync:
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())
        cpu_stamps.append(time.process_time())
    return stamps, cpu_stamps


def quartiles(values):
    """(min, lower quartile, median, upper quartile, max)."""
    v = sorted(values)
    if len(v) < 2:
        return (v[0], ) * 5
    q1, q2, q3 = statistics.quantiles(v, n=4, method='inclusive')
    return v[0], q1, q2, q3, v[-1]


def bootstrap_interval(blocks, n=2000, seed=0):
    """95% interval of sum(runner) / sum(plain) - 1 (percent), resampling
    blocks of (runner seconds, plain seconds)."""
    rng = random.Random(seed)
    est = []
    for _ in range(n):
        pick = [blocks[rng.randrange(len(blocks))] for _ in blocks]
        est.append(100 * (sum(r for r, _ in pick) /
                          sum(p for _, p in pick) - 1))
    est.sort()
    return est[int(0.025 * n)], est[int(0.975 * n) - 1]


def verdict(low, high, n_blocks, goal=GOAL):
    if n_blocks < 5:
        return 'NOT VERIFIED (fewer than 5 blocks: use more --reps/--iters)'
    if high <= goal:
        return 'HOLDS'
    if low > goal:
        return 'NOT MET'
    return f'NOT VERIFIED (the interval contains {goal:.0f}%)'


def paired(cfg, batches, state, args, tmp, block):
    sync = args.device == 'cuda'
    k = 1 if args.clock == 'cpu' else 0
    blocks = []
    for rep in range(args.reps):
        hook = PairedHook(PlainLoop(cfg, state, args, len(batches)), sync)
        run_runner(cfg, batches, state, args, osp.join(tmp, f'w{rep}'),
                   hook)
        r = [t[k] for t in hook.runner_times][args.warmup:]
        p = [t[k] for t in hook.plain_times][args.warmup:]
        for i in range(0, len(r) - block + 1, block):
            blocks.append((sum(r[i:i + block]), sum(p[i:i + block])))
    return blocks


def runs(cfg, batches, state, args, tmp):
    k = 1 if args.clock == 'cpu' else 0
    pairs = []
    for rep in range(args.reps):
        stamp = StampHook(args.device == 'cuda')
        run_runner(cfg, batches, state, args, osp.join(tmp, f'w{rep}'),
                   stamp)
        r = (stamp.stamps, stamp.cpu_stamps)[k]
        p = run_plain(cfg, batches, state, args)[k]
        n = len(r) - 1 - args.warmup
        pairs.append((r[-1] - r[args.warmup], p[-1] - p[args.warmup], n))
    return pairs


def main(argv=None):
    args = parse_args(argv)
    check_device(args.device)
    if args.device == 'cuda' and args.clock == 'cpu':
        args.clock = 'wall'  # GPU work is not CPU time of this process
    torch.set_num_threads(args.threads)
    block = Config.fromfile(DEMO).default_hooks.logger.interval
    with tempfile.TemporaryDirectory() as tmp:
        cfg, batches, state = build_setup(args, tmp)
        if args.profile:
            import cProfile
            import pstats
            for name, fn in (('Runner', lambda: run_runner(
                    cfg, batches, state, args, osp.join(tmp, 'prof'),
                    StampHook(False))), ('plain', lambda: run_plain(
                        cfg, batches, state, args))):
                prof = cProfile.Profile()
                prof.enable()
                fn()
                prof.disable()
                print(f'\n== cProfile, one {name} run ==')
                pstats.Stats(prof).sort_stats('tottime').print_stats(30)
        if args.mode == 'paired':
            if args.iters - args.warmup < block:
                raise SystemExit(
                    f'--mode paired times whole logging periods: --iters '
                    f'must be at least --warmup + {block}')
            blocks = paired(cfg, batches, state, args, tmp, block)
        else:
            blocks = [(r / n, p / n) for r, p, n in
                      runs(cfg, batches, state, args, tmp)]
    dev = torch.cuda.get_device_name() if args.device == 'cuda' else \
        f'CPU, {torch.get_num_threads()} thread(s)'
    clock = 'CPU time' if args.clock == 'cpu' else 'wall time'
    n_r = sum(r for r, _ in blocks)
    n_p = sum(p for _, p in blocks)
    over = 100 * (n_r / n_p - 1)
    per_block = [100 * (r / p - 1) for r, p in blocks]
    lo, q1, med, q3, hi = quartiles(per_block)
    low, high = bootstrap_interval(blocks)
    unit = (f'block of {block} iterations' if args.mode == 'paired' else
            'pair of runs')
    n_iter = (len(blocks) * block if args.mode == 'paired' else
              args.reps * (args.iters - args.warmup))
    print(f'\nDemo model (TinyCNN + BiGRU), batch {args.batch_size}, '
          f'{args.image_size} px, {dev}, amp={args.amp}; {clock}; mode '
          f'{args.mode}: {args.reps} Runner runs x {args.iters} iterations '
          f'({args.warmup} left out each), {n_iter} timed iterations of '
          'each side\n')
    total = n_iter if args.mode == 'paired' else len(blocks)
    print('| plain loop (s/iter) | Runner (s/iter) | overhead | 95% interval '
          f'| per {unit}: min / quartiles / max |')
    print('|---:|---:|---:|---|---|')
    print(f'| {n_p / total:.4f} | {n_r / total:.4f} | **{over:+.2f}%** | '
          f'{low:+.2f}% .. {high:+.2f}% | {lo:+.2f}% / {q1:+.2f}% .. '
          f'{q3:+.2f}% / {hi:+.2f}% |')
    print(f'\nper-{unit.split(" ")[0]} overheads: ' +
          ', '.join(f'{o:+.1f}%' for o in per_block))
    print(f'\ngoal (framework overhead <= {GOAL:.0f}% per iteration, '
          f'{clock}): {verdict(low, high, len(blocks))}')


if __name__ == '__main__':
    main()
