# Copyright (c) rsitr_mm contributors. All rights reserved.
"""The hand-written backward of the soft-target cross-entropy equals
autograd's on the composite it replaces."""
import pytest
import torch
import torch.nn.functional as F

from rsitr_mm.models.losses import MultiPositiveInfoNCELoss
from rsitr_mm.models.losses.soft_target_ce import (scaled_soft_target_ce,
                                                   symmetric_soft_target_ce)


def _composite(anchor, cand, scale, target):
    logits = scale * anchor @ cand.t()
    return -(target * F.log_softmax(logits, dim=1)).sum()


def _inputs(dtype=torch.float64):
    g = torch.Generator().manual_seed(0)
    anchor = F.normalize(torch.randn(6, 5, generator=g, dtype=dtype), dim=1)
    cand = F.normalize(torch.randn(4, 5, generator=g, dtype=dtype), dim=1)
    target = torch.rand(6, 4, generator=g, dtype=dtype)
    target[2] = 0  # an empty row contributes nothing
    return anchor, cand, torch.tensor(7.5, dtype=dtype), target


def test_values_and_gradients_match_the_composite():
    anchor, cand, scale, target = _inputs()
    leaves = [t.clone().requires_grad_() for t in (anchor, cand, scale)]
    ref = _composite(*leaves, target)
    ref_grads = torch.autograd.grad(ref, leaves)
    mine = [t.clone().requires_grad_() for t in (anchor, cand, scale)]
    out = scaled_soft_target_ce(*mine, target)
    grads = torch.autograd.grad(out, mine)
    assert out.dtype == torch.float64  # float64 inputs keep float64
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    for g, r in zip(grads, ref_grads):
        assert g.dtype == r.dtype
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12)


def test_low_precision_inputs_compute_in_float32():
    anchor, cand, _, target = _inputs(torch.float32)
    a = anchor.bfloat16().requires_grad_()
    out = scaled_soft_target_ce(a, cand.bfloat16(), 7.5, target)
    out.backward()
    assert out.dtype == torch.float32 and a.grad.dtype == torch.bfloat16


def test_symmetric_equals_both_directions():
    anchor, cand, scale, _ = _inputs()
    anchor, cand = anchor[:4], cand
    ids = torch.tensor([0, 1, 1, 2])
    pos = (ids[:, None] == ids[None]).double()
    target = pos / pos.sum(1, keepdim=True) / 4
    leaves = [t.clone().requires_grad_() for t in (anchor, cand, scale)]
    ref = (_composite(leaves[0], leaves[1], leaves[2], target) +
           _composite(leaves[1], leaves[0], leaves[2], target.t()))
    ref_grads = torch.autograd.grad(ref, leaves)
    mine = [t.clone().requires_grad_() for t in (anchor, cand, scale)]
    out = symmetric_soft_target_ce(*mine, target)
    grads = torch.autograd.grad(out, mine)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match='target \\(B, B\\)'):
        symmetric_soft_target_ce(anchor, cand, 1.0, target[:, :3])


def test_gradient_respects_the_incoming_gradient_and_frozen_inputs():
    anchor, cand, scale, target = _inputs(torch.float32)
    a = anchor.clone().requires_grad_()
    (3.0 * scaled_soft_target_ce(a, cand, 7.5, target)).backward()
    a2 = anchor.clone().requires_grad_()
    (3.0 * _composite(a2, cand, 7.5, target)).backward()
    torch.testing.assert_close(a.grad, a2.grad, rtol=1e-4, atol=1e-5)


def test_shape_errors_name_the_arguments():
    anchor, cand, _, target = _inputs(torch.float32)
    with pytest.raises(ValueError, match='target must be'):
        scaled_soft_target_ce(anchor, cand, 1.0, target[:, :2])
    with pytest.raises(ValueError, match='anchor'):
        scaled_soft_target_ce(anchor, cand[:, :3], 1.0, target)


def test_infonce_equals_the_per_direction_composite():
    """The loss (and its gradients, the learnable temperature's included)
    is the symmetric multi-positive InfoNCE written with autograd ops."""
    torch.manual_seed(0)
    img = F.normalize(torch.randn(6, 8, dtype=torch.float64), dim=1)
    txt = F.normalize(torch.randn(6, 8, dtype=torch.float64), dim=1)
    ids = torch.tensor([0, 0, 1, 2, 2, 2])
    loss = MultiPositiveInfoNCELoss(learnable=True, loss_weight=0.7).double()
    i1, t1 = img.clone().requires_grad_(), txt.clone().requires_grad_()
    out = loss(i1, t1, image_ids=ids)
    out.backward()

    i2, t2 = img.clone().requires_grad_(), txt.clone().requires_grad_()
    log_scale = loss.log_scale.detach().clone().requires_grad_()
    pos = (ids[:, None] == ids[None]).double()
    target = pos / pos.sum(1, keepdim=True) / len(ids)
    ref = 0.7 * (_composite(i2, t2, log_scale.exp(), target) +
                 _composite(t2, i2, log_scale.exp(), target)) / 2
    ref.backward()
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(i1.grad, i2.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(t1.grad, t2.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(loss.log_scale.grad, log_scale.grad,
                               rtol=1e-10, atol=1e-12)
