# Copyright (c) rsitr_mm contributors. All rights reserved.
"""What mmpretrain 1.2.0 expects from transformers and numpy, restored on
newer releases.

mmpretrain 1.2.0 is its last release. Its ``mmpretrain.models`` package
imports, at module level, names that transformers 5 and numpy 2.4 removed:

* ``mmpretrain/models/multimodal/blip/language_model.py`` imports
  ``PreTrainedModel, apply_chunking_to_forward,
  find_pruneable_heads_and_indices, prune_linear_layer`` from
  ``transformers.modeling_utils`` inside a bare ``try``; on transformers 5
  the import fails, ``PreTrainedModel`` becomes ``None`` and
  ``class BertPreTrainedModel(PreTrainedModel)`` raises
  ``TypeError: NoneType takes no arguments``, so ``import mmpretrain.models``
  (and with it ``import rsitr_mm``) fails. ``blip2/Qformer.py`` and
  ``ram/bert.py`` import the same names without a ``try``;
  ``ofa/ofa_modules.py`` imports ``GenerationMixin`` and ``PretrainedConfig``
  from ``transformers.modeling_utils``, which no longer re-exports them.
* ``mmpretrain/evaluation/metrics/retrieval.py`` calls ``np.in1d``, removed
  in numpy 2.4 (``np.isin`` replaces it).

:func:`apply_stack_compat` puts each missing name back where mmpretrain looks
for it, before ``mmpretrain.models`` is imported (``import rsitr_mm`` calls
it first). Rules:

* only a name that is *missing* is set; a name the installed release has is
  never overwritten, so on the tested pins (transformers 4.51.3, numpy < 2.4)
  this does nothing;
* a function that moved is taken from its new home (e.g.
  ``transformers.pytorch_utils.prune_linear_layer``); only one removed
  outright (``find_pruneable_heads_and_indices`` in transformers 5) comes
  from this module, with the behaviour of the removed function;
* what was set is listed in :data:`APPLIED` (``'module.name'`` strings), so a
  test or a bug report can tell which bridges are in use.

Import ``rsitr_mm`` (or call :func:`apply_stack_compat`) before importing
``mmpretrain.models`` yourself: a module whose import already failed stays
failed for the process.
"""
import importlib
from typing import Callable, Iterable, List, Set, Tuple

import torch
from torch import nn

#: ``'module.name'`` of every attribute :func:`apply_stack_compat` set.
APPLIED: List[str] = []


def find_pruneable_heads_and_indices(
        heads: Iterable[int], n_heads: int, head_size: int,
        already_pruned_heads: Set[int]) -> Tuple[Set[int], torch.Tensor]:
    """Heads left to prune and the flat indices of the weights to keep.

    Behaves like the function transformers 5 removed from
    ``transformers.pytorch_utils`` (mmpretrain's BERT/BLIP attention calls
    it from ``prune_heads``).

    Args:
        heads (Iterable[int]): heads to prune, numbered as in the unpruned
            layer.
        n_heads (int): heads the layer has now (after earlier pruning).
        head_size (int): features per head.
        already_pruned_heads (Set[int]): heads pruned before, numbered as in
            the unpruned layer.

    Returns:
        tuple[set[int], Tensor]: the heads to prune now (``heads`` less
        ``already_pruned_heads``) and the indices, shape
        ``(n_kept * head_size,)`` (int64, ascending), of the rows of the
        current ``(n_heads * head_size, ...)`` projection to keep.
    """
    heads = set(heads) - set(already_pruned_heads)
    keep = torch.ones(n_heads, head_size, dtype=torch.bool)
    for head in heads:
        # position of `head` in the current layer: earlier pruned heads
        # below it have shifted it down
        shift = sum(1 for pruned in already_pruned_heads if pruned < head)
        keep[head - shift] = False
    index = torch.arange(n_heads * head_size)[keep.view(-1)].long()
    return heads, index


