# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Distributed helpers that also work in a single process."""
from typing import List

import torch
from mmengine import dist


def all_gather_variable(tensor: torch.Tensor) -> List[torch.Tensor]:
    """All-gather tensors whose first dimension differs between ranks.

    Args:
        tensor (torch.Tensor): (n_rank, ...) local rows.

    Returns:
        list[torch.Tensor]: one tensor per rank, in rank order, each with
        that rank's true number of rows. In a single process: ``[tensor]``.
    """
    if not dist.is_distributed():
        return [tensor]
    n = torch.tensor([tensor.size(0)], device=tensor.device)
    sizes = [int(s.item()) for s in dist.all_gather(n)]
    pad_rows = max(sizes) - tensor.size(0)
    if pad_rows:
        pad = tensor.new_zeros((pad_rows, ) + tuple(tensor.shape[1:]))
        tensor = torch.cat([tensor, pad], dim=0)
    gathered = dist.all_gather(tensor.contiguous())
    return [g[:s] for g, s in zip(gathered, sizes)]


def gather_indexed_rows(rows: torch.Tensor, index: torch.Tensor,
                        total: int, name: str = 'rows') -> torch.Tensor:
    """Gather rows from every rank and place each at its global index.

    Exact whatever the sampler did: padded duplicates land on the same
    index twice with the same value, and a missing index is an error.

    Args:
        rows (torch.Tensor): (n, D) local rows.
        index (torch.Tensor): (n,) long global index of each row.
        total (int): number of rows of the full result.
        name (str): what the rows are, for error messages.

    Returns:
        torch.Tensor: (total, D) rows in global order, on ``rows.device``.
    """
    index = index.to(device=rows.device, dtype=torch.long)
    all_rows = torch.cat(all_gather_variable(rows), dim=0)
    all_index = torch.cat(all_gather_variable(index), dim=0)
    if all_index.numel() and (all_index.min() < 0
                              or all_index.max() >= total):
        raise ValueError(f'{name}: index out of range [0, {total}): '
                         f'min {int(all_index.min())}, '
                         f'max {int(all_index.max())}')
    out = rows.new_zeros((total, ) + tuple(rows.shape[1:]))
    out[all_index] = all_rows.to(out.dtype)
    seen = torch.zeros(total, dtype=torch.bool, device=rows.device)
    seen[all_index] = True
    if not bool(seen.all()):
        missing = (~seen).nonzero().flatten()[:5].tolist()
        raise RuntimeError(
            f'{name}: {int((~seen).sum())} of {total} items were never '
            f'evaluated (first indices {missing}); the val/test sampler '
            'must visit every item (do not set drop_last=True there).')
    return out

