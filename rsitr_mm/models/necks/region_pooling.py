# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Constant region-pooling matrices and the small MLP used by DAPN."""
import torch
import torch.nn as nn


def _region_pool_matrix(height: int, width: int, scale: int) -> torch.Tensor:
    """Averaging matrix of ``adaptive_avg_pool2d(x, scale)``.

    Row ``r = i * scale + j`` holds ``1 / |region|`` on the grid cells of
    region ``(i, j)`` (same boundaries as PyTorch's adaptive pooling:
    ``[floor(i*H/s), ceil((i+1)*H/s))``) and 0 elsewhere.

    Returns:
        Tensor: (scale * scale, height * width) float32, rows summing to 1.
    """

    def masks(size: int) -> torch.Tensor:
        m = torch.zeros(scale, size)
        for i in range(scale):
            start = (i * size) // scale
            end = -((-(i + 1) * size) // scale)  # ceil
            m[i, start:end] = 1.0
        return m

    rows, cols = masks(height), masks(width)
    mat = torch.einsum('ih,jw->ijhw', rows,
                       cols).reshape(scale * scale, height * width)
    return mat / mat.sum(dim=1, keepdim=True)


def _mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_dim, hidden), nn.ReLU(inplace=True),
        nn.Linear(hidden, out_dim))
