# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Kernel-launching ATen ops of one training step, by region of the model.

Builds the model of ``CONFIG`` (tiny random towers by default, or the
config's full-size architecture with random weights, ``--random-init``),
runs one warm-up step (reported apart as ``first_step_small``: caches such
as DAPN's pooling constants are built, and OSFCM's prototype update runs
while a batch brings nouns not seen before), then
counts every ATen op of one training step
(data preprocessor, forward, loss, backward) with a ``TorchDispatchMode``.
Ops that launch no kernel are left out: views and other aliasing ops
(``view``, ``t``, ``expand``, ``select``, ...) and allocations without a
fill (``empty``). An op is assigned to the region that ran it:

* forward ops to the innermost of ``image_encoder``, ``image_neck``,
  ``text_encoder``, ``image_proj``, ``text_proj``, ``heads.i``,
  ``losses.i`` (named by class) or ``glue`` (the retriever's own code,
  the data preprocessor);
* backward ops to the region whose forward op created the autograd node
  being run (``backward:<region>``); gradient accumulation into leaves is
  ``backward:accumulate``.

It also counts the host syncs of the step
(:class:`~rsitr_mm.utils.host_syncs.HostSyncCounter`, reads only on the
CPU). The sum the issue budgets is printed as ``small regions``: the neck
(DAPN), the heads (OSFCM), the losses (InfoNCE) and glue, forward and
backward.

Examples::

    # CPU, tiny towers (op counts do not depend on the widths)
    python tools/benchmarks/op_census.py configs/osdpm_rsicd.py
    # bf16 autocast (CPU autocast; the casts are counted like on a GPU)
    python tools/benchmarks/op_census.py configs/osdpm_rsicd.py \\
        --precision bf16 --json census.json
"""
import argparse
import copy
import json
import os.path as osp
import sys
import tempfile
from collections import Counter, defaultdict
from typing import Dict, List

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.overrides import TorchFunctionMode

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import rsitr_mm  # noqa: E402,F401
from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmpretrain.registry import MODELS  # noqa: E402

from rsitr_mm.utils.host_syncs import HostSyncCounter  # noqa: E402

#: allocations that launch no kernel
NO_KERNEL = {'empty', 'empty_strided', 'empty_like', 'new_empty',
             'new_empty_strided', 'lift_fresh', 'set_'}
#: top-level regions of a DualEncoderRetriever
REGIONS = ('image_encoder', 'image_neck', 'text_encoder', 'image_proj',
           'text_proj', 'heads', 'losses')
#: the regions the issue's op budget covers (with their backward)
SMALL = ('image_neck', 'heads', 'losses', 'glue')


def launches_kernel(func) -> bool:
    """Whether an ATen overload launches work (not a view / alias / bare
    allocation)."""
    name = func._schema.name.split('::')[-1]
    if name in NO_KERNEL:
        return False
    returns = func._schema.returns
    if returns and all(r.alias_info is not None and not r.alias_info.is_write
                       for r in returns):
        return False  # a view of an input
    return True


class _Census:
    """Shared state of the two modes: the region stack and the counts."""

    def __init__(self) -> None:
        self.stack: List[str] = ['glue']
        self.node_region: Dict[object, str] = {}
        self.counts: Counter = Counter()
        self.ops: Dict[str, Counter] = defaultdict(Counter)

    def tag(self, out) -> None:
        """Give the autograd nodes of ``out`` (a tensor or a sequence), and
        the untagged nodes behind them (a composite function such as einsum
        creates several), the current region."""
        outs = out if isinstance(out, (tuple, list)) else (out, )
        region = self.stack[-1]
        todo = [getattr(o, 'grad_fn', None) for o in outs
                if isinstance(o, torch.Tensor)]
        while todo:
            node = todo.pop()
            if node is None or node in self.node_region:
                continue
            self.node_region[node] = region
            todo.extend(n for n, _ in node.next_functions)


class _TagNodes(TorchFunctionMode):
    """Remember which region created each autograd node."""

    def __init__(self, census: _Census) -> None:
        super().__init__()
        self.census = census

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.census.tag(out)
        return out


def _function_classes(base=torch.autograd.Function):
    """Every custom ``autograd.Function`` subclass of this package."""
    for cls in base.__subclasses__():
        if cls.__module__.startswith('rsitr_mm'):
            yield cls
        yield from _function_classes(cls)


class _TagFunctionNodes:
    """Tag the nodes of this package's custom ``autograd.Function`` outputs
    with the region that applied them (``Function.apply`` does not pass
    through the function mode)."""

    def __init__(self, census: _Census) -> None:
        self.census = census
        self.patched: List[type] = []

    def _wrap(self, cls):
        original, census = cls.apply, self.census

        def apply(*args, **kwargs):
            out = original(*args, **kwargs)
            census.tag(out)
            return out

        return staticmethod(apply)

    def __enter__(self):
        for cls in set(_function_classes()):
            if 'apply' not in cls.__dict__:
                cls.apply = self._wrap(cls)
                self.patched.append(cls)
        return self

    def __exit__(self, *exc) -> None:
        for cls in self.patched:
            del cls.apply
        self.patched = []


class _CountOps(TorchDispatchMode):
    """Count kernel-launching ATen ops by region."""

    def __init__(self, census: _Census) -> None:
        super().__init__()
        self.census = census

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if launches_kernel(func):
            node = torch._C._current_autograd_node()
            if node is None:
                region = self.census.stack[-1]
            else:
                owner = self.census.node_region.get(node)
                if owner is None:
                    owner = 'accumulate' if 'AccumulateGrad' in \
                        node.name() else 'other'
                region = f'backward:{owner}'
            self.census.counts[region] += 1
            self.census.ops[region][str(func.overloadpacket.__name__)] += 1
        return func(*args, **(kwargs or {}))


def _region_names(model) -> Dict[torch.nn.Module, str]:
    names = {}
    for key in REGIONS:
        part = getattr(model, key, None)
        if isinstance(part, torch.nn.ModuleList):
            for i, m in enumerate(part):
                names[m] = f'{key}.{i}:{type(m).__name__}'
        elif isinstance(part, torch.nn.Module):
            names[part] = f'{key}:{type(part).__name__}'
    return names


def census_step(model, batch, precision: str = 'fp32') -> dict:
    """Ops and host syncs of one training step of ``model`` on ``batch``.

    Returns:
        dict: ``regions`` {region: ops}, ``ops`` {region: {op: n}},
        ``total``, ``small`` (the budgeted regions) and ``syncs``.
    """
    census = _Census()
    handles = []
    def enter(name):
        def hook(module, args):
            census.stack.append(name)
        return hook

    def leave(module, args, output):
        census.stack.pop()  # returns None: the output is kept

    def tagged(method, name):
        def run(*args, **kwargs):
            census.stack.append(name)
            try:
                return method(*args, **kwargs)
            finally:
                census.stack.pop()
        return run

    patched = []
    for module, name in _region_names(model).items():
        handles.append(module.register_forward_pre_hook(enter(name)))
        handles.append(module.register_forward_hook(leave))
        # heads are called through their methods, not their forward
        for method in ('loss', 'embed'):
            if callable(getattr(module, method, None)):
                setattr(module, method,
                        tagged(getattr(module, method), name))
                patched.append((module, method))
    device = next(model.parameters()).device
    syncs = HostSyncCounter()
    try:
        with _TagNodes(census), _TagFunctionNodes(census), \
                _CountOps(census), syncs:
            data = model.data_preprocessor(batch, True)
            with torch.autocast(device.type, dtype=torch.bfloat16,
                                enabled=precision == 'bf16'):
                losses = model(**data, mode='loss')
            # the total as the training step makes it
            loss = model.parse_losses(losses)[0]
            loss.backward()
    finally:
        for h in handles:
            h.remove()
        for module, method in patched:
            delattr(module, method)
    model.zero_grad(set_to_none=True)
    regions = dict(sorted(census.counts.items()))

    def small(region: str) -> bool:
        base = region.split(':', 1)[-1] if region.startswith(
            'backward:') else region
        return base.split('.')[0].split(':')[0] in SMALL

    return dict(
        regions=regions,
        ops={k: dict(v.most_common()) for k, v in census.ops.items()},
        total=sum(regions.values()),
        small=sum(n for r, n in regions.items() if small(r)),
        syncs=syncs.count,
        upstream_syncs=syncs.upstream,
        sync_sites=dict(syncs.by_site))


def build(config: str, tmp: str, random_init: bool, batch_size: int,
          image_size: int, device: str):
    """The config's model (tiny or full-size random towers) and a batch
    tokenised by the data pipeline's preparers."""
    from mmengine.dataset import default_collate

    from rsitr_mm.datasets.transforms import (CaptionDataCollate,
                                              PrepareCaptionData)
    from train_throughput import local_towers, make_batches
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(config)
    model_cfg = local_towers(cfg.model.to_dict(), tmp, tiny=not random_init)
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(model_cfg)).to(device).train()
    raw = make_batches(1, batch_size, image_size)[0]
    prepare = PrepareCaptionData(model.caption_data_preparers())
    items = [prepare(dict(inputs=img, data_samples=s))
             for img, s in zip(raw['inputs'], raw['data_samples'])]
    batch = CaptionDataCollate(default_collate, prepare)(items)
    return model, batch


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config', nargs='?',
                   default=osp.join(REPO, 'configs', 'osdpm_rsicd.py'))
    p.add_argument('--random-init', action='store_true',
                   help="the config's full-size towers, random weights")
    p.add_argument('--precision', default='fp32', choices=['fp32', 'bf16'])
    p.add_argument('--batch-size', type=int, default=8)
    p.add_argument('--image-size', type=int, default=None,
                   help='default: 32 tiny, 224 with --random-init')
    p.add_argument('--device', default='cpu')
    p.add_argument('--json', default=None, help='write the census here')
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    size = args.image_size or (224 if args.random_init else 32)
    with tempfile.TemporaryDirectory() as tmp:
        model, batch = build(args.config, tmp, args.random_init,
                             args.batch_size, size, args.device)
        # warm-up: caches, and OSFCM's first sight of the batch's nouns
        # (its prototype update runs until every noun has been seen)
        first = census_step(model, batch, args.precision)
        result = census_step(model, batch, args.precision)
    result['first_step_small'] = first['small']
    result.update(config=osp.relpath(args.config, REPO),
                  precision=args.precision, batch_size=args.batch_size,
                  towers='random full-size' if args.random_init else 'tiny')
    width = max(len(r) for r in result['regions'])
    for region, n in result['regions'].items():
        print(f'{region:<{width}}  {n:6d}')
    print(f'{"total":<{width}}  {result["total"]:6d}')
    print(f'{"small regions":<{width}}  {result["small"]:6d}  '
          '(neck + heads + losses + glue, forward and backward)')
    print(f'{"host syncs":<{width}}  {result["syncs"]:6d}')
    print(f'{"small regions, first step":<{width}}  '
          f'{result["first_step_small"]:6d}  (caches built, OSFCM initialising prototypes)')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == '__main__':
    main()
