# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Distributed helpers that also work in a single process.

Cost model (what the tests in ``tests/test_utils/test_dist_budget.py``
assert): :func:`gather_sizes` is one collective and one host sync (the sizes
are needed on the host to allocate and slice); :func:`all_gather_variable`
with known ``sizes`` is exactly one more collective
(``all_gather_into_tensor`` when every rank has the same number of rows, a
padded ``all_gather`` otherwise) and no host sync.

Why these exist next to :mod:`mmengine.dist` (checked against mmengine
0.10.7): mmengine gathers tensors of equal shape (``all_gather``, a list of
per-rank tensors, no autograd) and picklable objects
(``all_gather_object``, ``collect_results``). Neither fits the two uses
here:

* the losses gather embeddings of a variable number of rows per rank and
  need gradient through their own rows (``candidate_pool`` in
  ``models/losses/utils.py``): no mmengine function carries gradient;
* evaluation (:func:`gather_indexed_rows`) places every feature row at its
  dataset index. ``collect_results`` would pickle the features (through a
  temporary folder in its CPU mode), and it orders results by assuming
  ``DefaultSampler``'s round-robin split and cuts the padding by count,
  while the rows here are placed by ``image_id`` / ``gt_text_id`` whatever
  the sampler did.

mmengine.dist is used wherever it fits: ``is_distributed``,
``get_rank``/``get_world_size`` here, ``all_reduce`` (OSFCM prototypes,
NaN guard), ``barrier`` (image cache), and the metric's own
``collect_results`` (``BaseMetric.evaluate``).
"""
from typing import List, Optional, Sequence

import torch
import torch.distributed as torch_dist
from mmengine import dist


def gather_sizes(num: int, device: torch.device) -> List[int]:
    """Number of rows of every rank, in rank order.

    One ``all_gather_into_tensor`` of a 1-element tensor and one host sync
    (``tolist``). In a single process: ``[num]`` without communication.

    Args:
        num (int): this rank's number of rows.
        device (torch.device): where the collective runs (a CUDA device for
            nccl, the CPU for gloo).

    Returns:
        list[int]: one size per rank.
    """
    if not dist.is_distributed():
        return [int(num)]
    world = dist.get_world_size()
    local = torch.tensor([int(num)], dtype=torch.long, device=device)
    out = torch.empty(world, dtype=torch.long, device=device)
    torch_dist.all_gather_into_tensor(out, local)
    return [int(s) for s in out.tolist()]


def all_gather_variable(tensor: torch.Tensor,
                        sizes: Optional[Sequence[int]] = None
                        ) -> List[torch.Tensor]:
    """All-gather tensors whose first dimension may differ between ranks.

    Args:
        tensor (torch.Tensor): (n_rank, ...) local rows.
        sizes (Sequence[int], optional): every rank's number of rows, from
            :func:`gather_sizes`; exchanged here when not given.

    Returns:
        list[torch.Tensor]: one tensor per rank, in rank order, each with
        that rank's true number of rows. In a single process: ``[tensor]``.
    """
    if not dist.is_distributed():
        return [tensor]
    if sizes is None:
        sizes = gather_sizes(tensor.size(0), tensor.device)
    sizes = [int(s) for s in sizes]
    if sizes[dist.get_rank()] != tensor.size(0):
        raise ValueError(f'all_gather_variable: this rank has '
                         f'{tensor.size(0)} rows but sizes say '
                         f'{sizes[dist.get_rank()]}')
    rows = max(sizes)
    tail = tuple(tensor.shape[1:])
    if tensor.size(0) < rows:
        pad = tensor.new_zeros((rows - tensor.size(0), ) + tail)
        tensor = torch.cat([tensor, pad], dim=0)
    tensor = tensor.contiguous()
    out = tensor.new_empty((len(sizes) * rows, ) + tail)
    torch_dist.all_gather_into_tensor(out, tensor)
    parts = out.split(rows, dim=0)
    return [p[:s] for p, s in zip(parts, sizes)]


def first_occurrence(index: torch.Tensor, total: int) -> torch.Tensor:
    """Position of the first occurrence of every value of ``index``.

    Args:
        index (torch.Tensor): (n,) long values in ``[0, total)``.
        total (int): number of possible values.

    Returns:
        torch.Tensor: (total,) long; ``first[v]`` is the smallest ``p`` with
        ``index[p] == v``, or ``n`` when ``v`` does not occur.
    """
    n = index.numel()
    order = torch.arange(n, device=index.device)
    first = torch.full((total, ), n, dtype=torch.long, device=index.device)
    return first.scatter_reduce(0, index, order, reduce='amin',
                                include_self=True)


def gather_indexed_rows(rows: torch.Tensor, index: torch.Tensor,
                        total: int, name: str = 'rows') -> torch.Tensor:
    """Gather rows from every rank and place each at its global index.

    Exact whatever the sampler did: when an index occurs more than once (the
    padded duplicates a distributed sampler adds, which are re-encoded in
    another batch and, on GPUs, need not be bit-identical), the first
    occurrence in rank order wins, deterministically. A missing index is an
    error.

    Args:
        rows (torch.Tensor): (n, D) local rows.
        index (torch.Tensor): (n,) long global index of each row.
        total (int): number of rows of the full result.
        name (str): what the rows are, for error messages.

    Returns:
        torch.Tensor: (total, D) rows in global order, on ``rows.device``.
    """
    index = index.to(device=rows.device, dtype=torch.long)
    sizes = gather_sizes(rows.size(0), rows.device)
    all_rows = torch.cat(all_gather_variable(rows, sizes), dim=0)
    all_index = torch.cat(all_gather_variable(index, sizes), dim=0)
    if all_index.numel() and (all_index.min() < 0
                              or all_index.max() >= total):
        raise ValueError(f'{name}: index out of range [0, {total}): '
                         f'min {int(all_index.min())}, '
                         f'max {int(all_index.max())}')
    first = first_occurrence(all_index, total)
    seen = first < all_index.numel()
    if not bool(seen.all()):
        missing = (~seen).nonzero().flatten()[:5].tolist()
        raise RuntimeError(
            f'{name}: {int((~seen).sum())} of {total} items were never '
            f'evaluated (first indices {missing}); the val/test sampler '
            'must visit every item (do not set drop_last=True there).')
    return all_rows[first]
