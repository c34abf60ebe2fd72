# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Helpers shared by the retrieval losses.

Distributed candidates (``gather_negatives=True``) come from
:func:`gather_pool`: one size exchange and ONE all-gather per call (image
rows, caption rows, image ids and scene labels travel in one packed
buffer), and one all-reduce in backward. Any loss that scores its local
anchors against every rank's rows can use it::

    pool = gather_pool(image_emb, text_emb, image_ids, labels,
                       gather=self.gather_negatives)
    # pool.images / pool.texts: (M, D) candidates, with gradient
    # pool.image_ids / pool.labels: (M,) their ids / labels
    # pool.offset: index of this rank's first row among the M candidates
"""
from typing import List, NamedTuple, Optional, Tuple

import torch
import torch.distributed as torch_dist
from mmengine import dist

from ...utils.dist import all_gather_variable, gather_sizes


class CandidatePool(NamedTuple):
    """Candidates of a batch, from every rank or from this one.

    Attributes:
        images (torch.Tensor): (M, D) image rows (gradient flows back to
            the rank that computed each row).
        texts (torch.Tensor): (M, D) caption rows, row-aligned with
            ``images``.
        image_ids (torch.Tensor): (M,) long image id of each row.
        labels (torch.Tensor | None): (M,) long scene label of each row
            (-1 unknown); None when no labels were given.
        offset (int): index of this rank's first row among the M.
    """
    images: torch.Tensor
    texts: torch.Tensor
    image_ids: torch.Tensor
    labels: Optional[torch.Tensor]
    offset: int


class _GatherWithGrad(torch.autograd.Function):
    """All-gather rows from every rank; gradients flow back to their owner.

    Forward concatenates every rank's rows (rank order) with one
    collective. Backward sums the gradient of the full result over ranks
    (all-reduce, which gloo and nccl both support) and returns this rank's
    slice, so every rank receives the gradient that all ranks' losses put
    on its rows.
    """

    @staticmethod
    def forward(ctx, rows: torch.Tensor, sizes: Tuple[int, ...]
                ) -> torch.Tensor:
        rank = dist.get_rank()
        ctx.offset = sum(sizes[:rank])
        ctx.num = rows.size(0)
        return torch.cat(all_gather_variable(rows.detach(), sizes), dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous().clone()
        torch_dist.all_reduce(grad)
        return grad[ctx.offset:ctx.offset + ctx.num], None


def _as_bits(values: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, k) long -> (B, k * 8 / itemsize) ``dtype`` with the same bytes."""
    return values.contiguous().view(dtype)


def gather_pool(image_embeds: torch.Tensor,
                text_embeds: torch.Tensor,
                image_ids: torch.Tensor,
                labels: Optional[torch.Tensor] = None,
                gather: bool = True) -> CandidatePool:
    """Image and caption candidates from every rank, with gradients.

    Each rank scores its own anchors against every rank's candidates; the
    gradient of a candidate row is summed over all ranks' losses and sent
    back to the rank that computed the row. With DDP's gradient averaging,
    training with R processes of batch b then follows the same gradient as
    one process of batch R * b (apart from BatchNorm statistics, which stay
    per process).

    Communication per call: one size exchange (one host sync), one
    all-gather of a packed ``(B, 2D + k)`` buffer (``k`` columns carry the
    ids and labels bit-for-bit), and one all-reduce in backward.

    Args:
        image_embeds (torch.Tensor): (B, D) local image rows.
        text_embeds (torch.Tensor): (B, D) local caption rows.
        image_ids (torch.Tensor): (B,) image id of each row.
        labels (torch.Tensor, optional): (B,) scene label of each row.
        gather (bool): gather from every rank. Without it, or without a
            process group, the local rows with offset 0.

    Returns:
        CandidatePool: the candidates.
    """
    if not gather or not dist.is_distributed():
        return CandidatePool(image_embeds, text_embeds, image_ids, labels, 0)
    num, dim = image_embeds.shape
    if text_embeds.shape != image_embeds.shape:
        raise ValueError('gather_pool: image and text rows must have the '
                         f'same shape, got {tuple(image_embeds.shape)} and '
                         f'{tuple(text_embeds.shape)}')
    dtype = torch.promote_types(image_embeds.dtype, text_embeds.dtype)
    meta = [image_ids.view(-1).long()]
    if labels is not None:
        meta.append(labels.view(-1).long().to(image_ids.device))
    meta = torch.stack(meta, dim=1)  # (B, 1 or 2)
    packed = torch.cat([
        image_embeds.to(dtype),
        text_embeds.to(dtype),
        _as_bits(meta, dtype)
    ], dim=1)
    sizes = tuple(gather_sizes(num, packed.device))
    rank = dist.get_rank()
    offset = sum(sizes[:rank])
    full = _GatherWithGrad.apply(packed, sizes)
    all_meta = full[:, 2 * dim:].detach().contiguous().view(torch.long)
    return CandidatePool(
        images=full[:, :dim].to(image_embeds.dtype),
        texts=full[:, dim:2 * dim].to(text_embeds.dtype),
        image_ids=all_meta[:, 0],
        labels=all_meta[:, 1] if labels is not None else None,
        offset=offset)


def gather_candidates(
        embeds: torch.Tensor,
        image_ids: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, int]:
    """Gather one modality's rows from every rank, with gradients.

    Kept for callers that need a single modality; prefer
    :func:`gather_pool`, which gathers both modalities at once.

    Args:
        embeds (torch.Tensor): (B, D) local embeddings.
        image_ids (torch.Tensor): (B,) image id of each row.

    Returns:
        tuple: ``(all_embeds (M, D), all_ids (M,), offset)``. In a single
        process: ``(embeds, image_ids, 0)``.
    """
    pool = gather_pool(embeds, embeds, image_ids, None, True)
    return pool.images, pool.image_ids, pool.offset


def candidate_pool(image_embeds: torch.Tensor, text_embeds: torch.Tensor,
                   image_ids: torch.Tensor, gather: bool
                   ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Image and caption candidates of a batch, from every rank if asked.

    Same as :func:`gather_pool` without labels, as a tuple.

    Returns:
        tuple: ``(all_images (M, D), all_texts (M, D), all_ids (M,),
        offset)``; without ``gather`` (or without a process group) the
        local rows and offset 0.
    """
    pool = gather_pool(image_embeds, text_embeds, image_ids, None, gather)
    return pool.images, pool.texts, pool.image_ids, pool.offset


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


def scores_fp32(anchor: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
    """(B, M) similarities ``anchor @ cand.T`` computed in float32.

    Autocast is disabled for the product so that under AMP (fp16/bf16) the
    logits (up to ``100 * cos``) and hinge margins keep float32 precision.
    """
    device_type = anchor.device.type
    with torch.autocast(device_type=device_type, enabled=False):
        return anchor.float() @ cand.float().t()


__all__: List[str] = [
    'CandidatePool', 'gather_pool', 'gather_candidates', 'candidate_pool',
    'positive_mask', 'as_id_tensor', 'scores_fp32'
]
