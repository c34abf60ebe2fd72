# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Exact top-k search over an embedding gallery, and the search functions.

:func:`exact_topk` scores every gallery vector (nothing is approximated) in
chunks, so its memory is bounded by ``chunk_size`` whatever the gallery
size, and the gallery may be a memory-mapped file larger than RAM.
"""
import warnings
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn

from ..utils.threads import limited_threads
from .image_index import ImageIndex
from .model_loading import (encode_image_files, encode_texts, model_identity,
                            unknown_word_queries)

ArrayLike = Union[np.ndarray, torch.Tensor]

_DTYPES = {'float32': torch.float32, 'float16': torch.float16}


def _as_tensor(x: ArrayLike, dtype: torch.dtype,
               device: torch.device) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(device=device, dtype=dtype)
    # np.array copies (a read-only memory map becomes a writable block) in
    # the stored type; torch then converts (vectorised, faster than numpy).
    block = torch.from_numpy(np.array(x, order='C'))
    return block.to(device=device, dtype=dtype)


def _sorted_candidates(scores: torch.Tensor, index: torch.Tensor,
                       k: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` best of each row ordered by (score desc, index asc).

    Args:
        scores (torch.Tensor): (Q, M) scores.
        index (torch.Tensor): (Q, M) gallery indices of those scores; for
            equal scores, columns must be in ascending index order.
        k (int): how many to keep (``<= M``).
    """
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    order = order[:, :k]
    return scores.gather(1, order), index.gather(1, order)


