# Copyright (c) rsitr_mm contributors. All rights reserved.
"""l2_normalize's hand-written backward equals F.normalize's."""
import torch
import torch.nn.functional as F

from rsitr_mm.models.utils.l2_normalize import (l2_normalize,
                                                l2_normalize_with_norm)


def _rows():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 7, generator=g, dtype=torch.float64)
    x[1] = 0.0  # a zero row: the clamped branch
    x[2] *= 1e-14  # below eps: clamped too
    return x


def test_values_and_gradients_equal_f_normalize():
    x = _rows()
    w = torch.randn(5, 7, dtype=torch.float64)
    a = x.clone().requires_grad_()
    b = x.clone().requires_grad_()
    ya, yb = l2_normalize(a, dim=1), F.normalize(b, dim=1)
    torch.testing.assert_close(ya, yb, rtol=0, atol=0)
    (ya * w).sum().backward()
    (yb * w).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-12, atol=1e-12)


def test_norm_output_alone_and_together():
    x = _rows()
    for use_unit in (False, True):
        a = x.clone().requires_grad_()
        b = x.clone().requires_grad_()
        unit, norm = l2_normalize_with_norm(a, dim=-1)
        out = norm.sum() + (unit.sum() if use_unit else 0)
        out.backward()
        ref = b.norm(dim=-1).sum() + (F.normalize(b, dim=-1).sum()
                                      if use_unit else 0)
        ref.backward()
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-12, atol=1e-12)
