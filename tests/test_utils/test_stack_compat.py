# Copyright (c) rsitr_mm contributors. All rights reserved.
"""The bridges to newer transformers/numpy releases: mmpretrain's models
import, only missing names are set, and each bridge does what the removed
function did."""
import types

import numpy as np
import pytest
import torch
from torch import nn

import rsitr_mm  # noqa: F401  (applies the bridges)
from rsitr_mm.utils import stack_compat
from rsitr_mm.utils.stack_compat import (APPLIED, apply_stack_compat,
                                         find_pruneable_heads_and_indices)

MMPRETRAIN_NAMES = ('apply_chunking_to_forward',
                    'find_pruneable_heads_and_indices', 'prune_linear_layer',
                    'PreTrainedModel', 'GenerationMixin', 'PretrainedConfig')


def test_mmpretrain_models_import_with_installed_releases():
    import transformers.modeling_utils as modeling_utils

    import mmpretrain.models
    from mmpretrain.models.multimodal.blip import language_model
    from mmpretrain.registry import MODELS

    # BLIP's guarded import succeeded: its BERT subclasses the real class
    assert language_model.PreTrainedModel is modeling_utils.PreTrainedModel
    assert issubclass(language_model.BertPreTrainedModel,
                      modeling_utils.PreTrainedModel)
    assert MODELS.get('BlipRetrieval') is not None
    assert mmpretrain.models.ImageClassifier is not None
    for name in MMPRETRAIN_NAMES:
        assert hasattr(modeling_utils, name), name
    assert hasattr(np, 'in1d')


def test_only_missing_names_are_set_and_nothing_is_overwritten():
    import transformers.pytorch_utils as pytorch_utils

    assert apply_stack_compat() == APPLIED  # idempotent
    assert len(APPLIED) == len(set(APPLIED))
    for entry in APPLIED:
        module, name = entry.rsplit('.', 1)
        assert name in MMPRETRAIN_NAMES + ('in1d', )
    # a name transformers still has somewhere is the transformers object
    import transformers.modeling_utils as modeling_utils
    for name in ('apply_chunking_to_forward', 'prune_linear_layer'):
        if hasattr(pytorch_utils, name):
            assert getattr(modeling_utils, name) is getattr(
                pytorch_utils, name)


def test_set_missing_never_overwrites():
    holder = types.ModuleType('holder')
    holder.existing = 'kept'

    before = list(APPLIED)
    stack_compat._set_missing(holder, 'existing', 'replaced')
    assert holder.existing == 'kept' and APPLIED == before
    stack_compat._set_missing(holder, 'added', 1)
    try:
        assert holder.added == 1 and APPLIED[-1] == 'holder.added'
    finally:
        APPLIED.pop()


def test_find_pruneable_heads_and_indices():
    # 4 heads of 3 features, nothing pruned yet: drop heads 1 and 3
    heads, index = find_pruneable_heads_and_indices([1, 3, 3], 4, 3, set())
    assert heads == {1, 3}
    assert index.dtype == torch.int64
    assert index.tolist() == [0, 1, 2, 6, 7, 8]
    # head 0 was pruned before: the layer now has 3 heads (1, 2, 3 of the
    # original); pruning 0 again is a no-op, original head 2 is row-block 1
    heads, index = find_pruneable_heads_and_indices([0, 2], 3, 2, {0})
    assert heads == {2}
    assert index.tolist() == [0, 1, 4, 5]


def test_pruning_an_attention_projection_keeps_the_other_heads():
    """The three transformers functions together, as mmpretrain's BERT
    ``prune_heads`` uses them."""
    import transformers.modeling_utils as mu
    torch.manual_seed(0)
    n_heads, head_size = 4, 3
    proj = nn.Linear(5, n_heads * head_size)
    out = nn.Linear(n_heads * head_size, 5)
    x = torch.randn(2, 6, 5)
    heads, index = mu.find_pruneable_heads_and_indices({2}, n_heads,
                                                       head_size, set())
    pruned_proj = mu.prune_linear_layer(proj, index)
    pruned_out = mu.prune_linear_layer(out, index, dim=1)
    assert pruned_proj.weight.shape == (9, 5)
    assert pruned_out.weight.shape == (5, 9)
    full = proj(x).view(2, 6, n_heads, head_size)
    kept = pruned_proj(x).view(2, 6, n_heads - 1, head_size)
    assert torch.allclose(kept, full[:, :, [0, 1, 3]], atol=1e-6)
    # the output layer sees the kept heads' inputs in the same columns
    assert torch.equal(pruned_out.weight, out.weight[:, index])
    assert torch.equal(pruned_out.bias, out.bias)

    def ffn(t):
        return out(proj(t)) * 2

    chunked = mu.apply_chunking_to_forward(ffn, 2, 1, x)
    assert torch.allclose(chunked, ffn(x), atol=1e-6)


def test_own_fallbacks_match_the_definitions():
    torch.manual_seed(0)
    layer = nn.Linear(4, 6)
    index = torch.tensor([0, 2, 5])
    rows = stack_compat._prune_linear_layer(layer, index, dim=0)
    cols = stack_compat._prune_linear_layer(layer, torch.tensor([1, 3]), 1)
    x = torch.randn(3, 4)
    assert torch.allclose(rows(x), layer(x)[:, index], atol=1e-6)
    assert torch.allclose(cols(x[:, [1, 3]]),
                          x[:, [1, 3]] @ layer.weight[:, [1, 3]].t()
                          + layer.bias, atol=1e-6)
    x = torch.randn(2, 8, 4)
    assert torch.allclose(
        stack_compat._apply_chunking_to_forward(layer, 4, 1, x), layer(x))
    assert torch.equal(
        stack_compat._apply_chunking_to_forward(layer, 0, 1, x), layer(x))
    with pytest.raises(ValueError, match='multiple of chunk_size=3'):
        stack_compat._apply_chunking_to_forward(layer, 3, 1, x)


def test_in1d_bridge_flattens_like_numpy_did():
    a = np.array([[1, 2], [3, 4]])
    got = stack_compat._in1d(a, [2, 4])
    assert got.tolist() == [False, True, False, True]
    assert stack_compat._in1d(a, [2, 4], invert=True).tolist() == [
        True, False, True, False]
    # mmpretrain's retrieval metric runs on it
    from mmpretrain.evaluation.metrics.retrieval import RetrievalRecall
    pred = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.8, 0.1]])
    # sample 0 ranks class 2 second, sample 1 ranks it third
    recall = RetrievalRecall.calculate(
        pred, [[2], [2]], topk=(1, 2), target_indices=True)
    assert [float(r) for r in recall] == [0.0, 50.0]
