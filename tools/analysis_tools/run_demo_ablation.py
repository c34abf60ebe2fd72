# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Run the SSJDN or OSDPM ablation on the generated demo scenes.

Every variant trains with the same data, seed, schedule and budget and is
scored on the held-out test split with the weights of its LAST epoch (no
checkpoint is picked on the test set). Prints a Markdown table and writes
it to ``--out`` if given.

    python tools/analysis_tools/run_demo_ablation.py --method ssjdn --epochs 6
    python tools/analysis_tools/run_demo_ablation.py --method osdpm --epochs 6
"""
import argparse
import os.path as osp
import time
from typing import Dict, List, Tuple

import rsitr_mm  # noqa: F401  (registers modules, applies stack fixes)
from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from rsitr_mm.datasets.synthetic import generate_synthetic_dataset
from rsitr_mm.engine.launch import set_dataloader_defaults
from rsitr_mm.evaluation import RECALL_KEYS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# (name, config, cfg-options) for each row
VARIANTS: Dict[str, List[Tuple[str, str, dict]]] = {
    'ssjdn': [
        ('SSJDN (BSD + LSD + STL)', 'demo_ssjdn_synthetic.py', {}),
        ('w/o BSD (pooled last stage)', 'demo_ssjdn_synthetic.py', {
            'model.image_neck': None,
            'model.image_encoder.out_indices': (3, ),
        }),
        ('w/o LSD (no label head)', 'demo_ssjdn_synthetic.py', {
            'model.heads': [],
        }),
        ('w/o STL (plain VSE++ triplet)', 'demo_ssjdn_synthetic.py', {
            'model.losses.0.semantic': 'none',
        }),
    ],
    'osdpm': [
        ('CLIP only', 'demo_osdpm_synthetic.py', {
            'model.image_neck': None,
            'model.image_encoder.out_indices': (),
            'model.heads': [],
        }),
        ('+ DAPN', 'demo_osdpm_synthetic.py', {
            'model.heads': [],
        }),
        ('+ DAPN + OSFCM', 'demo_osdpm_synthetic.py', {}),
    ],
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--method', choices=sorted(VARIANTS), required=True)
    parser.add_argument('--data-root', default='data/synthetic_demo')
    parser.add_argument('--num-images', type=int, default=2000)
    parser.add_argument('--image-size', type=int, default=64)
    parser.add_argument('--epochs', type=int, default=6)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--work-dir', default=None)
    parser.add_argument('--out', help='also write the table to this file')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='config overrides applied to every variant, e.g. '
        'optim_wrapper.paramwise_cfg.custom_keys.image_neck.lr_mult=10')
    return parser.parse_args()


def _prepare(args) -> str:
    ann = osp.join(args.data_root, 'dataset_synthetic.json')
    if not osp.isfile(ann):
        generate_synthetic_dataset(
            args.data_root,
            num_images=args.num_images,
            image_size=args.image_size,
            seed=args.seed)
    if args.method == 'osdpm':
        clip_dir = osp.join(args.data_root, 'tiny_clip_init')
        if not osp.isfile(osp.join(clip_dir, 'config.json')):
            from rsitr_mm.models.utils import make_tiny_clip_dir
            make_tiny_clip_dir(
                clip_dir,
                seed=args.seed,
                image_size=args.image_size,
                patch_size=8,
                width=64,
                layers=4,
                heads=4,
                projection_dim=64)
    return ann


def _config(args, config: str, options: dict, work_dir: str) -> Config:
    cfg = Config.fromfile(osp.join(REPO, 'configs', config))
    cfg.merge_from_dict(options)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.work_dir = work_dir
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = args.data_root
    ann = osp.join(args.data_root, 'dataset_synthetic.json')
    if cfg.model.text_encoder.type == 'BiGRUTextEncoder':
        cfg.model.text_encoder.ann_files = [ann]
    else:
        clip_dir = osp.join(args.data_root, 'tiny_clip_init')
        cfg.model.image_encoder.pretrained = clip_dir
        cfg.model.text_encoder.pretrained = clip_dir
    for head in cfg.model.get('heads', None) or []:
        if 'ann_file' in head:
            head.ann_file = ann
    cfg.train_cfg.max_epochs = args.epochs
    cfg.train_cfg.val_interval = args.epochs
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0,
             end=1, convert_to_iter_based=True),
    ]
    if args.epochs > 1:
        cfg.param_scheduler.append(
            dict(type='CosineAnnealingLR', by_epoch=True, begin=1,
                 end=args.epochs, convert_to_iter_based=True))
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=args.epochs, max_keep_ckpts=1)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=50)
    cfg.randomness = dict(seed=args.seed, deterministic=False)
    set_dataloader_defaults(cfg)
    return cfg


def format_table(rows: List[Tuple[str, Dict[str, float], float]]) -> str:
    """Markdown table: variant, six recalls, mR, rsum, training time."""
    cols = list(RECALL_KEYS) + ['mR', 'rsum']
    lines = ['| variant | ' + ' | '.join(cols) + ' | train s |',
             '|---|' + '---:|' * (len(cols) + 1)]
    for name, metrics, seconds in rows:
        vals = ' | '.join(f'{metrics[c]:.2f}' for c in cols)
        lines.append(f'| {name} | {vals} | {seconds:.0f} |')
    return '\n'.join(lines)


def main() -> None:
    args = parse_args()
    _prepare(args)
    root = args.work_dir or osp.join('work_dirs', f'ablation_{args.method}')
    rows = []
    for i, (name, config, options) in enumerate(VARIANTS[args.method]):
        print(f'=== [{i + 1}/{len(VARIANTS[args.method])}] {name}',
              flush=True)
        cfg = _config(args, config, options, osp.join(root, f'variant_{i}'))
        runner = Runner.from_cfg(cfg)
        start = time.time()
        runner.train()
        seconds = time.time() - start
        metrics = {
            k.split('/')[-1]: v
            for k, v in runner.test().items()
        }
        rows.append((name, metrics, seconds))
        print(format_table(rows[-1:]), flush=True)
    table = format_table(rows)
    print(table)
    if args.out:
        with open(args.out, 'w', encoding='utf-8') as f:
            f.write(table + '\n')


if __name__ == '__main__':
    main()
