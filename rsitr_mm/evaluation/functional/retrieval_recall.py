# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Exact image-text retrieval recall with a deterministic tie rule."""
from typing import Dict, Sequence, Union

import numpy as np
import torch

RECALL_KEYS = ('i2t_R@1', 'i2t_R@5', 'i2t_R@10', 't2i_R@1', 't2i_R@5',
               't2i_R@10')


def _to_tensor(similarity: Union[torch.Tensor, np.ndarray]) -> torch.Tensor:
    if isinstance(similarity, np.ndarray):
        similarity = torch.from_numpy(similarity)
    if not isinstance(similarity, torch.Tensor):
        raise TypeError('similarity must be a torch.Tensor or np.ndarray, '
                        f'got {type(similarity).__name__}')
    if similarity.dim() != 2:
        raise ValueError('similarity must be 2-D (num_images, num_texts), '
                         f'got shape {tuple(similarity.shape)}')
    sim = similarity.detach().cpu()
    if not sim.is_floating_point():
        sim = sim.double()
    if sim.dtype in (torch.float16, torch.bfloat16):
        sim = sim.float()
    if not torch.isfinite(sim).all():
        raise ValueError('similarity contains NaN or Inf values')
    return sim


def _gold_ranks(scores: torch.Tensor, gold: torch.Tensor,
                chunk: int) -> torch.Tensor:
    """0-based rank of the gold columns of every query row.

    Args:
        scores (torch.Tensor): (Q, C) scores, one row per query.
        gold (torch.Tensor): (Q, G) long indices of each query's gold items.
        chunk (int): queries processed at once (bounds memory).

    Returns:
        torch.Tensor: (Q, G) ranks. The rank of item j for a query is the
        number of items with a strictly higher score plus the number of
        items with an equal score and a lower index.
    """
    num_items = scores.size(1)
    index = torch.arange(num_items)
    out = []
    for start in range(0, scores.size(0), chunk):
        s = scores[start:start + chunk]  # (q, C)
        g = gold[start:start + chunk]  # (q, G)
        gold_scores = s.gather(1, g)  # (q, G)
        s3 = s.unsqueeze(1)  # (q, 1, C)
        gs3 = gold_scores.unsqueeze(2)  # (q, G, 1)
        higher = (s3 > gs3).sum(-1)
        tied_before = ((s3 == gs3) &
                       (index.view(1, 1, -1) < g.unsqueeze(2))).sum(-1)
        out.append(higher + tied_before)
    return torch.cat(out, dim=0)


def retrieval_recall(similarity: Union[torch.Tensor, np.ndarray],
                     captions_per_image: int = 5,
                     topk: Sequence[int] = (1, 5, 10),
                     chunk_size: int = 256) -> Dict[str, float]:
    """Recall@K of both retrieval directions, mR and rsum, in percent.

    ``similarity[i, j]`` is the score of image ``i`` and caption ``j``;
    caption ``j`` belongs to image ``j // captions_per_image``.

    * Image-to-text (i2t): each image is one query over all captions; it is
      a hit at K when ANY of its captions ranks in the top K.
    * Text-to-image (t2i): each caption is one query over all images; it is
      a hit at K when its own image ranks in the top K.

    Tie rule (deterministic): the rank of an item is the number of items
    with a strictly higher score plus the number of items with an equal
    score and a LOWER index (0-based ranks; a hit at K means rank < K).
    So among equal scores the item listed first wins, as in a stable sort
    by descending score. RSICD's test captions contain many identical
    strings under different images, so equal scores are real.

    The computation is vectorised over queries (processed in chunks of
    ``chunk_size`` to bound memory), with no Python loop per query.

    Args:
        similarity (torch.Tensor | np.ndarray): (N, captions_per_image * N)
            image-caption scores.
        captions_per_image (int): captions of each image. Defaults to 5.
        topk (Sequence[int]): the K values. Defaults to (1, 5, 10).
        chunk_size (int): queries scored at once. Defaults to 256.

    Returns:
        dict[str, float]: ``i2t_R@K`` and ``t2i_R@K`` for every K, ``mR``
        (mean of all recalls) and ``rsum`` (their sum).
    """
    sim = _to_tensor(similarity)
    num_images, num_texts = sim.shape
    if captions_per_image < 1:
        raise ValueError(
            f'captions_per_image must be >= 1, got {captions_per_image}')
    if num_images == 0 or num_texts != num_images * captions_per_image:
        raise ValueError(
            f'similarity must have shape (N, {captions_per_image} * N) with '
            f'N >= 1, got {tuple(sim.shape)}')

    # i2t: gold captions of image i are i*cpi .. i*cpi + cpi - 1.
    gold_t = (torch.arange(num_images).unsqueeze(1) * captions_per_image +
              torch.arange(captions_per_image).unsqueeze(0))
    i2t_rank = _gold_ranks(sim, gold_t, chunk_size).min(dim=1).values
    # t2i: caption j's gold image is j // cpi.
    gold_i = (torch.arange(num_texts) // captions_per_image).unsqueeze(1)
    t2i_rank = _gold_ranks(sim.t().contiguous(), gold_i, chunk_size)[:, 0]

    result: Dict[str, float] = {}
    for k in topk:
        result[f'i2t_R@{k}'] = (i2t_rank < k).double().mean().item() * 100
    for k in topk:
        result[f't2i_R@{k}'] = (t2i_rank < k).double().mean().item() * 100
    values = list(result.values())
    result['mR'] = float(sum(values) / len(values))
    result['rsum'] = float(sum(values))
    return result


def chance_recall(num_images: int,
                  captions_per_image: int = 5,
                  topk: Sequence[int] = (1, 5, 10)) -> Dict[str, float]:
    """Expected recall of a random ranking (the chance level), in percent.

    i2t: probability that at least one of an image's ``c`` captions is in
    the top K of ``c * N`` randomly ordered captions,
    ``1 - C(cN - c, K) / C(cN, K)``; t2i: ``K / N``.

    Args:
        num_images (int): N.
        captions_per_image (int): c. Defaults to 5.
        topk (Sequence[int]): the K values.

    Returns:
        dict[str, float]: same keys as :func:`retrieval_recall`.
    """
    from math import comb
    n_txt = num_images * captions_per_image
    out: Dict[str, float] = {}
    for k in topk:
        k_eff = min(k, n_txt)
        miss = comb(n_txt - captions_per_image, k_eff) / comb(n_txt, k_eff)
        out[f'i2t_R@{k}'] = 100.0 * (1.0 - miss)
    for k in topk:
        out[f't2i_R@{k}'] = 100.0 * min(k, num_images) / num_images
    values = list(out.values())
    out['mR'] = sum(values) / len(values)
    out['rsum'] = sum(values)
    return out
