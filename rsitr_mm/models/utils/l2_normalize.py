# Copyright (c) rsitr_mm contributors. All rights reserved.
"""L2 normalisation with a hand-written backward.

``F.normalize`` is ``x / clamp_min(norm(x), eps)`` composed of autograd
ops; its backward runs about a dozen small kernels (the norm's subgradient
at zero, the clamp's mask, the division's two branches). With
``y = x / n`` and ``n = max(|x|, eps)`` the gradient is::

    dx = (g - y * <g, y>) / n        where |x| > eps
    dx = g / eps                     where the norm was clamped

i.e. five kernels. The forward is exactly ``F.normalize``'s.
"""
import torch


class _L2Normalize(torch.autograd.Function):
    """``(x / max(|x|, eps), |x|)``; the norm's gradient is ``x / |x|``
    (0 at ``x = 0``, as ``torch.linalg.vector_norm``'s)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, dim: int, eps: float):
        norm = torch.linalg.vector_norm(x, dim=dim, keepdim=True)
        denom = norm.clamp_min(eps)
        y = x / denom
        # True where the norm is real, False where it was clamped (a bool
        # multiplies without a cast kernel)
        ctx.save_for_backward(y, denom, norm > eps, norm)
        ctx.dim = dim
        # an unused output's gradient arrives as None, not as zeros
        ctx.set_materialize_grads(False)
        return y, norm

    @staticmethod
    def backward(ctx, grad: torch.Tensor, grad_norm: torch.Tensor):
        y, denom, real, norm = ctx.saved_tensors
        dx = None
        if grad is not None:
            radial = (grad * y).sum(ctx.dim, keepdim=True) * real
            dx = torch.addcmul(grad, y, radial, value=-1).div_(denom)
        if grad_norm is not None:
            # d|x|/dx = x / |x| (= y unless clamped; 0 at x = 0)
            unit = torch.nan_to_num(y * (denom / norm))
            dx = grad_norm * unit if dx is None else dx + grad_norm * unit
        return dx, None, None


def l2_normalize(x: torch.Tensor, dim: int = -1,
                 eps: float = 1e-12) -> torch.Tensor:
    """``F.normalize(x, dim=dim, eps=eps)`` with a 5-kernel backward.

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
