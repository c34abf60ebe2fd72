# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Helpers shared by the retrieval losses."""
from typing import Tuple

import torch
import torch.distributed as torch_dist
from mmengine import dist

from ...utils.dist import all_gather_variable


class _GatherWithGrad(torch.autograd.Function):
    """All-gather rows from every rank; gradients flow back to their owner.

    Forward concatenates every rank's rows (rank order). Backward sums the
    gradient of the full result over ranks (all-reduce, which gloo and nccl
    both support) and returns this rank's slice, so every rank receives the
    gradient that all ranks' losses put on its rows.
    """

    @staticmethod
    def forward(ctx, rows: torch.Tensor) -> torch.Tensor:
        parts = all_gather_variable(rows.detach())
        rank = dist.get_rank()
        ctx.offset = sum(p.size(0) for p in parts[:rank])
        ctx.num = rows.size(0)
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        torch_dist.all_reduce(grad)
        return grad[ctx.offset:ctx.offset + ctx.num]


def gather_candidates(
        embeds: torch.Tensor,
        image_ids: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, int]:
    """Gather candidates (negatives) from every rank, with gradients.

    Each rank scores its own anchors against every rank's candidates; the
    gradient of a candidate row is summed over all ranks' losses and sent
    back to the rank that computed the row. With DDP's gradient averaging,
    training with R processes of batch b then follows the same gradient as
    one process of batch R * b (apart from BatchNorm statistics, which stay
    per process).

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
        id_parts = all_gather_variable(image_ids)
    rank = dist.get_rank()
    offset = sum(p.size(0) for p in id_parts[:rank])
    return _GatherWithGrad.apply(embeds), torch.cat(id_parts), offset


def candidate_pool(image_embeds: torch.Tensor, text_embeds: torch.Tensor,
                   image_ids: torch.Tensor, gather: bool
                   ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Image and caption candidates of a batch, from every rank if asked.

    Returns:
        tuple: ``(all_images (M, D), all_texts (M, D), all_ids (M,),
        offset)``; without ``gather`` (or without a process group) the
        local rows and offset 0.
    """
    if not gather:
        return image_embeds, text_embeds, image_ids, 0
    all_txt, all_ids, offset = gather_candidates(text_embeds, image_ids)
    all_img, _, _ = gather_candidates(image_embeds, image_ids)
    return all_img, all_txt, all_ids, offset


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
