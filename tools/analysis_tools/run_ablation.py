# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Seeded ablation of SSJDN or OSDPM on the synthetic testbed.

For every declared variant (:data:`VARIANTS`, configs/testbed/) and seed it
fine-tunes the pretrained CLIP-architecture start
(tools/analysis_tools/pretrain_testbed_start.py) on the testbed's target
domain, records a validation-rsum curve during training, scores the test
split (1000 images, 5000 captions) with the weights of the LAST epoch, and
stores the per-query ranks and the test image embeddings' object-category
overlap. Test-time switch-offs (``module_contribution.switch_off``) are
scored on the same weights.

The report gives, per variant, mean +- SD over seeds of the six recalls,
mR and rsum; and for every declared contrast (:data:`CONTRASTS`: the
shipped method vs its base, each module removed, controls, extensions,
switch-offs) the mean paired difference with (a) a t-interval across
training seeds and (b) a hierarchical bootstrap that resamples seeds and
test images together. A contrast is called an effect only when (b)
excludes 0. It also reports the mechanisms the papers claim: kNN purity and
silhouette of the test image embeddings by dominant caption noun (OSFCM)
and iterations to a fixed validation rsum (STL).

A stored run is reused only when its provenance matches: variant, seed,
the SHA-256 of the resolved config and of the package's source. Otherwise
it is moved aside (``seed_N.stale-K``) and re-run; the report only reads
matching runs.

    python tools/analysis_tools/run_ablation.py --method osdpm \
        --seeds 0 1 2 3 4 --seed-major --work-dir work_dirs/testbed_ablation
    python tools/analysis_tools/run_ablation.py --method ssjdn \
        --seeds 0 1 2 3 4 --seed-major --work-dir work_dirs/testbed_ablation

