# Copyright (c) rsitr_mm contributors. All rights reserved.
"""What does each added module do in a trained model?

Command line::

    python tools/analysis_tools/module_contribution.py CONFIG CHECKPOINT \
        [--num-batches 20] [--switches dapn osfcm] [--out result.json]

prints, for the test split of ``CONFIG``:

* each module's share of the embedding: ``|e - e_off| / |e|`` (mean over
  rows, before L2 normalisation) where ``e_off`` is the embedding with that
  module switched off on the SAME weights;
* the attention / salience entropies (normalised to ``[0, 1]``; 1 is a
  uniform map) of DAPN and BSD;
* the test metrics of the full model and with each module switched off.

Modules that act through their loss only (OSFCM's clustering objective, LSD
with ``retrieval_mode='full'``, STL) leave the test-time embedding
unchanged; for them :func:`gradient_share_trace` measures, update by update,
their loss's share of the gradient at the embeddings (what reaches the
encoders).

Python API (used by the ablation runner as well)::

    from module_contribution import (available_switches, switch_off,
                                     module_contributions, map_entropies)
    with switch_off(model, 'dapn'):          # or several names at once
        metrics = runner.test()
    shares = module_contributions(model, batches)   # {name: {...}}

Switch names (:data:`SWITCHES`): ``dapn`` (DAPN returns CLIP's global
embedding), ``dapn_context`` / ``dapn_region`` (one DAPN branch),
``bsd_clues`` (BSD returns the plain pooled deepest stage; alias
``plain_pooling``), ``bsd_suppression`` (SGS off), ``bsd_salience`` (clues
pooled with a plain average), ``lsd`` and ``osfcm`` (the head's embedding
transform off). They act through each module's ``disable(part)`` context
manager (:mod:`rsitr_mm.models.necks.switchable`); a name whose module the
model lacks raises ``KeyError``.

``batches`` are dataloader batches (``dict(inputs=..., data_samples=...)``,
run through the model's data preprocessor) or ``(images, data_samples)``
pairs already on the model's device.
"""
import argparse
import json
import math
from contextlib import ExitStack, contextmanager
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

import torch
import torch.nn as nn

SWITCHES: Dict[str, Tuple[str, str]] = {
    'dapn': ('DualAttentionPerception', 'dapn'),
    'dapn_context': ('DualAttentionPerception', 'context'),
    'dapn_region': ('DualAttentionPerception', 'region'),
    'bsd_clues': ('BidirectionalScaleDecoupling', 'clues'),
    'bsd_suppression': ('BidirectionalScaleDecoupling', 'suppression'),
    'bsd_salience': ('BidirectionalScaleDecoupling', 'salience'),
    'lsd': ('LabelSemanticHead', 'lsd'),
    'osfcm': ('ObjectSemanticClusterHead', 'osfcm'),
}
ALIASES = {'plain_pooling': 'bsd_clues', 'suppression': 'bsd_suppression'}


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, 'module', model)


def _targets(model: nn.Module, name: str) -> List[Tuple[nn.Module, str]]:
    key = ALIASES.get(name, name)
    if key not in SWITCHES:
        raise KeyError(f'module_contribution: unknown switch {name!r}; '
                       f'expected one of {sorted(SWITCHES)}.')
    cls_name, part = SWITCHES[key]
    found = [(m, part) for m in _unwrap(model).modules()
             if type(m).__name__ == cls_name and part in m.SWITCHES]
    if not found:
        raise KeyError(f'module_contribution: switch {name!r} needs a '
                       f'{cls_name} (with part {part!r}) in the model.')
    return found


def available_switches(model: nn.Module) -> List[str]:
    """The switch names that apply to ``model``."""
    out = []
    for name in SWITCHES:
        try:
            _targets(model, name)
        except KeyError:
            continue
        out.append(name)
    return out


@contextmanager
def switch_off(model: nn.Module, *names: str) -> Iterator[nn.Module]:
    """Switch the named modules off inside the block (same weights)."""
    with ExitStack() as stack:
        for name in names:
            for module, part in _targets(model, name):
                stack.enter_context(module.disable(part))
        yield model


def _prepare(model: nn.Module, batch) -> Tuple[torch.Tensor, list]:
    if isinstance(batch, dict):
        data = model.data_preprocessor(batch, False)
        images = data.get('images', data.get('inputs'))
        return images, data.get('data_samples')
    images, samples = batch
    return images, samples


