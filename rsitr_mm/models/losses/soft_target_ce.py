# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Soft-target cross-entropy of scaled similarities, with a hand-written
backward.

Both InfoNCE (:class:`MultiPositiveInfoNCELoss`) and OSFCM's prototype
clustering (:class:`ObjectSemanticClusterHead`) compute::

    logits = s * A @ C.T                       # (B, M)
    loss   = - sum_ij W_ij * log_softmax(logits, dim=1)_ij

with ``W`` a non-negative target whose rows already carry their weight
(``W_i = w_i * q_i``; e.g. ``q_i`` uniform over the positives and
``w_i = 1 / B`` for a mean). Written with autograd ops, the backward of this
composite runs ~20 small kernels (the product's two branches, the softmax,
the target product, the scale). With ``P = softmax(logits)`` and
``r_i = sum_j W_ij`` the gradients are::

    G      = P * r[:, None] - W                # dL / dlogits
    dA     = s * G @ C
    dC     = s * G.T @ A
    ds     = sum_ij G_ij * (A @ C.T)_ij

i.e. about ten kernels. The product and the softmax run in float32 with
autocast disabled (logits up to ``100 * cos`` keep their precision under
AMP; float64 inputs keep float64); the gradients are returned in the
inputs' dtypes.
"""
from typing import Union

import torch


def _product(ctx, anchor: torch.Tensor, cand: torch.Tensor,
             scale: torch.Tensor, target: torch.Tensor):
    """``(A, C, A @ C.T, s * A @ C.T)`` in the target's dtype (float32, or
    float64: see :func:`loss_dtype`); call with autocast off. Records the
    inputs' dtypes for :func:`_product_grads`."""
    ctx.dtypes = (anchor.dtype, cand.dtype, scale.dtype)
    a, c = anchor.to(target.dtype), cand.to(target.dtype)
    cos = a @ c.t()
    return a, c, cos, cos * scale


