# Copyright (c) rsitr_mm contributors. All rights reserved.
"""An optimizer-wrapper constructor that merges equal parameter groups.

mmengine's ``DefaultOptimWrapperConstructor`` turns a ``paramwise_cfg``
into one parameter group *per parameter* (431 groups for OSDPM on CLIP
ViT-B/32). PyTorch's ``foreach`` optimizers then launch their kernels once
per group instead of once per list of tensors: on an H200, AdamW's step
took about 108 ms of CPU time per iteration and made training
launch-bound (docs/benchmarks.md, "Training throughput"). Parameters whose
groups carry identical hyper-parameters (lr, weight decay, betas, ...) can
share one group without changing any update, which is what this
constructor does after the default one has resolved ``paramwise_cfg``.
"""
from typing import Any, Dict, List, Tuple

import torch
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmpretrain.registry import OPTIM_WRAPPER_CONSTRUCTORS


def _hyper(group: Dict[str, Any]) -> Tuple:
    """A hashable key of a group's hyper-parameters (all but ``params``)."""
    return tuple(sorted((k, repr(v)) for k, v in group.items()
                        if k != 'params'))


def merge_param_groups(groups: List[Dict[str, Any]]
                       ) -> Tuple[List[Dict[str, Any]], List[int]]:
    """Merge parameter groups with identical hyper-parameters.

    Args:
        groups (list[dict]): Parameter groups, each with a ``params`` list.

    Returns:
        tuple: ``(merged, order)``: the merged groups, in the order of the
        first group of each kind, parameters in their original order; and
        ``order[j]`` = the position in the original flattened parameter
        order of the j-th parameter of the merged groups' flattened order.
    """
    merged: Dict[Tuple, Dict[str, Any]] = {}
    positions: Dict[Tuple, List[int]] = {}
    flat = 0
    for group in groups:
        key = _hyper(group)
        if key not in merged:
            merged[key] = dict(group, params=[])
            positions[key] = []
        for p in group['params']:
            merged[key]['params'].append(p)
            positions[key].append(flat)
            flat += 1
    order = [i for key in merged for i in positions[key]]
    return list(merged.values()), order


def unmerged_state_to_merged(state_dict: Dict[str, Any], order: List[int],
                             merged_sizes: List[int]) -> Dict[str, Any]:
    """Convert an optimizer state dict saved with one group per parameter
    (mmengine's default ``paramwise_cfg`` layout) to the merged layout.

    Args:
        state_dict (dict): ``optimizer.state_dict()`` of the unmerged layout.
        order (list[int]): See :func:`merge_param_groups`.
        merged_sizes (list[int]): Number of parameters of each merged group.

    Returns:
        dict: The same state in the merged layout; each merged group takes
        the hyper-parameters (incl. a scheduled ``lr``) of its first saved
        group.
    """
    old_groups = state_dict['param_groups']
    old_ids = [i for g in old_groups for i in g['params']]
    owner = {i: g for g in old_groups for i in g['params']}
    state, groups, new = {}, [], 0
    for size in merged_sizes:
        first = owner[old_ids[order[new]]]
        ids = []
        for _ in range(size):
            old = old_ids[order[new]]
            if old in state_dict['state']:
                state[new] = state_dict['state'][old]
            ids.append(new)
            new += 1
        groups.append(dict(first, params=ids))
    return dict(state=state, param_groups=groups)


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class MergedGroupsOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """``DefaultOptimWrapperConstructor`` with equal groups merged.

    Takes the same config (``optim_wrapper`` with ``optimizer`` and
    ``paramwise_cfg``) and gives every parameter the same hyper-parameters
    as the default constructor; only the number of groups changes (OSDPM
    ViT-B/32: 431 -> 5). Optimizer states saved by the default
    constructor's layout (one group per parameter) are converted when a run
    is resumed from them.

    Use in a config::

        optim_wrapper = dict(
            constructor='MergedGroupsOptimWrapperConstructor',
            optimizer=dict(type='AdamW', lr=5e-6),
            paramwise_cfg=dict(custom_keys={'heads': dict(lr_mult=20.)}))
    """

    def __call__(self, model: torch.nn.Module) -> OptimWrapper:
        wrapper = super().__call__(model)
        if not self.paramwise_cfg:
            return wrapper  # one group already
        optimizer = wrapper.optimizer
        groups, order = merge_param_groups(optimizer.param_groups)
        unmerged = len(optimizer.param_groups)
        if len(groups) == unmerged:
            return wrapper
        # no step was taken yet (the state is empty): the merged groups, full
        # dicts of the built optimizer, replace its groups in place
        optimizer.param_groups = groups
        sizes = [len(g['params']) for g in groups]

        def convert(opt, state_dict):
            if len(state_dict['param_groups']) == unmerged and \
                    unmerged != len(sizes):
                return unmerged_state_to_merged(state_dict, order, sizes)
            return None

        optimizer.register_load_state_dict_pre_hook(convert)
        return wrapper
