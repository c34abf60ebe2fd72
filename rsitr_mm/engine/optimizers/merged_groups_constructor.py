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

The default constructor also logs one ``paramwise_options`` line per
parameter and option (382 lines for OSDPM); here they are replaced by one
line per resulting group: its options, its parameter count and the first
parameter names.
"""
import logging
from typing import Any, Dict, List, Tuple

import torch
from mmengine.logging import MMLogger, print_log
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmpretrain.registry import OPTIM_WRAPPER_CONSTRUCTORS


def _hyper(group: Dict[str, Any]) -> Tuple:
    """A hashable key of a group's hyper-parameters (all but ``params``)."""
    return tuple(sorted((k, repr(v)) for k, v in group.items()
                        if k != 'params'))


def merge_param_groups(
        groups: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Merge parameter groups with identical hyper-parameters.

    Args:
        groups (list[dict]): Parameter groups, each with a ``params`` list.

    Returns:
        list[dict]: The merged groups, in the order of the first group of
        each kind, their parameters in their original order.
    """
    merged: Dict[Tuple, Dict[str, Any]] = {}
    for group in groups:
        key = _hyper(group)
        if key not in merged:
            merged[key] = dict(group, params=[])
        merged[key]['params'].extend(group['params'])
    return list(merged.values())


#: optimizers whose ``fused=True`` CUDA kernel is used by default
FUSED_BY_DEFAULT = ('Adam', 'AdamW')


class _DropParamwiseLines(logging.Filter):
    """Swallow mmengine's per-parameter ``paramwise_options`` records."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith('paramwise_options -- ')


def summarise_groups(groups: List[Dict[str, Any]],
                     names: Dict[int, str],
                     shown: int = 3) -> List[str]:
    """One line per parameter group: options, size, first names.

    Args:
        groups (list[dict]): The optimizer's parameter groups.
        names (dict[int, str]): ``id(param)`` -> parameter name.
        shown (int): Names listed per group. Defaults to 3.

    Returns:
        list[str]: The lines.
    """
    lines = []
    for i, group in enumerate(groups):
        options = ', '.join(f'{k}={v:g}' if isinstance(v, float) else
                            f'{k}={v}' for k, v in sorted(group.items())
                            if k in ('lr', 'weight_decay', 'momentum'))
        params = group['params']
        first = [names.get(id(p), '?') for p in params[:shown]]
        more = f', ... (+{len(params) - shown})' if len(params) > shown \
            else ''
        lines.append(f'param group {i}: {options}; {len(params)} tensors '
                     f'({sum(p.numel() for p in params):,} values): '
                     f'{", ".join(first)}{more}')
    return lines


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class MergedGroupsOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """``DefaultOptimWrapperConstructor`` with equal groups merged.

    Takes the same config (``optim_wrapper`` with ``optimizer`` and
    ``paramwise_cfg``) and gives every parameter the same hyper-parameters
    as the default constructor; only the number of groups changes (OSDPM
    ViT-B/32: 431 -> 4). Loading an optimizer state saved in the default
    constructor's layout (one group per parameter) is refused with a
    message saying how to resume it: converting it would leave the LR
    schedulers' per-group states (``base_values``) in the old layout.

    Adam and AdamW get ``fused=True`` when the model's parameters are on
    CUDA and the config sets neither ``fused`` nor ``foreach``: one kernel
    per step for all parameters and no host reads (the ``foreach`` version
    reads every parameter's step count on the host). On the CPU the
    default implementation is kept.

    Use in a config::

        optim_wrapper = dict(
            constructor='MergedGroupsOptimWrapperConstructor',
            optimizer=dict(type='AdamW', lr=5e-6),
            paramwise_cfg=dict(custom_keys={'heads': dict(lr_mult=20.)}))
    """

    def __call__(self, model: torch.nn.Module) -> OptimWrapper:
        self._default_fused(model)
        quiet = _DropParamwiseLines()
        logger = MMLogger.get_current_instance()
        logger.addFilter(quiet)
        try:
            wrapper = super().__call__(model)
        finally:
            logger.removeFilter(quiet)
        if not self.paramwise_cfg:
            return wrapper  # one group already
        optimizer = wrapper.optimizer
        unmerged = len(optimizer.param_groups)
        groups = merge_param_groups(optimizer.param_groups)
        names = {id(p): n for n, p in model.named_parameters()}
        for line in summarise_groups(groups, names):
            print_log(line, logger='current')
        if len(groups) == unmerged:
            return wrapper
        # no step was taken yet (the state is empty): the merged groups, full
        # dicts of the built optimizer, replace its groups in place
        optimizer.param_groups = groups

        def refuse_unmerged(opt, state_dict):
            saved = len(state_dict['param_groups'])
            if saved == unmerged:
                raise ValueError(
                    f'The optimizer state to load has {saved} parameter '
                    'groups, one per parameter: it was saved with mmengine\'s '
                    'DefaultOptimWrapperConstructor, while this config\'s '
                    f'MergedGroupsOptimWrapperConstructor makes {len(groups)}'
                    ' (the LR schedulers\' saved states are per group too). '
                    'Resume that run with --cfg-options '
                    'optim_wrapper.constructor=DefaultOptimWrapperConstructor'
                    ' (the same updates, slower), or start from its weights '
                    'with load_from.')
            return None

        optimizer.register_load_state_dict_pre_hook(refuse_unmerged)
        return wrapper

    def _default_fused(self, model: torch.nn.Module) -> None:
        """``fused=True`` for Adam/AdamW on CUDA (see the class doc)."""
        cfg = self.optimizer_cfg
        kind = cfg.get('type')
        name = kind if isinstance(kind, str) else getattr(kind, '__name__',
                                                          '')
        if name not in FUSED_BY_DEFAULT or 'fused' in cfg or 'foreach' in cfg:
            return
        params = [p for p in model.parameters() if p.requires_grad]
        if params and all(p.is_cuda and p.is_floating_point()
                          for p in params):
            cfg['fused'] = True