class _ScaledSoftTargetCE(torch.autograd.Function):
    """``-sum(W * log_softmax(s * A @ C.T, 1))``; see the module doc."""

    @staticmethod
    def forward(ctx, anchor: torch.Tensor, cand: torch.Tensor,
                scale: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.autocast(anchor.device.type, enabled=False):
            a, c, cos, logits = _product(ctx, anchor, cand, scale, target)
            log_p = logits.log_softmax(dim=1)
            loss = -torch.dot(target.reshape(-1), log_p.reshape(-1))
        ctx.save_for_backward(a, c, scale, target, cos, log_p)
        return loss

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        a, c, scale, target, cos, log_p = ctx.saved_tensors
        with torch.autocast(a.device.type, enabled=False):
            # dL/dlogits, up to the incoming gradient
            g_logits = torch.addcmul(-target, log_p.exp(),
                                     target.sum(dim=1, keepdim=True))
            return _product_grads(ctx, g_logits, grad, a, c, scale, cos)


def _product_grads(ctx, g_logits: torch.Tensor, grad: torch.Tensor,
                   a: torch.Tensor, c: torch.Tensor, scale: torch.Tensor,
                   cos: torch.Tensor) -> tuple:
    """Gradients of ``(A, C, s)`` from ``dL/dlogits`` (up to ``grad``) of
    ``logits = s * A @ C.T``; ``ctx.needs_input_grad`` says which."""
    need_a, need_c, need_s = ctx.needs_input_grad[:3]
    g_s = None
    if need_s:
        g_s = (torch.dot(g_logits.reshape(-1), cos.reshape(-1)) *
               grad).to(ctx.dtypes[2])
    g_logits = g_logits * (grad * scale)  # dL / d(A @ C.T)
    g_a = (g_logits @ c).to(ctx.dtypes[0]) if need_a else None
    g_c = (g_logits.t() @ a).to(ctx.dtypes[1]) if need_c else None
    return (g_a, g_c, g_s) + (None, ) * (len(ctx.needs_input_grad) - 3)


class _SymmetricSoftTargetCE(torch.autograd.Function):
    """Both directions of a symmetric target on one product:
    ``-sum(W * (log_softmax(L, 1) + log_softmax(L, 0)))`` with
    ``L = s * A @ C.T`` (B, B) and ``W`` symmetric."""

    @staticmethod
    def forward(ctx, anchor: torch.Tensor, cand: torch.Tensor,
                scale: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.autocast(anchor.device.type, enabled=False):
            a, c, cos, logits = _product(ctx, anchor, cand, scale, target)
            log_r, log_c = logits.log_softmax(dim=1), logits.log_softmax(0)
            loss = -torch.dot(target.reshape(-1), (log_r + log_c).reshape(-1))
        ctx.save_for_backward(a, c, scale, target, cos, log_r, log_c)
        return loss

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        a, c, scale, target, cos, log_r, log_c = ctx.saved_tensors
        with torch.autocast(a.device.type, enabled=False):
            sums = target.sum(dim=1, keepdim=True)  # = column sums
            # rows: P_r * r - W; columns: P_c * r.T - W
            g_logits = torch.addcmul(
                torch.addcmul(target * -2, log_r.exp(), sums), log_c.exp(),
                sums.t())
            return _product_grads(ctx, g_logits, grad, a, c, scale, cos)


def scaled_soft_target_ce(anchor: torch.Tensor, cand: torch.Tensor,
                          scale: Union[torch.Tensor, float],
                          target: torch.Tensor) -> torch.Tensor:
    """Weighted soft-target cross-entropy of ``scale * anchor @ cand.T``.

    Args:
        anchor (Tensor): (B, D) anchor rows (e.g. L2-normalised).
        cand (Tensor): (M, D) candidate rows.
        scale (Tensor | float): scalar multiplier of the similarities (a
            0-d tensor may require gradient, e.g. a learnable temperature).
        target (Tensor): (B, M) non-negative weights, each row already
            multiplied by its row weight (no gradient flows to it).

    Returns:
        Tensor: 0-d loss (float32; float64 when an input is)
        ``-sum_ij target_ij * log_softmax(scale * anchor @ cand.T, 1)_ij``.
    """
    if anchor.dim() != 2 or cand.dim() != 2 or \
            anchor.size(1) != cand.size(1):
        raise ValueError('scaled_soft_target_ce: anchor (B, D) and cand '
                         f'(M, D) expected, got {tuple(anchor.shape)} and '
                         f'{tuple(cand.shape)}.')
    if tuple(target.shape) != (anchor.size(0), cand.size(0)):
        raise ValueError('scaled_soft_target_ce: target must be (B, M) = '
                         f'{(anchor.size(0), cand.size(0))}, got '
                         f'{tuple(target.shape)}.')
    return _ScaledSoftTargetCE.apply(anchor, cand,
                                     *_scale_and_target(anchor, cand, scale,
                                                        target))


def symmetric_soft_target_ce(anchor: torch.Tensor, cand: torch.Tensor,
                             scale: Union[torch.Tensor, float],
                             target: torch.Tensor) -> torch.Tensor:
    """Both directions of :func:`scaled_soft_target_ce` from one product:
    ``f(anchor, cand, s, W) + f(cand, anchor, s, W.T)`` for a square
    ``W`` that is symmetric (``W == W.T``, e.g. multi-positive InfoNCE's
    target: the positives of a pair are mutual and share their count).

    Args:
        anchor (Tensor): (B, D) rows (e.g. images).
        cand (Tensor): (B, D) rows (e.g. their captions).
        scale (Tensor | float): scalar multiplier of the similarities.
        target (Tensor): (B, B) symmetric non-negative weights.

    Returns:
        Tensor: 0-d loss, the sum of both directions.
    """
    if anchor.dim() != 2 or anchor.shape != cand.shape or \
            tuple(target.shape) != (anchor.size(0), ) * 2:
        raise ValueError('symmetric_soft_target_ce: anchor and cand (B, D) '
                         'and target (B, B) expected, got '
                         f'{tuple(anchor.shape)}, {tuple(cand.shape)} and '
                         f'{tuple(target.shape)}.')
    return _SymmetricSoftTargetCE.apply(anchor, cand,
                                        *_scale_and_target(anchor, cand,
                                                           scale, target))


def _scale_and_target(anchor: torch.Tensor, cand: torch.Tensor,
                      scale: Union[torch.Tensor, float],
                      target: torch.Tensor) -> tuple:
    """The scale as a tensor and the target detached, in the loss dtype."""
    if not isinstance(scale, torch.Tensor):
        scale = torch.tensor(float(scale), device=anchor.device)
    return scale, target.detach().to(loss_dtype(anchor, cand, target))


def loss_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """float64 when any of ``tensors`` is, else float32: the precision the
    loss computes in (never below float32, also under AMP)."""
    if any(t.dtype == torch.float64 for t in tensors):
        return torch.float64
    return torch.float32