Writes ``<work-dir>/<method>/ablation.md`` and ``ablation.json``.
"""
import argparse
import hashlib
import importlib.util
import json
import math
import os
import os.path as osp
import platform
import subprocess
import sys
import time
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CAPTIONS_PER_IMAGE = 5
TOPK = (1, 5, 10)
METRIC_KEYS = ('i2t_R@1', 'i2t_R@5', 'i2t_R@10', 't2i_R@1', 't2i_R@5',
               't2i_R@10', 'mR', 'rsum')

class Variant(NamedTuple):
    """One row of the declared variant table.

    Attributes:
        key (str): Short name (folder name of its runs).
        name (str): Row label in the report.
        config (str): Config under ``configs/``.
        role (str): ``'reference'`` (the shipped method, first row),
            ``'base'`` (none of the method's modules), ``'removal'`` (one
            module removed), ``'control'`` (a control for a claim) or
            ``'extension'`` (our opt-in addition, not the paper's).
        switch_offs (tuple[str]): Test-time switch-offs scored on this
            variant's weights (``module_contribution.switch_off`` names).
        post_hoc (bool): Added after a run had been seen; marked as such in
            the report.
    """
    key: str
    name: str
    config: str
    role: str
    switch_offs: Tuple[str, ...] = ()
    post_hoc: bool = False


#: The declared variants, per method: fixed BEFORE a run (a variant added
#: after seeing results must say ``post_hoc=True``). The first row is the
#: shipped method (the papers' modules as in ``configs/{ssjdn,osdpm}_*.py``).
VARIANTS: Dict[str, List[Variant]] = {
    'osdpm': [
        Variant('full', "OSDPM (paper's: CLIP + DAPN + OSFCM clustering)",
                'testbed/osdpm_full.py', 'reference',
                ('dapn', 'dapn_context', 'dapn_region')),
        Variant('clip-only', 'CLIP only (base)', 'testbed/osdpm_clip-only.py',
                'base'),
        Variant('dapn', 'w/o OSFCM (CLIP + DAPN)', 'testbed/osdpm_dapn.py',
                'removal'),
        Variant('no-dapn', 'w/o DAPN (CLIP + OSFCM)',
                'testbed/osdpm_no-dapn.py', 'removal'),
        Variant('refine',
                'full + our OSFCM extensions (caption term + refinement)',
                'testbed/osdpm_refine.py', 'extension', ('osfcm', )),
    ],
    'ssjdn': [
        Variant('full', 'SSJDN (BSD + LSD + STL)', 'testbed/ssjdn_full.py',
                'reference', ('bsd_clues', 'bsd_suppression',
                              'bsd_salience')),
        Variant('base', 'base (no BSD, no LSD, plain triplet)',
                'testbed/ssjdn_base.py', 'base'),
        Variant('no-bsd', 'w/o BSD', 'testbed/ssjdn_no-bsd.py', 'removal'),
        Variant('no-lsd', 'w/o LSD', 'testbed/ssjdn_no-lsd.py', 'removal'),
        Variant('no-stl', 'w/o STL (plain VSE++ triplet)',
                'testbed/ssjdn_no-stl.py', 'removal'),
        Variant('bsd-control',
                'BSD control (same layers and fusion, plain pooling)',
                'testbed/ssjdn_bsd-control.py', 'control'),
    ],
}

#: Declared contrasts ``(a, b, what a - b measures)``; a row is
#: ``'variant'`` or ``'variant|off_<switch>'`` (a test-time switch-off on
#: that variant's weights).
CONTRASTS: Dict[str, List[Tuple[str, str, str]]] = {
    'osdpm': [
        ('full', 'clip-only', 'shipped OSDPM vs its base'),
        ('full', 'dapn', 'OSFCM (clustering objective) vs clustering off'),
        ('full', 'no-dapn', 'DAPN, removed'),
        ('dapn', 'clip-only', 'DAPN alone on CLIP'),
        ('refine', 'full', 'our OSFCM extensions vs the paper\'s OSFCM'),
        ('full|off_dapn', 'full', 'DAPN switched off at test time'),
        ('full|off_dapn_context', 'full',
         'DAPN context branch off at test time'),
        ('full|off_dapn_region', 'full',
         'DAPN region branch off at test time'),
        ('refine|off_osfcm', 'refine', 'refinement off at test time'),
    ],
    'ssjdn': [
        ('full', 'base', 'shipped SSJDN vs its base'),
        ('full', 'no-bsd', 'BSD, removed'),
        ('full', 'no-lsd', 'LSD, removed'),
        ('full', 'no-stl', 'STL vs plain triplet'),
        ('full', 'bsd-control', 'salience decoupling (BSD vs its control)'),
        ('bsd-control', 'no-bsd',
         'extra layers through a plain branch (control vs w/o BSD)'),
        ('full|off_bsd_clues', 'full', 'BSD clues off at test time'),
        ('full|off_bsd_suppression', 'full', 'SGS off at test time'),
        ('full|off_bsd_salience', 'full', 'SFE off at test time'),
    ],
}

#: Backwards-compatible view: test-time switch-offs of the reference row.
SWITCH_OFFS: Dict[str, Tuple[str, ...]] = {
    m: v[0].switch_offs
    for m, v in VARIANTS.items()
}

#: Fraction of the reference variant's final validation rsum used as the
#: fixed level for "iterations to reach it" (STL's convergence claim);
#: declared here, before any run.
CONVERGENCE_LEVEL = 0.8


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
    return _bootstrap(runs_a, runs_b, num_samples, seed, cpi, topk,
                      resample_seeds=False)


def seed_interval(diffs: Sequence[float], level: float = 0.95) -> dict:
    """t-interval of the mean of per-seed paired differences.

    It covers the variation between training seeds (each seed's difference
    is measured on the whole test split), not the sampling of test images.

    Args:
        diffs (Sequence[float]): One paired difference per seed.
        level (float): Coverage.

    Returns:
        dict: ``mean``, ``sd`` (ddof=1), ``low``, ``high``, ``n``; the bounds
        are NaN for fewer than 2 seeds.
    """
    from scipy import stats
    arr = np.asarray(diffs, np.float64)
    mean, sd = mean_sd(arr)
    n = arr.size
    if n < 2:
        return dict(mean=mean, sd=sd, low=math.nan, high=math.nan, n=n)
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return dict(mean=mean, sd=sd, low=mean - half, high=mean + half, n=n)


def seed_image_bootstrap(runs_a: Sequence[np.ndarray],
                         runs_b: Sequence[np.ndarray],
                         num_samples: int = 2000,
                         seed: int = 0,
                         cpi: int = CAPTIONS_PER_IMAGE,
                         topk: Sequence[int] = TOPK) -> Dict[str, dict]:
    """Hierarchical paired bootstrap: training seeds AND test images.

    Each resample draws the seeds with replacement and the test images
    with replacement (each with its captions; the same image draw for every
    seed of the resample, as every seed scores the same test images), and
    averages the paired differences ``a - b`` over the drawn seeds. Its
    interval therefore covers both sources of variation; a contrast is
    called an effect only when this interval excludes 0.

    Args:
        runs_a (Sequence[np.ndarray]): hit tables of variant a, one per seed.
        runs_b (Sequence[np.ndarray]): the same for b, paired by position.
        num_samples (int): Bootstrap resamples.
        seed (int): Seed of the resampling.
        cpi (int): Captions per image.
        topk (Sequence[int]): The K values.

    Returns:
        dict: ``{metric: dict(diff, low, high, p_le0)}`` as
        :func:`paired_bootstrap`.
    """
    return _bootstrap(runs_a, runs_b, num_samples, seed, cpi, topk,
                      resample_seeds=True)


def _bootstrap(runs_a: Sequence[np.ndarray], runs_b: Sequence[np.ndarray],
               num_samples: int, seed: int, cpi: int, topk: Sequence[int],
               resample_seeds: bool) -> Dict[str, dict]:
    """The paired bootstraps above: test images resampled (the same draw
    for both variants and every seed), per-seed differences averaged over
    the seeds as run or, with ``resample_seeds``, over seeds drawn with
    replacement in each resample."""
    if len(runs_a) != len(runs_b) or not runs_a:
        raise ValueError('a paired bootstrap needs the same non-zero number '
                         f'of runs, got {len(runs_a)} and {len(runs_b)}')
    n = runs_a[0].shape[0]
    if any(r.shape[0] != n for r in list(runs_a) + list(runs_b)):
        raise ValueError('all runs must score the same test images')
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(
        n, np.full(n, 1.0 / n), size=num_samples).astype(np.float64)
    per_seed = np.stack([
        metrics_from_hits(a, weights, cpi, topk) -
        metrics_from_hits(b, weights, cpi, topk)
        for a, b in zip(runs_a, runs_b)
    ])  # (S, B, M)
    if resample_seeds:
        pick = rng.integers(0, len(runs_a), size=(num_samples, len(runs_a)))
        boot = per_seed[pick, np.arange(num_samples)[:, None]].mean(1)
    else:
        boot = per_seed.mean(0)  # (B, M)
    observed = np.mean([
        metrics_from_hits(a, None, cpi, topk) -
        metrics_from_hits(b, None, cpi, topk) for a, b in zip(runs_a, runs_b)
    ], 0)
    keys = [f'i2t_R@{k}' for k in topk] + [f't2i_R@{k}'
                                           for k in topk] + ['mR', 'rsum']
    return {
        key: dict(
            diff=float(observed[j]),
            low=float(np.percentile(boot[:, j], 2.5)),
            high=float(np.percentile(boot[:, j], 97.5)),
            p_le0=float((boot[:, j] <= 0).mean()))
        for j, key in enumerate(keys)
    }


def knn_purity(emb: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """Mean share of each item's ``k`` nearest neighbours (cosine, itself
    excluded) that carry its label; items with label < 0 are left out of
    both the queries and the neighbours.

    Args:
        emb (np.ndarray): (N, D) embeddings.
        labels (np.ndarray): (N,) int labels (e.g. dominant caption noun).
        k (int): Neighbours.

    Returns:
        float: purity in [0, 1] (NaN with fewer than ``k + 1`` items).
    """
    keep = labels >= 0
    x, y = emb[keep].astype(np.float64), labels[keep]
    if x.shape[0] <= k:
        return math.nan
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    nn_idx = np.argpartition(-sim, k, axis=1)[:, :k]
    return float((y[nn_idx] == y[:, None]).mean())


def category_overlap(emb: np.ndarray, labels: np.ndarray) -> dict:
    """OSFCM's claim, measured: how much object categories overlap.

    Args:
        emb (np.ndarray): (N, D) image embeddings.
        labels (np.ndarray): (N,) dominant caption noun per image (-1: none).

    Returns:
        dict: ``knn_purity`` (k = 10) and ``silhouette`` (cosine) over the
        images with a dominant noun.
    """
    from sklearn.metrics import silhouette_score
    keep = labels >= 0
    sil = math.nan
    if keep.sum() > 2 and len(set(labels[keep].tolist())) > 1:
        sil = float(
            silhouette_score(emb[keep], labels[keep], metric='cosine'))
    return dict(knn_purity=knn_purity(emb, labels), silhouette=sil)


def iterations_to(curve: Sequence[Sequence[float]],
                  level: float) -> float:
    """First iteration at which a validation curve reaches ``level``.

    Args:
        curve (Sequence): ``[(iteration, value), ...]`` in order.
        level (float): The fixed level.

    Returns:
        float: linearly interpolated iteration, NaN when never reached.
    """
    prev = None
    for it, val in curve:
        if val >= level:
            if prev is None or prev[1] >= level:
                return float(it)
            (i0, v0) = prev
            return float(i0 + (level - v0) / (val - v0) * (it - i0))
        prev = (it, val)
    return math.nan


# --------------------------------------------------------------------------
# provenance
# --------------------------------------------------------------------------
def source_hash(root: str = osp.join(REPO, 'rsitr_mm')) -> str:
    """SHA-256 over the package's source files (path and bytes)."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in sorted(os.walk(root)):
        dirnames[:] = sorted(d for d in dirnames
                             if d != '__pycache__' and not d.startswith('.'))
        for name in sorted(filenames):
            if not name.endswith(('.py', '.txt', '.json')):
                continue
            path = osp.join(dirpath, name)
            digest.update(osp.relpath(path, root).encode())
            with open(path, 'rb') as f:
                digest.update(f.read())
    return digest.hexdigest()


