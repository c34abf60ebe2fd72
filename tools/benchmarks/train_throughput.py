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
no dataset needed): the CI-size mode that runs on a CPU. ``--random-init``
keeps the config's full-size architecture (``--arch``, default CLIP
ViT-B/32: a random CLIP of OpenAI's shapes and the real tokenizer) with
random weights, for speed and
memory where no weights are at hand. Without either, the config's own
weights paths must exist. Data-dependent parts (OSFCM priors, BiGRU
vocabulary) come from a small synthetic annotation file in both modes.

``tf32`` is fp32 with TF32 matmuls and convolutions allowed
(``env_cfg.allow_tf32=True``). With ``--mfu`` the FLOPs of one plain
training iteration (forward + backward, counted by
``torch.utils.flop_counter``) give the model FLOP utilisation: achieved
FLOP/s over the device's dense peak for the precision (``--peak-tflops``,
or a table of datasheet peaks for H100 / H200). ``--profile`` runs the
``Runner`` once more under ``torch.profiler`` for the last precision and
prints the operators that take the most GPU and CPU time, and how busy the
GPU was.

Examples::

    # CPU, CI size
    python tools/benchmarks/train_throughput.py \\
        configs/clip_vit-b32_finetune_rsicd.py --tiny --iters 6 --reps 2
    # GPU, real towers, fp32 and both AMP precisions
    python tools/benchmarks/train_throughput.py \\
        configs/clip_vit-b32_finetune_rsicd.py --device cuda \\
        --precisions fp32 fp16 bf16 --batch-size 128 --image-size 224
    # GPU, OSDPM ViT-B/32 without weights, MFU and a profile
    python tools/benchmarks/train_throughput.py configs/osdpm_rsicd.py \\
        --random-init --device cuda --precisions fp32 tf32 bf16 \\
        --batch-size 128 --mfu --profile
