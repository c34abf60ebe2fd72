# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Seeded ablation of SSJDN or OSDPM on the synthetic testbed.

For every variant (configs/testbed/) and seed it fine-tunes the pretrained
CLIP-architecture start (tools/analysis_tools/pretrain_testbed_start.py) on
the testbed's target domain, scores the test split (1000 images, 5000
captions) with the weights of the LAST epoch, and stores the per-query
ranks. From those it reports, per variant, mean +- SD over seeds of the six
recalls, mR and rsum; a paired bootstrap CI of each variant's difference to
the full model (resampling test images with their captions, the same
resample for both variants and every seed, differences averaged over
seeds); and test-time switch-offs of the full model's modules on the same
trained weights (through ``tools/analysis_tools/module_contribution.py``'s
``switch_off(model, name)`` when that module is present).

Finished runs (checkpoint + ranks) are skipped, so an interrupted call
resumes where it stopped; a run with a checkpoint but no ranks is only
re-scored.

    python tools/analysis_tools/run_ablation.py --method osdpm \
        --seeds 0 1 2 --work-dir work_dirs/testbed_ablation
    python tools/analysis_tools/run_ablation.py --method ssjdn \
        --seeds 0 1 2 --work-dir work_dirs/testbed_ablation

Writes ``<work-dir>/<method>/ablation.md`` and ``ablation.json``.
"""
import argparse
import importlib.util
import json
import os
import os.path as osp
import platform
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CAPTIONS_PER_IMAGE = 5
TOPK = (1, 5, 10)
METRIC_KEYS = ('i2t_R@1', 'i2t_R@5', 'i2t_R@10', 't2i_R@1', 't2i_R@5',
               't2i_R@10', 'mR', 'rsum')

#: ``method -> [(key, row name, config)]``; the first is the full model.
VARIANTS: Dict[str, List[Tuple[str, str, str]]] = {
    'osdpm': [
        ('full', 'CLIP + DAPN + OSFCM (full)', 'testbed/osdpm_full.py'),
        ('dapn', 'CLIP + DAPN', 'testbed/osdpm_dapn.py'),
        ('clip-only', 'CLIP only', 'testbed/osdpm_clip-only.py'),
        ('refine-only', 'full, OSFCM loss weight 0 (refinement only)',
         'testbed/osdpm_refine-only.py'),
        ('loss-only', 'full, OSFCM refinement off (loss only)',
         'testbed/osdpm_loss-only.py'),
        ('refine-centered', 'full, OSFCM refinement on centred prototypes',
         'testbed/osdpm_refine-centered.py'),
    ],
    'ssjdn': [
        ('full', 'SSJDN (BSD + LSD + STL)', 'testbed/ssjdn_full.py'),
        ('no-bsd', 'w/o BSD', 'testbed/ssjdn_no-bsd.py'),
        ('no-lsd', 'w/o LSD', 'testbed/ssjdn_no-lsd.py'),
        ('no-stl', 'w/o STL', 'testbed/ssjdn_no-stl.py'),
    ],
}

#: Test-time switch-offs of the full model, names understood by
#: ``module_contribution.switch_off(model, name)``.
SWITCH_OFFS: Dict[str, Tuple[str, ...]] = {
    'osdpm': ('dapn', 'osfcm'),
    'ssjdn': ('bsd_clues', 'suppression', 'lsd'),
}


# --------------------------------------------------------------------------
# statistics (pure numpy; tested in tests/test_tools/test_run_ablation.py)
# --------------------------------------------------------------------------
def hit_table(i2t_rank: np.ndarray,
              t2i_rank: np.ndarray,
              cpi: int = CAPTIONS_PER_IMAGE,
              topk: Sequence[int] = TOPK) -> np.ndarray:
    """Per-image hit counts, the sufficient statistic of every recall.

    Args:
        i2t_rank (np.ndarray): (N,) 0-based rank of the best gold caption
            of each image query.
        t2i_rank (np.ndarray): (cpi * N,) 0-based rank of the gold image of
            each caption query (caption ``j`` belongs to image ``j // cpi``).
        cpi (int): Captions per image.
        topk (Sequence[int]): The K values.

    Returns:
        np.ndarray: (N, 2 * len(topk)) float: column ``k`` is 1 when the
        image is an i2t hit at ``topk[k]``; column ``len(topk) + k`` counts
        the image's captions that are t2i hits at ``topk[k]`` (0..cpi).
    """
    i2t_rank = np.asarray(i2t_rank)
    t2i_rank = np.asarray(t2i_rank)
    n = i2t_rank.shape[0]
    if t2i_rank.shape != (cpi * n, ):
        raise ValueError(f't2i_rank must have shape ({cpi * n},) for '
                         f'{n} images, got {t2i_rank.shape}')
    cols = [(i2t_rank < k).astype(np.float64) for k in topk]
    per_cap = t2i_rank.reshape(n, cpi)
    cols += [(per_cap < k).sum(1).astype(np.float64) for k in topk]
    return np.stack(cols, 1)


def metrics_from_hits(hits: np.ndarray,
                      weights: Optional[np.ndarray] = None,
                      cpi: int = CAPTIONS_PER_IMAGE,
                      topk: Sequence[int] = TOPK) -> np.ndarray:
    """Recalls, mR and rsum (percent) from :func:`hit_table` rows.

    Args:
        hits (np.ndarray): (N, 2K) hit table.
        weights (np.ndarray, optional): (B, N) image counts of B bootstrap
            resamples (each row sums to N); None scores the table as is.
        cpi (int): Captions per image.
        topk (Sequence[int]): The K values.

    Returns:
        np.ndarray: (2K + 2,) or (B, 2K + 2): the recalls in the order of
        :data:`METRIC_KEYS`, then mR and rsum.
    """
    n = hits.shape[0]
    k = len(topk)
    if weights is None:
        weights = np.ones((1, n))
        squeeze = True
    else:
        squeeze = False
    totals = weights @ hits  # (B, 2K)
    rec = np.empty_like(totals)
    rec[:, :k] = totals[:, :k] / weights.sum(1, keepdims=True) * 100
    rec[:, k:] = totals[:, k:] / (cpi * weights.sum(1, keepdims=True)) * 100
    out = np.concatenate(
        [rec, rec.mean(1, keepdims=True),
         rec.sum(1, keepdims=True)], 1)
    return out[0] if squeeze else out


def mean_sd(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and sample SD (ddof=1; 0 for a single value)."""
    arr = np.asarray(values, np.float64)
    sd = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return float(arr.mean()), sd


def paired_bootstrap(runs_a: Sequence[np.ndarray],
                     runs_b: Sequence[np.ndarray],
                     num_samples: int = 2000,
                     seed: int = 0,
                     cpi: int = CAPTIONS_PER_IMAGE,
                     topk: Sequence[int] = TOPK) -> Dict[str, dict]:
    """Paired bootstrap of the metric differences ``a - b``.

    Test images are resampled with replacement, each with all its
    captions; the SAME resample is applied to both variants and to every
    seed, and the per-seed differences are averaged (runs are paired by
    position: ``runs_a[i]`` and ``runs_b[i]`` share seed ``i``).

    Args:
        runs_a (Sequence[np.ndarray]): hit tables (:func:`hit_table`) of
            variant a, one per seed.
        runs_b (Sequence[np.ndarray]): the same for variant b.
        num_samples (int): Bootstrap resamples.
        seed (int): Seed of the resampling.
        cpi (int): Captions per image.
        topk (Sequence[int]): The K values.

    Returns:
        dict: ``{metric: dict(diff, low, high, p_le0)}``: the observed mean
        difference, the 2.5 / 97.5 percentiles of the resampled ones and
        the fraction of resamples with a difference <= 0.
    """
    if len(runs_a) != len(runs_b) or not runs_a:
        raise ValueError('paired_bootstrap needs the same non-zero number '
                         f'of runs, got {len(runs_a)} and {len(runs_b)}')
    n = runs_a[0].shape[0]
    for r in list(runs_a) + list(runs_b):
        if r.shape[0] != n:
            raise ValueError('all runs must score the same test images')
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(
        n, np.full(n, 1.0 / n), size=num_samples).astype(np.float64)
    observed = np.mean([
        metrics_from_hits(a, None, cpi, topk) -
        metrics_from_hits(b, None, cpi, topk) for a, b in zip(runs_a, runs_b)
    ], 0)
    boot = np.mean([
        metrics_from_hits(a, weights, cpi, topk) -
        metrics_from_hits(b, weights, cpi, topk)
        for a, b in zip(runs_a, runs_b)
    ], 0)  # (B, M)
    keys = [f'i2t_R@{k}' for k in topk] + [f't2i_R@{k}'
                                           for k in topk] + ['mR', 'rsum']
    out = {}
    for j, key in enumerate(keys):
        out[key] = dict(
            diff=float(observed[j]),
            low=float(np.percentile(boot[:, j], 2.5)),
            high=float(np.percentile(boot[:, j], 97.5)),
            p_le0=float((boot[:, j] <= 0).mean()))
    return out


# --------------------------------------------------------------------------
# training and scoring
# --------------------------------------------------------------------------
def _load_sibling(name: str):
    """Import a module of tools/analysis_tools by file (no package)."""
    path = osp.join(osp.dirname(osp.abspath(__file__)), f'{name}.py')
    if not osp.isfile(path):
        return None
    spec = importlib.util.spec_from_file_location(f'_rsitr_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_switch_off():
    """``module_contribution.switch_off`` or None (with the reason)."""
    try:
        mod = _load_sibling('module_contribution')
    except Exception as err:  # a broken helper must not stop the runner
        return None, f'module_contribution failed to import: {err!r}'
    if mod is None:
        return None, ('tools/analysis_tools/module_contribution.py not '
                      'found: switch-off rows skipped')
    fn = getattr(mod, 'switch_off', None)
    if fn is None:
        return None, 'module_contribution has no switch_off: rows skipped'
    return fn, None


def gold_ranks(sim) -> Tuple[np.ndarray, np.ndarray]:
    """Per-query ranks with rsitr_mm's exact tie rule.

    Args:
        sim (torch.Tensor): (N, cpi * N) similarity.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``(i2t_rank (N,), t2i_rank
        (cpi * N,))``, 0-based, as in
        :func:`rsitr_mm.evaluation.retrieval_recall`.
    """
    from rsitr_mm.evaluation.functional import gold_ranks as _gold_ranks
    n, t = sim.shape
    i2t, t2i = _gold_ranks(sim, t // n)
    return (i2t.cpu().numpy().astype(np.int32),
            t2i.cpu().numpy().astype(np.int32))


def score(model, loader) -> Tuple[dict, np.ndarray, np.ndarray]:
    """Encode the test loader, return exact metrics and per-query ranks."""
    import torch

    from rsitr_mm.engine.runners.retrieval_loop import encode_loader
    from rsitr_mm.evaluation import retrieval_recall
    module = model.module if hasattr(model, 'module') else model
    module.eval()
    image_feat, text_feat = encode_loader(module, loader)
    with torch.no_grad():
        sim = module.compute_similarity(image_feat, text_feat).float().cpu()
    metrics = retrieval_recall(sim, CAPTIONS_PER_IMAGE, TOPK)
    i2t, t2i = gold_ranks(sim)
    return metrics, i2t, t2i


def _git_commit() -> str:
    try:
        return subprocess.run(['git', 'rev-parse', '--short', 'HEAD'],
                              cwd=REPO,
                              capture_output=True,
                              text=True,
                              check=True).stdout.strip()
    except Exception:
        return 'unknown'


def _link(target: str, link: str) -> None:
    """Point ``link`` at ``target`` (relative symlink) for direct use."""
    try:
        if osp.islink(link):
            os.remove(link)
        if not osp.exists(link):
            os.symlink(osp.relpath(target, osp.dirname(link)), link)
    except OSError:
        pass


def prepare(args) -> Tuple[str, str]:
    """Generate (or reuse) the testbed and the pretrained start."""
    from rsitr_mm.datasets.synthetic import generate_testbed
    overrides = dict(seed=args.data_seed)
    if args.testbed_split:
        overrides['target_split'] = tuple(args.testbed_split)
    if args.pretrain_images:
        overrides['pretrain_images'] = args.pretrain_images
    data_dir = generate_testbed(
        args.data_root, num_workers=min(8,
                                        os.cpu_count() or 1), **overrides)
    pre = _load_sibling('pretrain_testbed_start')
    clip_dir = pre.pretrain(data_dir, steps=args.pretrain_steps)
    _link(osp.join(data_dir, 'target'), osp.join(args.data_root, 'target'))
    _link(clip_dir, osp.join(args.data_root, 'clip_start'))
    return osp.join(data_dir, 'target'), clip_dir


def build_config(config: str,
                 target: str,
                 clip_dir: str,
                 seed: int,
                 epochs: Optional[int],
                 work_dir: str,
                 cfg_options=None):
    """The variant's config with paths, seed, epochs and work_dir set."""
    from mmengine.config import Config

    from rsitr_mm.engine.launch import set_dataloader_defaults
    cfg = Config.fromfile(osp.join(REPO, 'configs', config))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.work_dir = work_dir
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = target
    for enc in ('image_encoder', 'text_encoder'):
        if 'pretrained' in cfg.model[enc]:
            cfg.model[enc].pretrained = clip_dir
    ann = osp.join(target, 'dataset_synthetic.json')
    for head in cfg.model.get('heads', None) or []:
        if 'ann_file' in head:
            head.ann_file = ann
    if epochs is not None:
        cfg.train_cfg.max_epochs = epochs
    # iterations per epoch of THIS data (the configs assume 1,000 images)
    with open(ann, encoding='utf-8') as f:
        n_caps = sum(
            len(im['sentences']) for im in json.load(f)['images']
            if im['split'] == 'train')
    cfg.iters_per_epoch = max(1, n_caps // cfg.train_dataloader.batch_size)
    total = cfg.iters_per_epoch * cfg.train_cfg.max_epochs
    warm = max(1, total // 10)
    cfg.param_scheduler = [
        dict(
            type='LinearLR',
            start_factor=0.1,
            by_epoch=False,
            begin=0,
            end=warm)
    ]
    if total > warm:
        cfg.param_scheduler.append(
            dict(
                type='CosineAnnealingLR',
                by_epoch=False,
                begin=warm,
                end=total))
    # no validation during the short fine-tunes (the last epoch is scored,
    # nothing is picked on val or test) and one checkpoint: the last
    cfg.val_cfg = None
    cfg.val_dataloader = None
    cfg.val_evaluator = None
    cfg.train_cfg.pop('val_interval', None)
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook',
        interval=cfg.train_cfg.max_epochs,
        max_keep_ckpts=1)
    cfg.randomness = dict(seed=seed, deterministic=False)
    set_dataloader_defaults(cfg)
    return cfg


def run_one(config: str,
            target: str,
            clip_dir: str,
            seed: int,
            epochs: Optional[int],
            run_dir: str,
            switch_offs: Sequence[str],
            switch_off,
            cfg_options=None) -> dict:
    """Train (unless done), score, and score the switch-offs of one run."""
    import torch
    from mmengine.runner import Runner

    result_file = osp.join(run_dir, 'result.json')
    cfg = build_config(config, target, clip_dir, seed, epochs, run_dir,
                       cfg_options)
    ckpt = osp.join(run_dir, f'epoch_{cfg.train_cfg.max_epochs}.pth')
    wanted = {'base'} | {f'off_{n}' for n in switch_offs}
    if osp.isfile(result_file) and osp.isfile(ckpt):
        with open(result_file, encoding='utf-8') as f:
            result = json.load(f)
        # a switch-off that raised is not retried (delete result.json to)
        have = set(result.get('scores', {})) | set(result.get('failed', []))
        if wanted <= have or (switch_off is None and 'base' in have):
            return result
    else:
        result = dict(config=config, seed=seed, scores={})
    runner = Runner.from_cfg(cfg)
    if osp.isfile(ckpt):
        runner.load_checkpoint(ckpt, map_location='cpu')
    else:
        start = time.time()
        runner.train()
        result['train_seconds'] = round(time.time() - start, 1)
    loader = runner.build_dataloader(cfg.test_dataloader, seed=seed)
    model = runner.model
    model = model.module if hasattr(model, 'module') else model
    todo = [('base', None)] + [(f'off_{n}', n) for n in switch_offs]
    for key, name in todo:
        if key in result['scores'] or key in result.get(
                'failed', []) or (name is not None and switch_off is None):
            continue
        start = time.time()
        try:
            if name is None:
                metrics, i2t, t2i = score(model, loader)
            else:
                with switch_off(model, name):
                    metrics, i2t, t2i = score(model, loader)
        except (KeyError, ValueError, AttributeError, NotImplementedError,
                TypeError) as err:
            result.setdefault(
                'notes', []).append(f'switch-off {name!r} failed: {err!r}')
            result.setdefault('failed', []).append(key)
            continue
        np.savez_compressed(
            osp.join(run_dir, f'ranks_{key}.npz'), i2t=i2t, t2i=t2i)
        result['scores'][key] = dict(
            metrics=metrics, seconds=round(time.time() - start, 1))
    tmp = result_file + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(result, f, indent=1)
    os.replace(tmp, result_file)
    del runner, model
    torch.cuda.empty_cache() if torch.cuda.is_available() else None
    return result


def _hits(run_dir: str, key: str) -> np.ndarray:
    data = np.load(osp.join(run_dir, f'ranks_{key}.npz'))
    return hit_table(data['i2t'], data['t2i'])


def summarize(method: str,
              root: str,
              seeds: Sequence[int],
              num_samples: int,
              notes: List[str],
              runs: dict,
              keys: Optional[Sequence[str]] = None,
              held_out: Optional[np.ndarray] = None) -> dict:
    """Mean +- SD per row and paired bootstrap CIs vs the full model.

    ``held_out`` (bool (N,) over test images) adds, per row, rsum on the
    image queries and caption queries of those images only (the gallery
    stays the whole test split) with its own paired bootstrap.
    """
    variants = [v for v in VARIANTS[method] if keys is None or v[0] in keys]
    full_key = VARIANTS[method][0][0]
    rows = []
    full_dirs = [osp.join(root, full_key, f'seed_{s}') for s in seeds]
    full_hits = [_hits(d, 'base') for d in full_dirs]
    entries = [(key, name, key, 'base') for key, name, _ in variants]
    off_keys = set.intersection(
        *[set(runs[(full_key, s)]['scores'])
          for s in seeds]) if seeds else set()
    for name in SWITCH_OFFS[method]:
        if f'off_{name}' in off_keys:
            entries.append((f'{full_key}|off_{name}',
                            f'full, {name} switched off at test time',
                            full_key, f'off_{name}'))
    for key, label, variant, score_key in entries:
        per_seed = [
            runs[(variant, s)]['scores'][score_key]['metrics'] for s in seeds
        ]
        summary = {
            m: dict(zip(('mean', 'sd'), mean_sd([p[m] for p in per_seed])))
            for m in METRIC_KEYS
        }
        row = dict(key=key, name=label, per_seed=per_seed, summary=summary)
        secs = [runs[(variant, s)].get('train_seconds') for s in seeds]
        secs = [x for x in secs if x is not None]
        row['train_seconds'] = float(np.mean(secs)) if secs else None
        if not (variant == full_key and score_key == 'base'):
            hits = [
                _hits(osp.join(root, variant, f'seed_{s}'), score_key)
                for s in seeds
            ]
            row['vs_full'] = paired_bootstrap(hits, full_hits, num_samples)
        if held_out is not None and held_out.any():
            hits = [
                _hits(osp.join(root, variant, f'seed_{s}'), score_key)
                for s in seeds
            ]
            sub = [h[held_out] for h in hits]
            rs = [metrics_from_hits(h)[-1] for h in sub]
            row['held_out'] = dict(zip(('mean', 'sd'), mean_sd(rs)))
            if not (variant == full_key and score_key == 'base'):
                row['held_out']['vs_full'] = paired_bootstrap(
                    sub, [h[held_out] for h in full_hits], num_samples)['rsum']
        rows.append(row)
    return dict(
        method=method,
        seeds=list(seeds),
        held_out_images=int(held_out.sum()) if held_out is not None else 0,
        rows=rows,
        notes=notes,
        bootstrap_samples=num_samples)


def format_markdown(summary: dict) -> str:
    """The ablation table (mean +- SD over seeds; diff vs full with CI)."""
    cols = [
        'i2t_R@1', 'i2t_R@5', 'i2t_R@10', 't2i_R@1', 't2i_R@5', 't2i_R@10',
        'mR', 'rsum'
    ]
    head = ('| variant | ' + ' | '.join(cols) +
            ' | rsum - full [95% CI] | mR - full [95% CI] |')
    lines = [head, '|---|' + '---:|' * (len(cols) + 2)]
    for row in summary['rows']:
        vals = ' | '.join(f'{row["summary"][c]["mean"]:.2f} +- '
                          f'{row["summary"][c]["sd"]:.2f}' for c in cols)
        if 'vs_full' in row:
            d = row['vs_full']
            diffs = ' | '.join(f'{d[m]["diff"]:+.2f} [{d[m]["low"]:+.2f}, '
                               f'{d[m]["high"]:+.2f}]' for m in ('rsum', 'mR'))
        else:
            diffs = '(reference) | (reference)'
        lines.append(f'| {row["name"]} | {vals} | {diffs} |')
    if any('held_out' in row for row in summary['rows']):
        lines += [
            '', f'Test images showing a held-out colour x kind combination '
            f'({summary.get("held_out_images", "?")} images, their image '
            'and caption queries, gallery = whole test split):', '',
            '| variant | rsum | rsum - full [95% CI] |', '|---|---:|---:|'
        ]
        for row in summary['rows']:
            h = row.get('held_out')
            if h is None:
                continue
            d = h.get('vs_full')
            diff = ('(reference)' if d is None else
                    f'{d["diff"]:+.2f} [{d["low"]:+.2f}, {d["high"]:+.2f}]')
            lines.append(f'| {row["name"]} | {h["mean"]:.2f} +- '
                         f'{h["sd"]:.2f} | {diff} |')
    n = len(summary['seeds'])
    lines.append('')
    lines.append(f'Mean +- SD over {n} seeds ({summary["seeds"]}); '
                 f'differences: paired bootstrap over test images '
                 f'({summary["bootstrap_samples"]} resamples, each image '
                 'with its 5 captions, same resample for both rows and all '
                 'seeds, per-seed differences averaged).')
    for note in summary['notes']:
        lines.append(f'Note: {note}')
    return '\n'.join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--method', choices=sorted(VARIANTS), required=True)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument(
        '--epochs',
        type=int,
        default=None,
        help='fine-tuning epochs (default: the configs\' max_epochs)')
    parser.add_argument('--work-dir', default='work_dirs/testbed_ablation')
    parser.add_argument('--data-root', default='data/testbed')
    parser.add_argument('--data-seed', type=int, default=0)
    parser.add_argument('--pretrain-steps', type=int, default=600)
    parser.add_argument(
        '--testbed-split',
        type=int,
        nargs=3,
        default=None,
        metavar=('TRAIN', 'VAL', 'TEST'),
        help='target-domain image counts (default 1000 200 1000)')
    parser.add_argument(
        '--pretrain-images',
        type=int,
        default=None,
        help='pretraining-domain images (default 5000)')
    parser.add_argument(
        '--variants',
        nargs='+',
        default=None,
        help='subset of variant keys (the full model is '
        'always run: it is the reference)')
    parser.add_argument('--no-switch-off', action='store_true')
    parser.add_argument('--bootstrap', type=int, default=2000)
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='overrides applied to every variant')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import rsitr_mm  # noqa: F401  (registers modules)
    if args.epochs is not None and args.epochs < 1:
        print('error: --epochs must be >= 1', file=sys.stderr)
        return 2
    known = [k for k, _, _ in VARIANTS[args.method]]
    if args.variants:
        bad = sorted(set(args.variants) - set(known))
        if bad:
            print(
                f'error: --variants {bad} unknown for {args.method}; '
                f'expected some of {known}',
                file=sys.stderr)
            return 2
    keys = [
        k for k in known
        if not args.variants or k in args.variants or k == known[0]
    ]
    notes: List[str] = []
    switch_off, why = (None, 'switch-offs disabled (--no-switch-off)') \
        if args.no_switch_off else load_switch_off()
    if why:
        notes.append(why)
    target, clip_dir = prepare(args)
    root = osp.join(args.work_dir, args.method)
    runs = {}
    t0 = time.time()
    for key in keys:
        config = dict((k, c) for k, _, c in VARIANTS[args.method])[key]
        offs = SWITCH_OFFS[args.method] if key == known[0] else ()
        for seed in args.seeds:
            print(
                f'=== {args.method} {key} seed {seed} '
                f'({time.time() - t0:.0f} s)',
                flush=True)
            runs[(key, seed)] = run_one(config, target, clip_dir, seed,
                                        args.epochs,
                                        osp.join(root, key, f'seed_{seed}'),
                                        offs, switch_off, args.cfg_options)
            for note in runs[(key, seed)].get('notes', []):
                if note not in notes:
                    notes.append(note)
    with open(
            osp.join(target, 'dataset_synthetic.json'), encoding='utf-8') as f:
        held_out = np.array([
            bool(im.get('scene', {}).get('held_out', False))
            for im in json.load(f)['images'] if im['split'] == 'test'
        ])
    summary = summarize(args.method, root, args.seeds, args.bootstrap, notes,
                        runs, keys, held_out)
    summary.update(
        commit=_git_commit(),
        command='python tools/analysis_tools/run_ablation.py ' +
        ' '.join(sys.argv[1:] if argv is None else argv),
        machine=f'{platform.machine()} CPU x{os.cpu_count()}, '
        f'{platform.system()}',
        total_seconds=round(time.time() - t0, 1))
    table = format_markdown(summary)
    print(table)
    with open(osp.join(root, 'ablation.md'), 'w', encoding='utf-8') as f:
        f.write(table + '\n')
    with open(osp.join(root, 'ablation.json'), 'w', encoding='utf-8') as f:
        json.dump(summary, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