def config_key(cfg, target: str, clip_dir: str) -> str:
    """SHA-256 of a resolved config, independent of where it runs: the
    work dir is dropped and the data / start folders are reduced to their
    names (which carry the generator's and the recipe's hashes)."""
    text = json.dumps(
        {k: v for k, v in cfg.to_dict().items() if k != 'work_dir'},
        sort_keys=True,
        default=repr)
    for path, tag in ((osp.abspath(target), '<target>'),
                      (osp.abspath(clip_dir), '<clip>'), (target, '<target>'),
                      (clip_dir, '<clip>')):
        text = text.replace(path, tag)
    text += '|' + osp.basename(osp.dirname(osp.abspath(target)))
    text += '|' + osp.basename(osp.abspath(clip_dir))
    return hashlib.sha256(text.encode()).hexdigest()


def stale_reasons(result: dict, provenance: dict) -> List[str]:
    """Why a stored run does not belong to this code and config."""
    stored = result.get('provenance') or {}
    return [
        f'{k}: stored {str(stored.get(k))[:12]} != current {str(v)[:12]}'
        for k, v in provenance.items()
        if k in ('variant', 'config_key', 'source_hash', 'seed')
        and stored.get(k) != v
    ]


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


def score(model, loader, return_images: bool = False):
    """Encode the test loader, return exact metrics and per-query ranks
    (and, with ``return_images``, the (N, D) image embeddings as numpy)."""
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
    if return_images:
        return metrics, i2t, t2i, image_feat.float().cpu().numpy()
    return metrics, i2t, t2i