"""
import argparse
import copy
import gc
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
from mmengine.hooks import Hook  # noqa: E402
from mmengine.logging import MMLogger  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.runner import Runner  # noqa: E402
from mmpretrain.registry import MODELS  # noqa: E402
from mmpretrain.structures import DataSample  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

DTYPES = {'fp16': torch.float16, 'bf16': torch.bfloat16}
#: Dense datasheet peaks (TFLOP/s) of the SXM parts, by a substring of
#: ``torch.cuda.get_device_name()``; fp32 without tensor cores.
PEAK_TFLOPS = {
    'H100 80GB HBM3': dict(fp32=66.9, tf32=494.7, fp16=989.4, bf16=989.4),
    'H200': dict(fp32=66.9, tf32=494.7, fp16=989.4, bf16=989.4),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    p.add_argument('--precisions', nargs='+', default=['fp32'],
                   choices=['fp32', 'tf32', 'fp16', 'bf16'])
    towers = p.add_mutually_exclusive_group()
    towers.add_argument('--tiny', action='store_true',
                        help='tiny random towers (CI size, runs on CPU)')
    towers.add_argument('--random-init', action='store_true',
                        help='the config\'s full-size towers, random weights')
    p.add_argument('--arch', default='ViT-B-32',
                   help='CLIP architecture of --random-init (a name of '
                   'rsitr_mm.models.utils.clip_convert.KNOWN_ARCHS; it must '
                   'match the widths of the config, ViT-B-32 for every '
                   'shipped CLIP config)')
    p.add_argument('--mfu', action='store_true',
                   help='count FLOPs per iteration and report MFU')
    p.add_argument('--peak-tflops', type=float, default=None,
                   help='dense peak TFLOP/s of the device for MFU '
                   '(default: datasheet table for H100 / H200)')
    p.add_argument('--profile', action='store_true',
                   help='profile one more Runner run of the last precision')
    p.add_argument('--profile-rows', type=int, default=12)
    p.add_argument('--batch-size', type=int, default=8)
    p.add_argument('--image-size', type=int, default=None,
                   help='default: 32 with --tiny, else 224')
    p.add_argument('--iters', type=int, default=10, help='per run')
    p.add_argument('--reps', type=int, default=3)
    p.add_argument('--warmup', type=int, default=2)
    return p.parse_args(argv)


def local_towers(model_cfg: dict, tmp: str, tiny: bool,
                 arch: str = 'ViT-B-32') -> dict:
    """Swap pretrained / data-dependent parts for random ones: tiny towers
    (``tiny``) or full-size ones (CLIP towers of ``arch``)."""
    from rsitr_mm.datasets.synthetic import generate_synthetic_dataset
    from rsitr_mm.models.utils import (localise_random, localise_tiny,
                                       make_random_clip_dir,
                                       make_tiny_clip_dir)
    ann = generate_synthetic_dataset(
        osp.join(tmp, 'synth'), num_images=12, image_size=32, seed=0,
        split=(8, 2, 2), progress=False)
    if tiny:
        return localise_tiny(
            model_cfg, make_tiny_clip_dir(osp.join(tmp, 'clip')), ann)
    return localise_random(
        model_cfg, make_random_clip_dir(osp.join(tmp, 'clip'), arch), ann)


def set_tf32(precision: str) -> None:
    """TF32 matmuls / convolutions on for ``tf32``, off otherwise."""
    torch.backends.cuda.matmul.allow_tf32 = precision == 'tf32'
    torch.backends.cudnn.allow_tf32 = precision == 'tf32'


def count_flops(model_cfg, state, batch, device) -> int:
    """FLOPs of one training iteration (forward + backward) of the model
    on ``batch``, counted by ``torch.utils.flop_counter`` (matmuls,
    convolutions, attention; element-wise work is not counted)."""
    from torch.utils.flop_counter import FlopCounterMode
    model = MODELS.build(copy.deepcopy(model_cfg)).to(device)
    model.load_state_dict(state)
    model.train()
    data = model.data_preprocessor(batch, True)
    with FlopCounterMode(display=False) as counter:
        losses = model(**data, mode='loss')
        sum(v for k, v in losses.items() if 'loss' in k).backward()
    return counter.get_total_flops()


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


def run_runner(cfg, model_cfg, state, batches, precision, args, work_dir,
               extra_hooks=()):
    set_tf32(precision)
    model = MODELS.build(copy.deepcopy(model_cfg))
    model.load_state_dict(state)
    stamp = StampHook(args.device == 'cuda')
    optim = copy.deepcopy(cfg.optim_wrapper)
    if precision in DTYPES:
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
        custom_hooks=[stamp, *extra_hooks], default_scope='mmpretrain',
        randomness=dict(seed=0), log_level='WARNING', cfg=dict())
    runner.train()
    return stamp.stamps, len(runner.optim_wrapper.optimizer.param_groups)


def run_plain(cfg, model_cfg, state, batches, precision, args):
    set_tf32(precision)
    device = torch.device(args.device)
    model = MODELS.build(copy.deepcopy(model_cfg)).to(device)
    model.load_state_dict(state)
    model.train()
    o = cfg.optim_wrapper.optimizer
    opt = torch.optim.AdamW(model.parameters(), lr=o.lr,
                            weight_decay=o.get('weight_decay', 0.01))
    amp = precision in DTYPES
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


class ProfilerStep(Hook):
    """Advance a ``torch.profiler`` schedule after every iteration."""

    def __init__(self, prof):
        self.prof = prof

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.prof.step()


def profile_runner(cfg, model_cfg, state, batches, precision, args, tmp):
    """One more Runner run under ``torch.profiler`` (operators) and
    ``cProfile`` (Python functions); prints the top of each and how busy
    the GPU was over the profiled iterations."""
    import cProfile
    import pstats
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile, schedule
    cuda = args.device == 'cuda'
    active = args.iters - args.warmup
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=acts,
                 schedule=schedule(wait=0, warmup=args.warmup,
                                   active=active, repeat=1)) as prof:
        py = cProfile.Profile()
        py.enable()
        stamps, _ = run_runner(cfg, model_cfg, state, batches, precision,
                               args, osp.join(tmp, 'profile'),
                               [ProfilerStep(prof)])
        py.disable()
    gaps = [b - a for a, b in zip(stamps[:-1], stamps[1:])]
    wall = sum(gaps[args.warmup:])
    events = prof.key_averages()
    dev_key = 'self_device_time_total'
    if cuda and not hasattr(events[0], dev_key):
        dev_key = 'self_cuda_time_total'
    print(f'\n### Profile: Runner, {precision}, {active} iterations\n')
    if cuda:
        # kernels only: a GPU-side annotation range (ProfilerStep*,
        # Optimizer.step#...) shares its name with its CPU-side event
        cpu = DeviceType.CPU
        cpu_keys = {e.key for e in events if e.device_type == cpu}
        busy = sum(getattr(e, dev_key) for e in events
                   if e.device_type != cpu and e.key not in cpu_keys) / 1e6
        print(f'GPU kernel time {1e3 * busy / active:.1f} ms per iteration '
              f'of {1e3 * wall / active:.1f} ms wall: GPU busy '
              f'{100 * busy / wall:.0f}% (profiler on)\n')
        print('```')
        print(events.table(sort_by=dev_key, row_limit=args.profile_rows))
        print('```')
    print('```')
    print(events.table(sort_by='self_cpu_time_total',
                       row_limit=args.profile_rows))
    print('```')
    print('\nPython functions by own time (cProfile, whole run incl. '
          'set-up):\n```')
    pstats.Stats(py, stream=sys.stdout).sort_stats('tottime').print_stats(
        args.profile_rows)
    print('```')


def peak_tflops(args, precision):
    if args.peak_tflops:
        return args.peak_tflops
    if args.device != 'cuda':
        return None
    name = torch.cuda.get_device_name()
    for key, peaks in PEAK_TFLOPS.items():
        if key in name:
            return peaks[precision]
    return None


def main(argv=None):
    args = parse_args(argv)
    check_device(args.device)
    if args.device == 'cpu' and set(args.precisions) - {'fp32'}:
        raise SystemExit('AMP and TF32 precisions need --device cuda '
                         '(mmengine\'s AmpOptimWrapper does not run on the '
                         'CPU)')
    if args.iters <= args.warmup:
        raise SystemExit('--iters must be larger than --warmup')
    init_default_scope('mmpretrain')
    # keep init_weights' per-parameter INFO lines out of the report
    MMLogger.get_instance('train_throughput', log_level='WARNING')
    cfg = Config.fromfile(args.config)
    size = args.image_size or (32 if args.tiny else 224)
    rows = []
    flops = None
    tf32 = (torch.backends.cuda.matmul.allow_tf32,
            torch.backends.cudnn.allow_tf32)
    with tempfile.TemporaryDirectory() as tmp:
        model_cfg = cfg.model.to_dict()
        if args.tiny or args.random_init:
            model_cfg = local_towers(model_cfg, tmp, args.tiny, args.arch)
        model = MODELS.build(copy.deepcopy(model_cfg))
        model.init_weights()
        state = copy.deepcopy(model.state_dict())
        del model
        batches = make_batches(args.iters, args.batch_size, size)
        if args.mfu:
            flops = count_flops(model_cfg, state, batches[0], args.device)
        for precision in args.precisions:
            times = {'runner': [], 'plain': []}
            peaks = {'runner': [], 'plain': []}
            for rep in range(args.reps):
                for path in ('runner', 'plain'):
                    # a finished Runner holds its model and optimizer state
                    # in reference cycles until the garbage collector runs
                    gc.collect()
                    if args.device == 'cuda':
                        torch.cuda.empty_cache()
                        torch.cuda.reset_peak_memory_stats()
                    if path == 'runner':
                        stamps, groups = run_runner(
                            cfg, model_cfg, state, batches, precision, args,
                            osp.join(tmp, f'w{rep}'))
                    else:
                        stamps = run_plain(cfg, model_cfg, state, batches,
                                           precision, args)
                    times[path].append(per_iter(stamps, args.warmup))
                    if args.device == 'cuda':
                        peaks[path].append(
                            torch.cuda.max_memory_allocated() / 2**20)
            rows.append((precision, times, peaks))
        report(args, rows, flops, size, groups)
        if args.profile:
            profile_runner(cfg, model_cfg, state, batches,
                           args.precisions[-1], args, tmp)
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 \
        = tf32


def report(args, rows, flops, size, groups):
    """Print the results table (and the FLOPs behind the MFU column, and
    the number of parameter groups of the Runner's optimizer)."""
    dev = torch.cuda.get_device_name() if args.device == 'cuda' else \
        f'CPU, {torch.get_num_threads()} threads'
    tiny = ' (tiny towers)' if args.tiny else \
        ' (full-size towers, random weights)' if args.random_init else ''
    print(f'\n{osp.basename(args.config)}{tiny}, batch {args.batch_size}, '
          f'{size} px, {dev}; median of '
          f'{args.reps} alternated runs x {args.iters - args.warmup} '
          'iterations\n')
    print(f'Runner optimizer: {groups} parameter groups\n')
    if flops is not None:
        print(f'FLOPs per training iteration (forward + backward, '
              f'torch.utils.flop_counter): {flops / 1e9:.2f} GFLOP, '
              f'{flops / args.batch_size / 1e9:.3f} GFLOP per image\n')
    print('| precision | plain images/s | runner images/s | runner '
          'overhead | plain peak MiB | runner peak MiB | runner MFU |')
    print('|---|---:|---:|---:|---:|---:|---:|')
    for precision, times, peaks in rows:
        p = statistics.median(times['plain'])
        r = statistics.median(times['runner'])
        mem = [f'{max(peaks[k]):.0f}' if peaks[k] else 'n/a (CPU)'
               for k in ('plain', 'runner')]
        peak = peak_tflops(args, precision)
        mfu = 'n/a'
        if flops is not None and peak:
            mfu = f'{100 * flops / r / (peak * 1e12):.1f}% of {peak:g}'
        print(f'| {precision} | {args.batch_size / p:.1f} | '
              f'{args.batch_size / r:.1f} | {100 * (r / p - 1):+.1f}% | '
              f'{mem[0]} | {mem[1]} | {mfu} |')


if __name__ == '__main__':
    main()