def _prune_linear_layer(layer: nn.Linear, index: torch.Tensor,
                        dim: int = 0) -> nn.Linear:
    """A copy of ``layer`` that keeps only the ``index`` entries of its
    output (``dim=0``) or input (``dim=1``) features; fallback for
    transformers releases without ``pytorch_utils.prune_linear_layer``."""
    index = index.to(layer.weight.device)
    weight = layer.weight.index_select(dim, index).detach().clone()
    bias = None
    if layer.bias is not None:
        bias = layer.bias.detach().clone()
        if dim == 0:
            bias = bias[index]
    out_features, in_features = weight.shape
    new = nn.Linear(in_features, out_features, bias=bias is not None).to(
        device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        new.weight.copy_(weight)
        if bias is not None:
            new.bias.copy_(bias)
    new.weight.requires_grad = layer.weight.requires_grad
    if bias is not None:
        new.bias.requires_grad = layer.bias.requires_grad
    return new


def _apply_chunking_to_forward(forward_fn: Callable, chunk_size: int,
                               chunk_dim: int, *input_tensors):
    """``forward_fn(*input_tensors)`` computed in chunks of ``chunk_size``
    along ``chunk_dim`` and concatenated (all at once when ``chunk_size``
    is 0); fallback for transformers releases without
    ``pytorch_utils.apply_chunking_to_forward``."""
    if chunk_size <= 0:
        return forward_fn(*input_tensors)
    length = input_tensors[0].shape[chunk_dim]
    if length % chunk_size:
        raise ValueError(
            f'apply_chunking_to_forward: dimension {chunk_dim} has size '
            f'{length}, expected a multiple of chunk_size={chunk_size}')
    chunks = zip(*(t.split(chunk_size, dim=chunk_dim) for t in input_tensors))
    return torch.cat([forward_fn(*c) for c in chunks], dim=chunk_dim)


def _set_missing(module, name: str, value) -> None:
    if not hasattr(module, name):
        setattr(module, name, value)
        APPLIED.append(f'{module.__name__}.{name}')


def _transformers_bridges() -> None:
    import transformers
    modeling_utils = importlib.import_module('transformers.modeling_utils')
    try:
        pytorch_utils = importlib.import_module('transformers.pytorch_utils')
    except ImportError:  # pragma: no cover - every release we test has it
        pytorch_utils = None
    own = {
        'apply_chunking_to_forward': _apply_chunking_to_forward,
        'find_pruneable_heads_and_indices': find_pruneable_heads_and_indices,
        'prune_linear_layer': _prune_linear_layer,
    }
    for name, fallback in own.items():
        if not hasattr(modeling_utils, name):
            _set_missing(modeling_utils, name,
                         getattr(pytorch_utils, name, fallback))
    # moved to transformers' top level (generation/configuration modules)
    for name in ('GenerationMixin', 'PretrainedConfig'):
        if not hasattr(modeling_utils, name) and hasattr(transformers, name):
            _set_missing(modeling_utils, name, getattr(transformers, name))


def _in1d(ar1, ar2, assume_unique: bool = False, invert: bool = False, *,
          kind=None):
    """``np.in1d`` as numpy < 2.4 had it: ``np.isin`` on the flattened
    first argument (the result is 1-D)."""
    import numpy as np
    return np.isin(np.ravel(ar1), ar2, assume_unique=assume_unique,
                   invert=invert, kind=kind)


def _numpy_bridges() -> None:
    import numpy as np
    _set_missing(np, 'in1d', _in1d)


_DONE = False


def apply_stack_compat() -> List[str]:
    """Restore the names mmpretrain 1.2.0 imports from transformers and
    numpy where the installed releases removed them (idempotent).

    Returns:
        list[str]: ``'module.name'`` of every attribute that was set (empty
        on the tested pins).
    """
    global _DONE
    if not _DONE:
        _numpy_bridges()
        _transformers_bridges()
        _DONE = True
    return list(APPLIED)