def make_val_curve_hook(loader, every: int, curve: list):
    """An mmengine hook that scores ``loader`` (exact rsum) every ``every``
    training iterations and at the end, appending ``[iter, rsum]`` to
    ``curve`` (STL's convergence claim is read from these curves)."""
    from mmengine.hooks import Hook

    class ValCurveHook(Hook):
        priority = 'LOW'

        def _score(self, runner, done: int) -> None:
            model = runner.model
            model = model.module if hasattr(model, 'module') else model
            was_training = model.training
            metrics, _, _ = score(model, loader)
            curve.append([done, float(metrics['rsum'])])
            model.train(was_training)

        def before_train(self, runner) -> None:
            if not curve:
                self._score(runner, 0)

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None) -> None:
            done = runner.iter + 1
            if done % every == 0 or done == runner.max_iters:
                self._score(runner, done)

    return ValCurveHook()


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


def _dominant_nouns(ann: str, top_k: int = 30) -> np.ndarray:
    """(N,) index of each test image's dominant caption noun (-1: none), in
    the test split's json order (the order of the scored images)."""
    from rsitr_mm.datasets.object_priors import build_object_priors
    with open(ann, encoding='utf-8') as f:
        names = [
            osp.basename(im['filename']) for im in json.load(f)['images']
            if im['split'] == 'test'
        ]
    priors = build_object_priors(ann, split='test', top_k=top_k)
    dom = np.asarray(priors.dominant())
    index = {osp.basename(n): i for i, n in enumerate(priors.filenames)}
    return np.array([dom[index[n]] if n in index else -1 for n in names])


