# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Helpers shared by the retrieval losses."""
from typing import Tuple

import torch
from mmengine import dist

from ...utils.dist import all_gather_variable


def gather_candidates(
        embeds: torch.Tensor,
        image_ids: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, int]:
    """Gather candidates (negatives) from every rank, keeping local grads.

    The local slice of the result is ``embeds`` itself, so gradients flow
    to this rank's embeddings; rows of the other ranks are constants (the
    usual CLIP recipe: each rank back-propagates through its own rows).

    Args:
        embeds (torch.Tensor): (B, D) local embeddings.
        image_ids (torch.Tensor): (B,) image id of each row.

    Returns:
        tuple: ``(all_embeds (M, D), all_ids (M,), offset)`` where
        ``offset`` is the index of this rank's first row in the result. In
        a single process: ``(embeds, image_ids, 0)``.
    """
    if not dist.is_distributed():
        return embeds, image_ids, 0
    with torch.no_grad():
        parts = all_gather_variable(embeds.detach())
        id_parts = all_gather_variable(image_ids)
    rank = dist.get_rank()
    offset = sum(p.size(0) for p in parts[:rank])
    parts[rank] = embeds
    return torch.cat(parts), torch.cat(id_parts), offset


def positive_mask(anchor_ids: torch.Tensor,
                  cand_ids: torch.Tensor) -> torch.Tensor:
    """(B, M) bool mask, True where anchor and candidate share an image."""
    return anchor_ids.view(-1, 1) == cand_ids.view(1, -1)


def as_id_tensor(image_ids, num: int, device) -> torch.Tensor:
    """Image ids as a (num,) long tensor; ``None`` means all distinct."""
    if image_ids is None:
        return torch.arange(num, device=device)
    ids = torch.as_tensor(image_ids, device=device).long().view(-1)
    if ids.numel() != num:
        raise ValueError(f'got {ids.numel()} image ids for {num} rows')
    return ids
