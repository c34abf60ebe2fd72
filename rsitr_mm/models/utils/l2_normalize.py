# Copyright (c) rsitr_mm contributors. All rights reserved.
"""L2 normalisation with a hand-written backward.

``F.normalize`` is ``x / clamp_min(norm(x), eps)`` composed of autograd
ops; its backward runs about a dozen small kernels (the norm's subgradient
at zero, the clamp's mask, the division's two branches). With
``y = x / n`` and ``n = max(|x|, eps)`` the gradient is::

    dx = (g - y * <g, y>) / n        where |x| > eps
    dx = g / eps                     where the norm was clamped

i.e. four kernels. The forward is exactly ``F.normalize``'s.
"""
import torch


class _L2Normalize(torch.autograd.Function):
    """``(x / max(|x|, eps), |x|)``; the norm's gradient is ``y`` (0 at
    ``x = 0``, as ``torch.linalg.vector_norm``'s)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, dim: int, eps: float):
        norm = torch.linalg.vector_norm(x, dim=dim, keepdim=True)
        denom = norm.clamp_min(eps)
        y = x / denom
        # 1 where the norm is real, 0 where it was clamped
        ctx.save_for_backward(y, denom, (norm > eps).to(y.dtype))
        ctx.dim = dim
        return y, norm

    @staticmethod
    def backward(ctx, grad: torch.Tensor, grad_norm: torch.Tensor):
        y, denom, real = ctx.saved_tensors
        radial = (grad * y).sum(ctx.dim, keepdim=True) * real
        dx = (grad - y * radial) / denom
        if grad_norm is not None:
            dx = dx + grad_norm * y
        return dx, None, None


def l2_normalize(x: torch.Tensor, dim: int = -1,
                 eps: float = 1e-12) -> torch.Tensor:
    """``F.normalize(x, dim=dim, eps=eps)`` with a 4-kernel backward.

    Args:
        x (Tensor): (..., D, ...) input.
        dim (int): Dimension normalised. Defaults to -1.
        eps (float): Smallest norm divided by. Defaults to 1e-12.

    Returns:
        Tensor: ``x`` with unit L2 norm along ``dim`` (same shape).
    """
    if not (x.requires_grad and torch.is_grad_enabled()):
        return torch.nn.functional.normalize(x, dim=dim, eps=eps)
    return _L2Normalize.apply(x, dim, eps)[0]


def l2_normalize_with_norm(x: torch.Tensor, dim: int = -1,
                           eps: float = 1e-12):
    """``(F.normalize(x, dim=dim, eps=eps), x.norm(dim=dim, keepdim=True))``
    from one norm, with one hand-written backward for both.

    Returns:
        tuple[Tensor, Tensor]: the unit vectors (shape of ``x``) and the
        norms (``x``'s shape with ``dim`` of size 1).
    """
    if not (x.requires_grad and torch.is_grad_enabled()):
        norm = torch.linalg.vector_norm(x, dim=dim, keepdim=True)
        return x / norm.clamp_min(eps), norm
    return _L2Normalize.apply(x, dim, eps)