def run_one(variant: Variant,
            target: str,
            clip_dir: str,
            seed: int,
            epochs: Optional[int],
            run_dir: str,
            switch_off,
            cfg_options=None,
            source: Optional[str] = None,
            val_every: int = 26) -> dict:
    """Train (unless done), score, and score the switch-offs of one run.

    A stored run is reused only when its provenance (variant, seed, the
    key of the resolved config and the package's source hash) matches;
    otherwise it is moved aside to ``<run_dir>.stale-<n>`` and re-run.
    """
    import torch
    from mmengine.config import Config
    from mmengine.runner import Runner

    result_file = osp.join(run_dir, 'result.json')
    cfg = build_config(variant.config, target, clip_dir, seed, epochs,
                       run_dir, cfg_options)
    provenance = dict(
        variant=variant.key,
        seed=seed,
        config=variant.config,
        config_key=config_key(cfg, target, clip_dir),
        source_hash=source or source_hash(),
        commit=_git_commit())
    ckpt = osp.join(run_dir, f'epoch_{cfg.train_cfg.max_epochs}.pth')
    wanted = {'base'} | {f'off_{n}' for n in variant.switch_offs}
    result = None
    if osp.isfile(result_file):
        with open(result_file, encoding='utf-8') as f:
            stored = json.load(f)
        why = stale_reasons(stored, provenance)
        if why:
            pass
        elif osp.isfile(ckpt):
            result = stored
        else:
            why = ['no checkpoint']
    elif osp.isdir(run_dir) and os.listdir(run_dir):
        why = ['no result.json (an interrupted run): provenance unknown']
    else:
        why = []
    if why and osp.isdir(run_dir):
        n = 0
        while osp.exists(f'{run_dir}.stale-{n}'):
            n += 1
        os.replace(run_dir, f'{run_dir}.stale-{n}')
        print(f'  stale run moved to {run_dir}.stale-{n} (' + '; '.join(why)
              + '): re-running', flush=True)
    if result is not None:
        # a switch-off that raised is not retried (delete result.json)
        have = set(result.get('scores', {})) | set(result.get('failed', []))
        if wanted <= have or (switch_off is None and 'base' in have):
            return result
    else:
        result = dict(
            config=variant.config,
            seed=seed,
            scores={},
            provenance=provenance)
    os.makedirs(run_dir, exist_ok=True)
    runner = Runner.from_cfg(cfg)
    if osp.isfile(ckpt):
        runner.load_checkpoint(ckpt, map_location='cpu')
    else:
        val_cfg = Config.fromfile(osp.join(REPO, 'configs',
                                           variant.config)).val_dataloader
        val_cfg.dataset.data_root = target
        val_cfg.num_workers = 0
        val_cfg.persistent_workers = False
        curve: list = []
        if val_every > 0:
            runner.register_hook(
                make_val_curve_hook(
                    runner.build_dataloader(val_cfg, seed=seed), val_every,
                    curve))
        start = time.time()
        runner.train()
        result['train_seconds'] = round(time.time() - start, 1)
        result['val_curve'] = curve
    loader = runner.build_dataloader(cfg.test_dataloader, seed=seed)
    model = runner.model
    model = model.module if hasattr(model, 'module') else model
    todo = [('base', None)] + [(f'off_{n}', n) for n in variant.switch_offs]
    nouns = None  # dominant caption noun per test image, read once
    for key, name in todo:
        if key in result['scores'] or key in result.get(
                'failed', []) or (name is not None and switch_off is None):
            continue
        start = time.time()
        try:
            if name is None:
                metrics, i2t, t2i, img = score(model, loader, True)
            else:
                with switch_off(model, name):
                    metrics, i2t, t2i, img = score(model, loader, True)
        except (KeyError, ValueError, AttributeError, NotImplementedError,
                TypeError) as err:
            result.setdefault(
                'notes', []).append(f'switch-off {name!r} failed: {err!r}')
            result.setdefault('failed', []).append(key)
            continue
        np.savez_compressed(
            osp.join(run_dir, f'ranks_{key}.npz'), i2t=i2t, t2i=t2i)
        entry = dict(metrics=metrics, seconds=round(time.time() - start, 1))
        try:
            if nouns is None:
                nouns = _dominant_nouns(
                    osp.join(target, 'dataset_synthetic.json'))
            entry['mechanism'] = category_overlap(img, nouns)
        except Exception as err:  # a measurement must not lose the run
            entry['mechanism_error'] = repr(err)
        result['scores'][key] = entry
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


def load_runs(method: str, root: str, seeds: Sequence[int],
              current: Dict[Tuple[str, int], dict]
              ) -> Tuple[dict, List[str]]:
    """Stored results whose provenance matches ``current`` (per variant and
    seed, since the seed is part of the resolved config:
    ``{(key, seed): dict(config_key=..., source_hash=...)}``); the others
    are listed in the notes and left out."""
    runs, notes = {}, []
    for v in VARIANTS[method]:
        for seed in seeds:
            path = osp.join(root, v.key, f'seed_{seed}', 'result.json')
            if not osp.isfile(path):
                continue
            with open(path, encoding='utf-8') as f:
                result = json.load(f)
            why = stale_reasons(result,
                                dict(variant=v.key, seed=seed,
                                     **current[(v.key, seed)]))
            if why:
                notes.append(f'{v.key} seed {seed} left out (stale: '
                             + '; '.join(why) + ')')
                continue
            runs[(v.key, seed)] = result
    return runs, notes


def _row_parts(row: str) -> Tuple[str, str]:
    variant, _, score_key = row.partition('|')
    return variant, score_key or 'base'


def _row_label(method: str, row: str) -> str:
    variant, score_key = _row_parts(row)
    v = {x.key: x for x in VARIANTS[method]}[variant]
    label = v.name + (' (post hoc)' if v.post_hoc else '')
    if score_key != 'base':
        label += f', {score_key[4:]} switched off at test time'
    return label


def _seeds_of(runs: dict, row: str, seeds: Sequence[int]) -> List[int]:
    variant, score_key = _row_parts(row)
    return [
        s for s in seeds if (variant, s) in runs
        and score_key in runs[(variant, s)].get('scores', {})
    ]