def _texts(samples) -> List[str]:
    texts: List[str] = []
    for s in samples or []:
        text = getattr(s, 'text', None)
        if text is not None:
            texts.extend([text] if isinstance(text, str) else list(text))
    return texts


def raw_embeddings(model: nn.Module, images: torch.Tensor,
                   samples) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Image and caption embeddings after the heads, not normalised."""
    model = _unwrap(model)
    img = model.image_features(images)
    texts = _texts(samples)
    txt = model.text_features(texts) if texts else None
    for head in model.heads:
        if hasattr(head, 'embed'):
            img, txt = head.embed(img, txt)
    return img, txt


def _share(full: Optional[torch.Tensor],
           off: Optional[torch.Tensor]) -> Optional[float]:
    if full is None or off is None:
        return None
    ratio = (full - off).norm(dim=-1) / full.norm(dim=-1).clamp_min(1e-12)
    return float(ratio.mean())


@torch.no_grad()
def module_contributions(
    model: nn.Module,
    batches: Iterable,
    names: Optional[Iterable[str]] = None
) -> Dict[str, Dict[str, Optional[float]]]:
    """Each module's share of the embedding, averaged over ``batches``.

    Returns:
        dict: ``{name: {'image': s_i, 'text': s_t, 'share': max}}`` with
        ``s = mean_rows |e - e_off| / |e|`` (None for a modality the module
        does not touch or the batches lack).
    """
    names = list(names) if names is not None else available_switches(model)
    sums = {n: {'image': [], 'text': []} for n in names}
    for batch in batches:
        images, samples = _prepare(model, batch)
        full = raw_embeddings(model, images, samples)
        for n in names:
            with switch_off(model, n):
                off = raw_embeddings(model, images, samples)
            for key, a, b in (('image', full[0], off[0]), ('text', full[1],
                                                           off[1])):
                value = _share(a, b)
                if value is not None:
                    sums[n][key].append(value)
    out = {}
    for n, parts in sums.items():
        res = {k: (sum(v) / len(v) if v else None) for k, v in parts.items()}
        res['share'] = max([v for v in res.values() if v is not None],
                           default=0.0)
        out[n] = res
    return out


#: Loss-only modules and the loss keys they produce (prefix match).
LOSS_GROUPS: Dict[str, Tuple[str, ...]] = {
    'osfcm': ('loss_osfcm', ),
    'lsd': ('loss_lsd', ),
    'stl': ('loss_stl', 'loss_semanticguidedtriplet'),
}


def loss_gradient_shares(model: nn.Module, images: torch.Tensor, samples,
                         groups: Optional[Dict[str, Tuple[str, ...]]] = None
                         ) -> Tuple[Dict[str, float], Dict[str, torch.Tensor]]:
    """One training forward; each loss group's share of the gradient at the
    embeddings.

    A module that acts through its loss only (OSFCM as the paper describes
    it, LSD with ``retrieval_mode='full'``, STL) does not change the
    embedding at test time; it is alive when its loss's gradient reaches
    the encoders. This measures it where the encoders end: with ``e`` the
    image and caption embeddings as the towers (and necks) return them,
    ``share = |d L_group / d e| / |d L_total / d e|`` (Frobenius norms over
    both modalities).

    Args:
        model (nn.Module): a ``DualEncoderRetriever`` in training mode.
        images (Tensor): (B, 3, H, W) preprocessed images.
        samples (list): B training samples (one caption each).
        groups (dict, optional): ``{name: loss-key prefixes}``; defaults to
            :data:`LOSS_GROUPS`.

    Returns:
        tuple: ``({name: share}, losses)`` for the groups whose keys occur
        in the losses, and the loss dict (its graph kept, for the update).
    """
    module = _unwrap(model)
    groups = LOSS_GROUPS if groups is None else groups
    captured: Dict[str, torch.Tensor] = {}

    def capture(name, fn):
        def inner(*args, **kwargs):
            out = fn(*args, **kwargs)
            captured[name] = out
            return out
        return inner

    module.image_features = capture('image', module.image_features)
    module.text_features = capture('text', module.text_features)
    try:
        losses = module.loss(images, samples)
    finally:
        del module.image_features, module.text_features
    embs = [captured['image'], captured['text']]

    def grad_norm(value: torch.Tensor) -> float:
        grads = torch.autograd.grad(
            value, embs, retain_graph=True, allow_unused=True)
        return float(
            sum((g.float()**2).sum() for g in grads if g is not None)**0.5)

    total = grad_norm(sum(losses.values()))
    shares = {}
    for name, prefixes in groups.items():
        keys = [k for k in losses if k.startswith(prefixes)]
        if keys:
            part = grad_norm(sum(losses[k] for k in keys))
            shares[name] = part / total if total > 0 else 0.0
    return shares, losses


def gradient_share_trace(model: nn.Module, optim_wrapper, batches: Iterable,
                         steps: int = 50) -> Dict[str, List[float]]:
    """Train ``steps`` updates with ``optim_wrapper`` on ``batches`` (cycled)
    and record each loss group's gradient share at every update.

    Returns:
        dict: ``{name: [share at update 1, ..., share at update steps]}``.
    """
    batches = list(batches)
    trace: Dict[str, List[float]] = {}
    model.train()
    for step in range(steps):
        images, samples = _prepare(model, batches[step % len(batches)])
        shares, losses = loss_gradient_shares(model, images, samples)
        for name, value in shares.items():
            trace.setdefault(name, []).append(value)
        optim_wrapper.update_params(sum(losses.values()))
    return trace


def _entropy(p: torch.Tensor) -> float:
    """Mean normalised entropy of rows of a (B, N) distribution."""
    n = p.size(1)
    if n < 2:
        return 1.0
    p = p / p.sum(dim=1, keepdim=True).clamp_min(1e-12)
    ent = -(p * p.clamp_min(1e-12).log()).sum(dim=1) / math.log(n)
    return float(ent.mean())


@torch.no_grad()
def map_entropies(model: nn.Module, batches: Iterable) -> Dict[str, float]:
    """Normalised entropies of DAPN's attentions and BSD's salience maps."""
    inner = _unwrap(model)
    neck = inner.image_neck
    if neck is None or not hasattr(neck, 'forward_with_maps'):
        return {}
    acc: Dict[str, List[float]] = {}
    for batch in batches:
        images, _ = _prepare(model, batch)
        _, maps = neck.forward_with_maps(inner.image_encoder(images))
        items = []
        if 'spatial' in maps:  # DAPN
            items.append(('dapn_spatial', maps['spatial']))
            items += [(f'dapn_region_s{s}', m)
                      for s, m in maps['regions'].items()]
            if maps['scale_weights'] is not None:
                items.append(('dapn_scales', maps['scale_weights']))
        for d, ms in maps.get('salience', {}).items():  # BSD
            items += [(f'bsd_salience_{d}_{i}', m) for i, m in enumerate(ms)]
        for key, m in items:
            acc.setdefault(key, []).append(_entropy(m.flatten(1).float()))
    return {k: sum(v) / len(v) for k, v in acc.items()}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--work-dir', default=None)
    parser.add_argument(
        '--num-batches',
        type=int,
        default=20,
        help='test batches used for shares and entropies')
    parser.add_argument(
        '--switches',
        nargs='+',
        default=None,
        help='switch names (default: all that apply)')
    parser.add_argument(
        '--no-metrics',
        action='store_true',
        help='skip the switched-off test runs')
    parser.add_argument('--out', default=None, help='write the JSON here')
    return parser.parse_args()


def main() -> None:
    import itertools

    import rsitr_mm  # noqa: F401  (registers modules)
    from mmengine.config import Config
    from mmengine.runner import Runner

    from rsitr_mm.engine.launch import default_work_dir
    args = parse_args()
    cfg = Config.fromfile(args.config)
    default_work_dir(cfg, args.config, args.work_dir)
    cfg.load_from = args.checkpoint
    runner = Runner.from_cfg(cfg)
    result = dict(metrics={})
    if not args.no_metrics:
        result['metrics']['full'] = runner.test()  # loads the checkpoint
    else:
        runner.load_or_resume()
    model = runner.model
    model.eval()
    names = args.switches or available_switches(model)
    batches = list(itertools.islice(runner.test_dataloader, args.num_batches))
    result['shares'] = module_contributions(model, batches, names)
    result['entropies'] = map_entropies(model, batches)
    if not args.no_metrics:
        for n in names:
            with switch_off(model, n):
                result['metrics'][f'{n}_off'] = runner.test()
    text = json.dumps(result, indent=2, default=float)
    print(text)
    if args.out:
        with open(args.out, 'w', encoding='utf-8') as f:
            f.write(text)


if __name__ == '__main__':
    main()
