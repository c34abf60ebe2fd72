# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Evaluate a checkpoint: ``python tools/test.py CONFIG [CHECKPOINT]``.

Prints the six recalls, mR and rsum as a table. Without a checkpoint the
model is evaluated as built from the config (e.g. zero-shot pretrained
weights named in the config).

The checkpoint is loaded strictly: a missing, unexpected or mis-shaped key
fails with the file and the keys named (``--non-strict`` loads the matching
keys only). It is unpickled without running code (``weights_only`` plus the
globals mmengine writes); ``--trust-checkpoint`` allows any pickle, for
files from a source you trust.
"""
import argparse
import contextlib
import json
import os.path as osp

import rsitr_mm  # noqa: F401  (registers modules, applies stack fixes)
from mmengine.config import Config, DictAction
from mmengine.dist import is_main_process
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from rsitr_mm.engine.data_root import merge_cfg_options
from rsitr_mm.engine.launch import (default_work_dir, ensure_local_rank,
                                    finish_cpu_distributed,
                                    format_retrieval_table,
                                    set_dataloader_defaults, setup_launcher)
from rsitr_mm.engine.preflight import run_preflight
from rsitr_mm.utils.safe_load import check_state_dict, trust_checkpoints


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test a retrieval model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint file')
    parser.add_argument('--work-dir', help='where to save the logs')
    parser.add_argument('--out', help='write the metrics to this json file')
    parser.add_argument(
        '--amp', action='store_true', help='encode under autocast')
    parser.add_argument(
        '--non-strict',
        action='store_true',
        help='load the checkpoint keys that fit the model and ignore the '
        'missing, unexpected and mis-shaped ones (default: fail)')
    parser.add_argument(
        '--trust-checkpoint',
        action='store_true',
        help='unpickle checkpoints with full pickle, which can run code '
        'from the file (default: only tensors and the values mmengine '
        'writes)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    ensure_local_rank(args.local_rank)
    return args


def check_checkpoint(runner: Runner, filename: str) -> None:
    """Fail unless ``filename`` holds exactly the keys/shapes of the model.

    The runner then loads it as usual (``load_from``, after ``before_run``).
    """
    from mmengine.runner.checkpoint import _load_checkpoint
    check_state_dict(runner.model,
                     _load_checkpoint(filename, map_location='cpu'),
                     filename, hint='--non-strict')


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    default_work_dir(cfg, args.config, args.work_dir)
    if args.checkpoint is not None:
        if not osp.isfile(args.checkpoint):
            raise FileNotFoundError(
                f'checkpoint not found: {args.checkpoint}')
        cfg.load_from = args.checkpoint
    if args.amp:
        cfg.test_cfg = dict(cfg.get('test_cfg') or {}, fp16=True)
    # testing needs no training or validation parts (a zero-shot config
    # may define a train dataloader without an optimizer)
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper',
                'param_scheduler', 'val_dataloader', 'val_cfg',
                'val_evaluator'):
        cfg[key] = None
    merge_cfg_options(cfg, args.cfg_options)  # data_root=DIR moves a dataset
    run_preflight(cfg, ('test', ), args.config)  # one checklist, exit 2
    set_dataloader_defaults(cfg)
    setup_launcher(cfg, args.launcher)
    trust = trust_checkpoints() if args.trust_checkpoint \
        else contextlib.nullcontext()
    with trust:
        runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg \
            else RUNNERS.build(cfg)
        if args.checkpoint is not None and not args.non_strict:
            check_checkpoint(runner, args.checkpoint)
        metrics = runner.test()
    if is_main_process():
        print(format_retrieval_table(metrics), flush=True)
        if args.out:
            with open(args.out, 'w', encoding='utf-8') as f:
                json.dump(metrics, f, indent=2)
    finish_cpu_distributed()


if __name__ == '__main__':
    main()