def summarize(method: str,
              root: str,
              seeds: Sequence[int],
              num_samples: int,
              notes: List[str],
              runs: dict,
              held_out: Optional[np.ndarray] = None) -> dict:
    """Per-row mean +- SD over seeds and every declared contrast with a
    seed interval and the hierarchical (seeds x images) bootstrap.

    ``held_out`` (bool (N,) over test images) repeats each contrast's rsum
    on the image and caption queries of those images (the gallery stays
    the whole test split).
    """
    rows_out = []
    row_names = []
    for v in VARIANTS[method]:
        row_names.append(v.key)
        row_names += [f'{v.key}|off_{n}' for n in v.switch_offs]
    hits_cache: Dict[Tuple[str, int], np.ndarray] = {}

    def hits(row, seed):
        variant, score_key = _row_parts(row)
        if (row, seed) not in hits_cache:
            hits_cache[(row, seed)] = _hits(
                osp.join(root, variant, f'seed_{seed}'), score_key)
        return hits_cache[(row, seed)]

    for row in row_names:
        have = _seeds_of(runs, row, seeds)
        if not have:
            continue
        variant, score_key = _row_parts(row)
        per_seed = [
            runs[(variant, s)]['scores'][score_key]['metrics'] for s in have
        ]
        entry = dict(
            key=row,
            name=_row_label(method, row),
            seeds=have,
            summary={
                m: dict(
                    zip(('mean', 'sd'), mean_sd([p[m] for p in per_seed])))
                for m in METRIC_KEYS
            })
        mech = [
            runs[(variant, s)]['scores'][score_key].get('mechanism')
            for s in have
        ]
        if all(mech):
            entry['mechanism'] = {
                k: dict(zip(('mean', 'sd'), mean_sd([m[k] for m in mech])))
                for k in mech[0]
            }
        secs = [runs[(variant, s)].get('train_seconds') for s in have]
        secs = [x for x in secs if x is not None]
        entry['train_seconds'] = float(np.mean(secs)) if secs else None
        if held_out is not None and held_out.any():
            entry['held_out_rsum'] = dict(
                zip(('mean', 'sd'),
                    mean_sd([
                        metrics_from_hits(hits(row, s)[held_out])[-1]
                        for s in have
                    ])))
        rows_out.append(entry)

    # the fixed validation level of the convergence measure
    ref = VARIANTS[method][0].key
    finals = [
        runs[(ref, s)]['val_curve'][-1][1] for s in seeds
        if (ref, s) in runs and runs[(ref, s)].get('val_curve')
    ]
    level = CONVERGENCE_LEVEL * float(np.mean(finals)) if finals else None

    def to_level(variant, s):
        curve = runs[(variant, s)].get('val_curve') or []
        return iterations_to(curve, level) if level is not None else math.nan

    for entry in rows_out:
        variant, score_key = _row_parts(entry['key'])
        if score_key == 'base' and level is not None:
            its = [to_level(variant, s) for s in entry['seeds']]
            entry['iters_to_level'] = dict(
                zip(('mean', 'sd'), mean_sd(its)), reached=int(
                    np.isfinite(its).sum()))

    contrasts = []
    for a, b, what in CONTRASTS[method]:
        paired = [
            s for s in _seeds_of(runs, a, seeds)
            if s in _seeds_of(runs, b, seeds)
        ]
        if not paired:
            continue
        ha = [hits(a, s) for s in paired]
        hb = [hits(b, s) for s in paired]
        diffs = np.array([
            metrics_from_hits(x) - metrics_from_hits(y)
            for x, y in zip(ha, hb)
        ])  # (S, M)
        c = dict(
            a=a,
            b=b,
            what=what,
            label=f'{_row_label(method, a)} - {_row_label(method, b)}',
            seeds=paired,
            seed_interval={
                m: seed_interval(diffs[:, j])
                for j, m in enumerate(METRIC_KEYS) if m in ('mR', 'rsum')
            },
            hierarchical={
                m: d
                for m, d in seed_image_bootstrap(ha, hb, num_samples).items()
                if m in ('mR', 'rsum')
            })
        c['effect'] = bool(c['hierarchical']['rsum']['low'] > 0
                           or c['hierarchical']['rsum']['high'] < 0)
        if held_out is not None and held_out.any():
            c['held_out_rsum'] = seed_image_bootstrap(
                [h[held_out] for h in ha], [h[held_out] for h in hb],
                num_samples)['rsum']
        va, ka = _row_parts(a)
        vb, kb = _row_parts(b)
        mech_a = [runs[(va, s)]['scores'][ka].get('mechanism') for s in paired]
        mech_b = [runs[(vb, s)]['scores'][kb].get('mechanism') for s in paired]
        if all(mech_a) and all(mech_b):
            c['mechanism'] = {
                k: seed_interval([x[k] - y[k] for x, y in zip(mech_a, mech_b)])
                for k in mech_a[0]
            }
        if level is not None and ka == kb == 'base':
            c['iters_to_level'] = seed_interval(
                [to_level(va, s) - to_level(vb, s) for s in paired])
        contrasts.append(c)
    return dict(
        method=method,
        seeds=list(seeds),
        held_out_images=int(held_out.sum()) if held_out is not None else 0,
        rows=rows_out,
        contrasts=contrasts,
        convergence_level=level,
        notes=notes,
        bootstrap_samples=num_samples)


