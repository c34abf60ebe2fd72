# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Train a retrieval model: ``python tools/train.py CONFIG [options]``."""
import argparse
import contextlib

import rsitr_mm  # noqa: F401  (registers modules, applies stack fixes)
from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from rsitr_mm.engine.config_check import CfgOptionsAction
from rsitr_mm.engine.data_root import merge_cfg_options
from rsitr_mm.engine.hooks import amp_counterpart
from rsitr_mm.engine.launch import (apply_tf32, default_work_dir,
                                    ensure_local_rank, finish_distributed,
                                    set_dataloader_defaults, setup_launcher)
from rsitr_mm.engine.preflight import run_preflight
from rsitr_mm.utils.threads import (add_threads_arg, loader_workers,
                                   setup_threads)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a retrieval model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='where to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint, or (no value) from the latest '
        'checkpoint in the work dir')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='mixed-precision training (NaNSafeOptimWrapper becomes '
        'NaNSafeAmpOptimWrapper, OptimWrapper becomes AmpOptimWrapper)')
    parser.add_argument(
        '--trust-checkpoint',
        action='store_true',
        help='unpickle checkpoints (--resume, load_from) with full pickle, '
        'which can run code from the file')
    parser.add_argument(
        '--no-validate', action='store_true', help='skip validation')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by the actual batch size')
    parser.add_argument(
        '--no-pin-memory', action='store_true', help='disable pin_memory')
    parser.add_argument(
        '--no-persistent-workers',
        action='store_true',
        help='disable persistent_workers')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=CfgOptionsAction,
        help='override config settings, e.g. train_cfg.max_epochs=2')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    add_threads_arg(parser)
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    ensure_local_rank(args.local_rank)
    return args


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Merge the command-line options into the config."""
    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None
    default_work_dir(cfg, args.config, args.work_dir)
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    merge_cfg_options(cfg, args.cfg_options)  # data_root=DIR moves a dataset
    if args.amp:
        # after --cfg-options, so the final type is mapped; keep its
        # behaviour: NaNSafeOptimWrapper ->
        # NaNSafeAmpOptimWrapper (NaN skip kept), OptimWrapper ->
        # AutoScaleAmpOptimWrapper (no loss scaler in bfloat16)
        cfg.optim_wrapper.type = amp_counterpart(
            cfg.optim_wrapper.get('type', 'OptimWrapper'))
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    set_dataloader_defaults(cfg, not args.no_pin_memory,
                            not args.no_persistent_workers)
    setup_launcher(cfg, args.launcher)
    apply_tf32(cfg)
    return cfg


def main() -> None:
    args = parse_args()
    cfg = merge_args(Config.fromfile(args.config), args)
    # one checklist, exit 2
    run_preflight(cfg, ('train', ), args.config, args.cfg_options)
    setup_threads(args.threads, loader_workers(cfg))
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg \
        else RUNNERS.build(cfg)
    from rsitr_mm.utils import trust_checkpoints
    with (trust_checkpoints() if args.trust_checkpoint else
          contextlib.nullcontext()):
        runner.train()
    finish_distributed()


if __name__ == '__main__':
    main()