def _chunk_topk(scores: torch.Tensor, k: int
                ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Top-k columns of a score block with ties broken by lower column.

    ``torch.topk`` picks an arbitrary member of a tie, so rows where the
    k-th and (k+1)-th values are equal (a tie crossing the selection
    boundary) are redone with a stable full sort; the others are only
    re-ordered.

    Returns:
        tuple: (Q, k) scores and (Q, k) column indices, ordered by
        (score desc, column asc).
    """
    num_cols = scores.shape[1]
    if k < num_cols:
        # One more than needed: a tie between the k-th and the (k+1)-th
        # value means the selection among tied columns is arbitrary.
        vals, cols = torch.topk(scores, k + 1, dim=1, largest=True,
                                sorted=True)
        ambiguous = vals[:, k - 1] == vals[:, k]
        vals, cols = vals[:, :k], cols[:, :k]
    else:
        vals, cols = torch.topk(scores, k, dim=1, largest=True, sorted=True)
        ambiguous = torch.zeros(len(scores), dtype=torch.bool,
                                device=scores.device)
    # Order the k selected columns by column, then stably by score.
    cols, perm = torch.sort(cols, dim=1)
    vals = vals.gather(1, perm)
    vals, cols = _sorted_candidates(vals, cols, k)
    if ambiguous.any():
        rows = ambiguous.nonzero().flatten()
        sub = scores[rows]
        order = torch.sort(sub, dim=1, descending=True,
                           stable=True).indices[:, :k]
        vals[rows] = sub.gather(1, order)
        cols[rows] = order
    return vals, cols


def exact_topk(queries: ArrayLike,
               gallery: ArrayLike,
               k: int,
               chunk_size: int = 65536,
               dtype: str = 'float32',
               backend: str = 'torch',
               device: Optional[Union[str, torch.device]] = None,
               threads: Optional[int] = None
               ) -> Tuple[np.ndarray, np.ndarray]:
    """Exact top-k inner-product search by chunked matrix products.

    The gallery is read ``chunk_size`` rows at a time; each block of scores
    ``queries @ chunk.T`` is reduced to its top-k and merged with the
    running top-k. Every gallery row is scored, so the result is the one of
    ``scores = queries @ gallery.T`` followed by a top-k: same indices and
    scores (up to the rounding of each dot product in ``dtype``). Ties are
    broken by the lower gallery index, and rows are ordered by score
    (descending), then index (ascending). Memory beyond the inputs is
    ``O(chunk_size * (Q + D))`` whatever the gallery size.

    Args:
        queries (np.ndarray | torch.Tensor): (Q, D) query embeddings.
        gallery (np.ndarray | np.memmap | torch.Tensor): (N, D) gallery.
        k (int): results per query; ``min(k, N)`` columns are returned.
        chunk_size (int): gallery rows per matrix product.
        dtype (str): ``'float32'`` or ``'float16'``, the precision of the
            products (float16 is fast on GPUs, slow on most CPUs).
        backend (str): ``'torch'`` (default) or ``'faiss'`` (a flat
            inner-product index; needs the ``faiss`` package, copies the
            whole gallery to float32 in RAM, and does not promise the
            lower-index tie rule).
        device (str | torch.device, optional): where to compute; defaults
            to the queries' device for tensors, else the CPU. The search
            functions pass the model's device: on a GPU the gallery is
            copied there one chunk at a time (a reused buffer) and the
            products and top-k run there.
        threads (int, optional): intra-op CPU threads for the search (the
            process's setting is restored afterwards); ``None`` keeps the
            process's setting, which the tools choose at start
            (:func:`rsitr_mm.utils.threads.setup_threads`: the free cores).
            On a CPU shared with busy processes, ``threads=1`` avoids the
            stalls of a thread pool (``docs/benchmarks.md``, "Threads on a
            shared machine"). Ignored on a GPU and by ``faiss``.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``scores`` (Q, k) float32 and
        ``indices`` (Q, k) int64.
    """
    if k < 1:
        raise ValueError(f'k must be >= 1, got {k}')
    if chunk_size < 1:
        raise ValueError(f'chunk_size must be >= 1, got {chunk_size}')
    if dtype not in _DTYPES:
        raise ValueError(
            f"dtype must be 'float32' or 'float16', got {dtype!r}")
    if threads is not None and threads < 1:
        raise ValueError(f'threads must be >= 1 or None, got {threads}')
    if queries.ndim != 2 or gallery.ndim != 2:
        raise ValueError('queries and gallery must be 2-D (Q, D) and '
                         f'(N, D), got {tuple(queries.shape)} and '
                         f'{tuple(gallery.shape)}')
    if queries.shape[1] != gallery.shape[1]:
        raise ValueError(
            f'queries are {queries.shape[1]}-d but the gallery is '
            f'{gallery.shape[1]}-d')
    num_gallery = int(gallery.shape[0])
    if num_gallery == 0:
        raise ValueError('the gallery is empty')
    k = min(k, num_gallery)

    if backend == 'faiss':
        return _faiss_topk(queries, gallery, k, chunk_size)
    if backend != 'torch':
        raise ValueError(
            f"backend must be 'torch' or 'faiss', got {backend!r}")

    if device is None:
        device = queries.device if isinstance(queries,
                                              torch.Tensor) else 'cpu'
    device = torch.device(device)
    with limited_threads(threads if device.type == 'cpu' else None):
        return _torch_topk(queries, gallery, k, chunk_size, _DTYPES[dtype],
                           device)


def _torch_topk(queries: ArrayLike, gallery: ArrayLike, k: int,
                chunk_size: int, tdtype: torch.dtype,
                device: torch.device) -> Tuple[np.ndarray, np.ndarray]:
    """The chunked product and top-k merge of :func:`exact_topk` (inputs
    already checked; ``k <= N``)."""
    num_gallery = int(gallery.shape[0])
    q = _as_tensor(queries, tdtype, device)
    num_queries = q.shape[0]
    # Reused buffers: a fresh multi-MiB allocation per chunk costs page
    # faults on the CPU; the block buffer receives conversions (float16
    # store, float32 products) and host -> device copies.
    score_buf = torch.empty(num_queries * chunk_size, dtype=tdtype,
                            device=device)
    block_buf = None
    best_scores = best_index = None
    for start in range(0, num_gallery, chunk_size):
        stop = min(start + chunk_size, num_gallery)
        block = _gallery_block(gallery, start, stop)
        if block.dtype != tdtype or block.device != device:
            if block_buf is None:
                block_buf = torch.empty((chunk_size, block.shape[1]),
                                        dtype=tdtype, device=device)
            block = block_buf[:stop - start].copy_(block)
        scores = score_buf[:num_queries * (stop - start)].view(
            num_queries, stop - start)
        torch.mm(q, block.t(), out=scores)
        vals, cols = _chunk_topk(scores, min(k, stop - start))
        vals = vals.float()
        cols = cols + start
        if best_scores is None:
            best_scores, best_index = vals, cols
        else:
            # Earlier results first: all their indices are lower, so the
            # stable sort keeps the lower-index-first rule across chunks.
            best_scores, best_index = _sorted_candidates(
                torch.cat([best_scores, vals], dim=1),
                torch.cat([best_index, cols], dim=1), k)
    return (best_scores.cpu().numpy().astype(np.float32),
            best_index.cpu().numpy().astype(np.int64))


def _gallery_block(gallery: ArrayLike, start: int,
                   stop: int) -> torch.Tensor:
    """Rows ``[start, stop)`` of the gallery as a tensor, without a copy
    where possible (a numpy array or memory map is wrapped, not copied)."""
    block = gallery[start:stop]
    if isinstance(block, torch.Tensor):
        return block.detach()
    block = np.asarray(block)
    if not block.flags.c_contiguous or block.dtype.byteorder == '>':
        block = np.ascontiguousarray(block, dtype=block.dtype.newbyteorder(
            '='))
    with warnings.catch_warnings():
        # read-only memory maps: the tensor is only read
        warnings.simplefilter('ignore', UserWarning)
        return torch.from_numpy(block)


def _faiss_topk(queries: ArrayLike, gallery: ArrayLike, k: int,
                chunk_size: int) -> Tuple[np.ndarray, np.ndarray]:
    try:
        import faiss
    except ImportError as e:
        raise ImportError(
            "backend='faiss' needs the faiss package (pip install "
            "faiss-cpu, or faiss-gpu); use backend='torch' otherwise."
        ) from e
    dim = int(gallery.shape[1])
    index = faiss.IndexFlatIP(dim)
    for start in range(0, int(gallery.shape[0]), chunk_size):
        block = gallery[start:start + chunk_size]
        if isinstance(block, torch.Tensor):
            block = block.detach().cpu().numpy()
        index.add(np.ascontiguousarray(block, dtype=np.float32))
    if isinstance(queries, torch.Tensor):
        queries = queries.detach().cpu().numpy()
    scores, indices = index.search(
        np.ascontiguousarray(queries, dtype=np.float32), k)
    return scores.astype(np.float32), indices.astype(np.int64)


@dataclass
class SearchResult:
    """Ranked results of several queries.

    Attributes:
        queries (list[str]): the queries (captions or image paths).
        scores (np.ndarray): (Q, k) cosine similarities, best first.
        indices (np.ndarray): (Q, k) positions in the searched collection.
        items (list[list[str]]): for every query, the k results (image
            paths or captions).
        unknown_queries (list[int]): positions of the text queries none of
            whose words the model knows (their ranking carries no
            information; word-vocabulary models only, see
            :func:`~rsitr_mm.apis.model_loading.unknown_word_queries`).
    """
    queries: List[str]
    scores: np.ndarray
    indices: np.ndarray
    items: List[List[str]] = field(default_factory=list)
    unknown_queries: List[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.queries)

    def format(self) -> str:
        """Human-readable ranking, one block per query."""
        lines = []
        for q, row_items, row_scores in zip(self.queries, self.items,
                                            self.scores):
            lines.append(f'query: {q}')
            for rank, (item, score) in enumerate(
                    zip(row_items, row_scores), 1):
                lines.append(f'  {rank:>3}. {score:+.4f}  {item}')
        return '\n'.join(lines)


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU if none).

    Searches run there: the query embeddings are moved back to it and the
    gallery is streamed to it chunk by chunk (see :func:`exact_topk`).
    """
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device('cpu')


def _search_index(index: ImageIndex, feats: torch.Tensor, queries,
                  k: int, chunk_size: int, dtype: str, backend: str,
                  device: torch.device) -> SearchResult:
    scores, indices = exact_topk(
        feats, index.embeddings, k, chunk_size=chunk_size, dtype=dtype,
        backend=backend, device=device)
    paths = index.paths
    items = [[paths[int(i)] for i in row] for row in indices]
    return SearchResult(list(queries), scores, indices, items)


def search_by_text(model: nn.Module,
                   index: ImageIndex,
                   texts: Union[str, Sequence[str]],
                   k: int = 5,
                   chunk_size: int = 65536,
                   dtype: str = 'float32',
                   backend: str = 'torch') -> SearchResult:
    """Text -> image search over an :class:`ImageIndex`.

    Args:
        model (nn.Module): the retriever the index was built with (checked
            against the index's recorded identity).
        index (ImageIndex): the image index.
        texts (str | Sequence[str]): one or several captions.
        k (int): results per caption.
        chunk_size, dtype, backend: see :func:`exact_topk`.

    Returns:
        SearchResult: ``items`` are image paths.
    """
    texts = [texts] if isinstance(texts, str) else list(texts)
    index.check_model(model_identity(model))
    feats = encode_texts(model, texts)
    result = _search_index(index, feats, texts, k, chunk_size, dtype,
                           backend, model_device(model))
    result.unknown_queries = unknown_word_queries(model, texts)
    return result


def search_by_image(model: nn.Module,
                    index: ImageIndex,
                    image_paths: Union[str, Sequence[str]],
                    k: int = 5,
                    chunk_size: int = 65536,
                    dtype: str = 'float32',
                    backend: str = 'torch') -> SearchResult:
    """Image -> image search over an :class:`ImageIndex`.

    Query images go through the same test pipeline as the indexed ones; an
    unreadable query image raises ``ValueError``.

    Returns:
        SearchResult: ``items`` are image paths.
    """
    image_paths = [image_paths] if isinstance(image_paths, str) \
        else list(image_paths)
    index.check_model(model_identity(model))
    feats = _encode_query_images(model, image_paths)
    return _search_index(index, feats, image_paths, k, chunk_size, dtype,
                         backend, model_device(model))


def _encode_query_images(model: nn.Module,
                         image_paths: Sequence[str]) -> torch.Tensor:
    feats, _, failed = encode_image_files(model, image_paths)
    if failed:
        detail = '; '.join(f'{image_paths[i]}: {r}'
                           for i, r in failed.items())
        raise ValueError(f'cannot read query image(s): {detail}')
    return feats


def search_captions(model: nn.Module,
                    image_paths: Union[str, Sequence[str]],
                    captions: Sequence[str],
                    k: int = 5,
                    chunk_size: int = 65536,
                    dtype: str = 'float32') -> SearchResult:
    """Image -> caption search over a set of captions.

    Args:
        model (nn.Module): the retriever.
        image_paths (str | Sequence[str]): query image file(s).
        captions (Sequence[str]): the candidate captions.
        k (int): captions per image.

    Returns:
        SearchResult: ``items`` are captions.
    """
    image_paths = [image_paths] if isinstance(image_paths, str) \
        else list(image_paths)
    captions = list(captions)
    if not captions:
        raise ValueError('no caption to search')
    img = _encode_query_images(model, image_paths)
    txt = encode_texts(model, captions)
    scores, indices = exact_topk(
        img, txt, k, chunk_size=chunk_size, dtype=dtype,
        device=model_device(model))
    items = [[captions[int(i)] for i in row] for row in indices]
    return SearchResult(image_paths, scores, indices, items)