def _k(row: str) -> str:
    """A row key for a markdown cell (``|`` would split the cell)."""
    return row.replace('|', ' ')


def _ci(d: dict, digits: int = 2) -> str:
    if not (math.isfinite(d['low']) and math.isfinite(d['high'])):
        return 'n/a'
    return f'[{d["low"]:+.{digits}f}, {d["high"]:+.{digits}f}]'


def format_markdown(summary: dict) -> str:
    """The report: rows (mean +- SD over seeds), then the contrasts with
    both intervals, then the mechanism measures."""
    cols = [
        'i2t_R@1', 'i2t_R@5', 'i2t_R@10', 't2i_R@1', 't2i_R@5', 't2i_R@10',
        'mR', 'rsum'
    ]
    lines = [
        '| variant | seeds | ' + ' | '.join(cols) + ' |',
        '|---|---:|' + '---:|' * len(cols)
    ]
    for row in summary['rows']:
        vals = ' | '.join(f'{row["summary"][c]["mean"]:.2f} +- '
                          f'{row["summary"][c]["sd"]:.2f}' for c in cols)
        lines.append(f'| `{_k(row["key"])}`: {row["name"]} | {len(row["seeds"])} | '
                     f'{vals} |')
    lines += [
        '', 'Contrasts (a - b, paired by seed). Seed interval: t-interval '
        'of the per-seed differences (training seeds only). Seeds x images: '
        'hierarchical bootstrap (seeds and test images resampled together); '
        'an effect is called only when it excludes 0.', '',
        '| contrast | what it measures | seeds | rsum diff | seed 95% CI | '
        'seeds x images 95% CI | effect? | mR diff | mR seeds x images 95% '
        'CI |', '|---|---|---:|---:|---:|---:|:---:|---:|---:|'
    ]
    for c in summary.get('contrasts', []):
        r, m = c['hierarchical']['rsum'], c['hierarchical']['mR']
        lines.append(
            f'| `{_k(c["a"])} - {_k(c["b"])}` | {c["what"]} | {len(c["seeds"])} | '
            f'{r["diff"]:+.2f} | {_ci(c["seed_interval"]["rsum"])} | '
            f'{_ci(r)} | {"yes" if c["effect"] else "no"} | '
            f'{m["diff"]:+.2f} | {_ci(m)} |')
    if any('held_out_rsum' in c for c in summary.get('contrasts', [])):
        lines += [
            '', 'The same contrasts on the test images that show a held-out '
            'colour x kind combination '
            f'({summary.get("held_out_images", "?")} images, their image and '
            'caption queries; gallery = whole test split):', '',
            '| contrast | rsum diff | seeds x images 95% CI |',
            '|---|---:|---:|'
        ]
        for c in summary['contrasts']:
            h = c.get('held_out_rsum')
            if h:
                lines.append(f'| `{_k(c["a"])} - {_k(c["b"])}` | {h["diff"]:+.2f} | '
                             f'{_ci(h)} |')
    mech_rows = [r for r in summary['rows'] if 'mechanism' in r]
    if mech_rows:
        level = summary.get('convergence_level')
        lines += [
            '', 'Mechanisms: object-category overlap of the test image '
            'embeddings by dominant caption noun (kNN purity, k = 10, and '
            'cosine silhouette; higher = less overlap, what OSFCM claims), '
            'and iterations to reach a fixed validation rsum ('
            + (f'{level:.1f}' if level is not None else 'n/a') +
            f' = {CONVERGENCE_LEVEL:g} x the reference\'s final; what STL '
            'claims to shorten):', '',
            '| variant | kNN purity | silhouette | iterations to the level '
            '(runs reaching it) |', '|---|---:|---:|---:|'
        ]
        for r in mech_rows:
            mm = r['mechanism']
            it = r.get('iters_to_level')
            its = ('n/a' if not it else
                   f'{it["mean"]:.0f} +- {it["sd"]:.0f} ({it["reached"]}/'
                   f'{len(r["seeds"])})')
            lines.append(
                f'| `{_k(r["key"])}` | {mm["knn_purity"]["mean"]:.4f} +- '
                f'{mm["knn_purity"]["sd"]:.4f} | '
                f'{mm["silhouette"]["mean"]:.4f} +- '
                f'{mm["silhouette"]["sd"]:.4f} | {its} |')
        lines += [
            '', '| contrast | kNN purity diff [seed 95% CI] | silhouette '
            'diff [seed 95% CI] | iterations diff [seed 95% CI] |',
            '|---|---:|---:|---:|'
        ]
        for c in summary['contrasts']:
            if 'mechanism' not in c:
                continue
            p, q = c['mechanism']['knn_purity'], c['mechanism']['silhouette']
            it = c.get('iters_to_level')
            its = 'n/a' if not it or not math.isfinite(it['mean']) else (
                f'{it["mean"]:+.0f} {_ci(it)}')
            lines.append(f'| `{_k(c["a"])} - {_k(c["b"])}` | {p["mean"]:+.4f} '
                         f'{_ci(p, 4)} | {q["mean"]:+.4f} {_ci(q, 4)} | '
                         f'{its} |')
    lines.append('')
    lines.append(f'Seeds requested: {summary["seeds"]}; rows give mean +- SD '
                 'over the seeds each variant has; contrasts use the seeds '
                 f'both rows have. Bootstrap: {summary["bootstrap_samples"]} '
                 'resamples (each image with its 5 captions).')
    for note in summary['notes']:
        lines.append(f'Note: {note}')
    return '\n'.join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--method', choices=sorted(VARIANTS), required=True)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2, 3, 4])
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
        help='subset of the declared variant keys to run (the report '
        'covers every stored run that matches the current code and config)')
    parser.add_argument(
        '--seed-major',
        action='store_true',
        help='run every variant of a seed before the next seed (so a '
        'stopped call leaves complete seeds)')
    parser.add_argument(
        '--report-only',
        action='store_true',
        help='train nothing: report the stored runs that match')
    parser.add_argument(
        '--val-every',
        type=int,
        default=26,
        help='score the validation split every N iterations for the '
        'convergence curves (0: off)')
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
    declared = {v.key: v for v in VARIANTS[args.method]}
    if args.variants:
        bad = sorted(set(args.variants) - set(declared))
        if bad:
            print(
                f'error: --variants {bad} unknown for {args.method}; '
                f'declared: {sorted(declared)} (declare a new variant in '
                'VARIANTS first, with post_hoc=True if results were seen)',
                file=sys.stderr)
            return 2
    keys = [k for k in declared if not args.variants or k in args.variants]
    notes: List[str] = []
    switch_off, why = (None, 'switch-offs disabled (--no-switch-off)') \
        if args.no_switch_off else load_switch_off()
    if why:
        notes.append(why)
    target, clip_dir = prepare(args)
    root = osp.join(args.work_dir, args.method)
    source = source_hash()
    current = {(k, seed): dict(
        config_key=config_key(
            build_config(v.config, target, clip_dir, seed, args.epochs, '',
                         args.cfg_options), target, clip_dir),
        source_hash=source)
               for k, v in declared.items() for seed in args.seeds}
    t0 = time.time()
    if not args.report_only:
        order = ([(k, s) for s in args.seeds for k in keys]
                 if args.seed_major else
                 [(k, s) for k in keys for s in args.seeds])
        for key, seed in order:
            print(
                f'=== {args.method} {key} seed {seed} '
                f'({time.time() - t0:.0f} s)',
                flush=True)
            result = run_one(declared[key], target, clip_dir, seed,
                             args.epochs,
                             osp.join(root, key, f'seed_{seed}'), switch_off,
                             args.cfg_options, source, args.val_every)
            for note in result.get('notes', []):
                if note not in notes:
                    notes.append(note)
    runs, stale = load_runs(args.method, root, args.seeds, current)
    notes += stale
    if not runs:
        print('error: no stored run matches the current code and config',
              file=sys.stderr)
        return 2
    with open(
            osp.join(target, 'dataset_synthetic.json'), encoding='utf-8') as f:
        held_out = np.array([
            bool(im.get('scene', {}).get('held_out', False))
            for im in json.load(f)['images'] if im['split'] == 'test'
        ])
    summary = summarize(args.method, root, args.seeds, args.bootstrap, notes,
                        runs, held_out)
    summary.update(
        commit=_git_commit(),
        source_hash=source,
        command='python tools/analysis_tools/run_ablation.py ' +
        ' '.join(sys.argv[1:] if argv is None else argv),
        machine=f'{platform.machine()} CPU x{os.cpu_count()}, '
        f'{platform.system()}',
        total_seconds=round(time.time() - t0, 1))
    table = format_markdown(summary)
    print(table)
    os.makedirs(root, exist_ok=True)
    with open(osp.join(root, 'ablation.md'), 'w', encoding='utf-8') as f:
        f.write(table + '\n')
    with open(osp.join(root, 'ablation.json'), 'w', encoding='utf-8') as f:
        json.dump(summary, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
