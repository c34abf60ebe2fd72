# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Exact image-text retrieval recall with a deterministic tie rule."""
from typing import Dict, Sequence, Tuple, Union

import numpy as np
import torch

from ...utils.threads import single_threaded

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
    # Stays on its device. Integers become float64 (exact up to 2**53);
    # float16 / bfloat16 are upcast chunk by chunk in _ranks (exact:
    # every half / bfloat16 value is a float32 value, so the comparisons
    # are those of the stored values).
    sim = similarity.detach()
    if not sim.is_floating_point():
        sim = sim.double()
    # aminmax propagates NaN and sees +-Inf in one pass without the
    # (N, T) bool temporary of isfinite().
    if sim.numel() and not all(
            torch.isfinite(v) for v in torch.aminmax(sim)):
        raise ValueError('similarity contains NaN or Inf values')
    return sim


def _compute_dtype(sim: torch.Tensor) -> torch.dtype:
    if sim.dtype in (torch.float16, torch.bfloat16):
        return torch.float32
    return sim.dtype


def _ranks(sim: torch.Tensor, best_caption: torch.Tensor,
           captions_per_image: int,
           chunk: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Ranks of the gold items of both directions, by counting.

    The rank of item ``g`` for a query is the number of items with a
    strictly higher score plus the number with an equal score and a lower
    index: items before ``g`` count when their score is ``>=`` the gold
    score ``o``, i.e. ``> nextafter(o, -inf)``, and items after ``g`` when
    it is ``> o`` (``g`` itself never counts). The gold caption of image
    ``i`` lies in columns ``[i*c, (i+1)*c)`` and the gold image of caption
    ``j`` is ``j // c``; so for a chunk of image rows ``[a, b)`` every
    column left of ``a*c`` and right of ``b*c`` uses one threshold per row
    (i2t) or per column (t2i), and only the (q, q*c) block of the chunk's
    own captions needs per-element thresholds. Each direction costs one
    comparison per matrix element, read chunk by chunk (cache friendly).

    Args:
        sim (torch.Tensor): (N, c * N) scores, floating point.
        best_caption (torch.Tensor): (N,) long column of the caption of
            each image to rank.
        captions_per_image (int): c.
        chunk (int): image rows processed at once (bounds memory).

    Returns:
        tuple[torch.Tensor, torch.Tensor]: (N,) i2t ranks of
        ``best_caption`` and (c * N,) t2i ranks of each caption's image,
        both long.
    """
    cpi = captions_per_image
    num_images, num_texts = sim.shape
    device = sim.device
    cdtype = _compute_dtype(sim)
    cols = torch.arange(num_texts, device=device)
    gold_img = cols // cpi
    minus_inf = torch.tensor(float('-inf'), dtype=cdtype, device=device)
    # (N, 1) per image: gold score, and the largest value below it.
    o_row = sim.gather(1, best_caption.unsqueeze(1)).to(cdtype)
    p_row = torch.nextafter(o_row, minus_inf)
    # (1, T) per caption.
    o_col = sim[gold_img, cols].to(cdtype).unsqueeze(0)
    p_col = torch.nextafter(o_col, minus_inf)
    # Block of a chunk's own captions, local coordinates (row r, column
    # m): caption m's image is row m // c; rows above it compare with >=.
    q_max = min(chunk, num_images)
    local_col = torch.arange(q_max * cpi, device=device).unsqueeze(0)
    t2i_before = (torch.arange(q_max, device=device).unsqueeze(1) <
                  local_col // cpi)  # (q, q*c)
    i2t = torch.empty(num_images, dtype=torch.long, device=device)
    t2i = torch.zeros(num_texts, dtype=torch.long, device=device)
    for a in range(0, num_images, chunk):
        b = min(a + chunk, num_images)
        q, left, right = b - a, a * cpi, b * cpi
        s = sim[a:b].to(cdtype)  # (q, T); a view when already cdtype
        # left of the chunk's captions: i2t gold is to the right (>=),
        # t2i gold image is above the chunk (>); right of them: reverse.
        s_l, s_r = s[:, :left], s[:, right:]
        rank = (s_l > p_row[a:b]).sum(1)
        rank += (s_r > o_row[a:b]).sum(1)
        t2i[:left] += (s_l > o_col[:, :left]).sum(0)
        t2i[right:] += (s_r > p_col[:, right:]).sum(0)
        # the chunk's own captions
        s_m = s[:, left:right]  # (q, q*c)
        thr = torch.where(
            local_col[:, :q * cpi] < (best_caption[a:b] - left).unsqueeze(1),
            p_row[a:b], o_row[a:b])
        rank += (s_m > thr).sum(1)
        thr = torch.where(t2i_before[:q, :q * cpi], p_col[:, left:right],
                          o_col[:, left:right])
        t2i[left:right] += (s_m > thr).sum(0)
        i2t[a:b] = rank
    return i2t, t2i


def gold_ranks(similarity: Union[torch.Tensor, np.ndarray],
               captions_per_image: int = 5,
               chunk_size: int = 64) -> Tuple[torch.Tensor, torch.Tensor]:
    """0-based rank of the gold item of every query, under the tie rule of
    :func:`retrieval_recall` (the raw material of per-query analysis and
    paired significance tests).

    Args:
        similarity (torch.Tensor | np.ndarray): (N, captions_per_image * N)
            image-caption scores.
        captions_per_image (int): captions of each image. Defaults to 5.
        chunk_size (int): image rows scored at once. Defaults to 64.

    Returns:
        tuple[torch.Tensor, torch.Tensor]: (N,) i2t ranks (best rank over
        the image's captions) and (captions_per_image * N,) t2i ranks,
        long, on the matrix's device.
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
    device = sim.device
    # i2t: the rank of an item is strictly increasing in the order (score
    # desc, index asc), so the best rank over an image's captions is the
    # rank of its best caption in that order: the highest-scoring one,
    # the lowest index among equal scores (argmax returns the first).
    own = sim.reshape(num_images, num_images, captions_per_image)
    own = own.diagonal(dim1=0, dim2=1).t()  # (N, cpi): sim[i, i*cpi + c]
    best = own.to(_compute_dtype(sim)).argmax(dim=1)
    best = torch.arange(num_images, device=device) * captions_per_image \
        + best
    # a loop of small reductions: one thread on the CPU (a thread pool
    # stalls when another process holds a core; docs/benchmarks.md)
    with single_threaded(device.type == 'cpu'):
        return _ranks(sim, best, captions_per_image, chunk_size)


def retrieval_recall(similarity: Union[torch.Tensor, np.ndarray],
                     captions_per_image: int = 5,
                     topk: Sequence[int] = (1, 5, 10),
                     chunk_size: int = 64) -> Dict[str, float]:
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

    Ranks are counted, not sorted: one comparison per matrix element and
    direction, ties included (see :func:`_ranks`). For
    i2t only the image's best caption is ranked (highest score, lowest
    index among equal scores): ranks are strictly increasing in the order
    (score desc, index asc), so its rank is the best of the image's
    captions. The matrix stays on its device (a GPU matrix is scored on
    the GPU); float16 / bfloat16 values are compared after an exact upcast
    to float32, i.e. as stored; integers are compared as float64. Queries
    are processed in chunks of ``chunk_size`` to bound memory.

    Args:
        similarity (torch.Tensor | np.ndarray): (N, captions_per_image * N)
            image-caption scores.
        captions_per_image (int): captions of each image. Defaults to 5.
        topk (Sequence[int]): the K values. Defaults to (1, 5, 10).
        chunk_size (int): queries (image rows) scored at once. Defaults to 64.

    Returns:
        dict[str, float]: ``i2t_R@K`` and ``t2i_R@K`` for every K, ``mR``
        (mean of all recalls) and ``rsum`` (their sum).
    """
    i2t_rank, t2i_rank = gold_ranks(similarity, captions_per_image,
                                    chunk_size)
    result: Dict[str, float] = {}
    # percentages from integer hit counts, divided on the host in float64:
    # a device's mean() may multiply by 1/n and differ in the last bit
    for name, rank in (('i2t', i2t_rank), ('t2i', t2i_rank)):
        for k in topk:
            hits = int((rank < k).sum().item())
            result[f'{name}_R@{k}'] = hits / rank.numel() * 100
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
