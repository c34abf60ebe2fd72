# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Training-free test-time re-ranking of an image-text similarity matrix.

Every re-ranker takes the ``(N_img, N_txt)`` similarity matrix ``S`` of a
test set and returns **two** re-ranked matrices of the same shape:

* ``sim_i2t``: used for image-to-text retrieval (each ROW is an image
  query ranking the captions);
* ``sim_t2i``: used for text-to-image retrieval (each COLUMN is a caption
  query ranking the images).

The directions need different normalisations: a normalisation over the
*query bank* of i2t runs over the images (a column of ``S``), the one of
t2i over the captions (a row of ``S``). Scores are only compared within a
query, so the returned values are ranking scores, not similarities.

All of them, except ``'none'``, use the OTHER test queries (the query
bank is the test set itself unless a bank is given): results obtained with
them must be reported as transductive (as the published methods do).

Re-rankers (``type`` of :func:`build_reranker`):

* ``'none'``: the raw matrix for both directions (a no-op).
* ``'inverted_softmax'``: each gallery item's scores are normalised by a
  softmax over the query bank (Smith et al., ICLR 2017; the "IS" of
  QB-Norm): ``s(q, g) / T - logsumexp_{q' in bank} s(q', g) / T``.
* ``'dual_softmax'``: the similarity times that softmax prior (DSL, Cheng
  et al., 2021): ``s(q, g) * softmax_{q' in bank}(s(q', g) / T)[q]``.
* ``'qb_norm'``: querybank normalisation with dynamic inverted softmax
  (Bogolin et al., CVPR 2022): a query whose top-1 gallery item is in the
  *activation set* (the top-``k`` items of the bank queries) gets the
  inverted softmax scores, the others keep their raw scores. Without a
  separate bank the test queries serve as bank, each query leaving itself
  out of the activation set.
* ``'k_reciprocal'``: cross-modal neighbourhood re-ranking (in the spirit
  of k-reciprocal re-ranking and of the cross-modal re-ranking of Wang et
  al., MTFN, ACM MM 2019): the top-``k`` gallery items of every query are
  re-sorted by ``(1 - lam) * own_rank + lam * reverse_rank``, where
  ``reverse_rank`` is the rank of the query in the gallery item's own
  ranked list (the other direction); items outside the top ``k`` keep
  their order below them.
"""
import inspect
from typing import Callable, Dict, Optional, Tuple, Union

import numpy as np
import torch

SimPair = Tuple[torch.Tensor, torch.Tensor]


def _as_matrix(sim: Union[torch.Tensor, np.ndarray]) -> torch.Tensor:
    if isinstance(sim, np.ndarray):
        sim = torch.from_numpy(sim)
    if not isinstance(sim, torch.Tensor) or sim.dim() != 2:
        raise ValueError(
            're-ranking expects a 2-D (num_images, num_texts) '
            f'similarity matrix, got {getattr(sim, "shape", sim)}')
    return sim.detach().double()


def _check_temperature(temperature: float) -> None:
    if not temperature > 0:
        raise ValueError(f'temperature must be > 0, got {temperature}')


def _inverted_softmax_qg(scores: torch.Tensor, bank: torch.Tensor,
                         temperature: float) -> torch.Tensor:
    """IS scores (log domain) of queries ``scores`` (Q, G) with a bank
    (B, G) of query-gallery similarities."""
    return scores / temperature - torch.logsumexp(
        bank / temperature, dim=0, keepdim=True)


def _oriented(sim: torch.Tensor, bank_i2t: Optional[torch.Tensor],
              bank_t2i: Optional[torch.Tensor]):
    """Query x gallery matrices and banks of both directions.

    i2t: queries = images (rows of ``sim``), gallery = captions; bank
    (B_img, N_txt). t2i: queries = captions, gallery = images: the
    transpose, bank (B_txt, N_img) (given as ``(N_img, B_txt)``, like
    ``sim``).
    """
    q_i2t = sim
    q_t2i = sim.t()
    b_i2t = q_i2t if bank_i2t is None else _as_matrix(bank_i2t)
    b_t2i = q_t2i if bank_t2i is None else _as_matrix(bank_t2i).t()
    if b_i2t.size(1) != q_i2t.size(1):
        raise ValueError('bank_i2t must be (B, num_texts) = (B, '
                         f'{q_i2t.size(1)}), got {tuple(b_i2t.shape)}')
    if b_t2i.size(1) != q_t2i.size(1):
        raise ValueError('bank_t2i must be (num_images, B) = '
                         f'({q_t2i.size(1)}, B), got '
                         f'{tuple(b_t2i.t().shape)}')
    return (q_i2t, b_i2t), (q_t2i, b_t2i)


def no_rerank(sim: Union[torch.Tensor, np.ndarray]) -> SimPair:
    """The raw matrix for both directions.

    Args:
        sim (torch.Tensor | np.ndarray): (N_img, N_txt) similarities.

    Returns:
        tuple[torch.Tensor, torch.Tensor]: ``(sim, sim)`` (the input tensor
        itself when it is one).
    """
    if isinstance(sim, np.ndarray):
        sim = torch.from_numpy(sim)
    return sim, sim


def inverted_softmax(sim: Union[torch.Tensor, np.ndarray],
                     temperature: float = 0.05,
                     bank_i2t: Optional[torch.Tensor] = None,
                     bank_t2i: Optional[torch.Tensor] = None) -> SimPair:
    """Inverted softmax over the query bank, per direction.

    Args:
        sim (torch.Tensor | np.ndarray): (N_img, N_txt) similarities.
        temperature (float): softmax temperature T. Defaults to 0.05.
        bank_i2t (torch.Tensor, optional): (B, N_txt) similarities of bank
            image queries with the test captions; default: the test images.
        bank_t2i (torch.Tensor, optional): (N_img, B) similarities of the
            test images with bank caption queries; default: the test
            captions.

    Returns:
        tuple[torch.Tensor, torch.Tensor]: ``(sim_i2t, sim_t2i)``, both
        (N_img, N_txt) float64 (log-domain IS scores).
    """
    _check_temperature(temperature)
    sim = _as_matrix(sim)
    (q1, b1), (q2, b2) = _oriented(sim, bank_i2t, bank_t2i)
    return (_inverted_softmax_qg(q1, b1, temperature),
            _inverted_softmax_qg(q2, b2, temperature).t())


def dual_softmax(sim: Union[torch.Tensor, np.ndarray],
                 temperature: float = 0.05,
                 bank_i2t: Optional[torch.Tensor] = None,
                 bank_t2i: Optional[torch.Tensor] = None) -> SimPair:
    """Dual softmax: the similarity times a softmax prior over the queries.

    Args:
        sim (torch.Tensor | np.ndarray): (N_img, N_txt) similarities.
        temperature (float): softmax temperature T. Defaults to 0.05.
        bank_i2t (torch.Tensor, optional): see :func:`inverted_softmax`.
            With a bank, the prior of a test query is
            ``exp(s(q, g) / T) / sum_{q' in bank} exp(s(q', g) / T)``.
        bank_t2i (torch.Tensor, optional): see :func:`inverted_softmax`.

    Returns:
        tuple[torch.Tensor, torch.Tensor]: ``(sim_i2t, sim_t2i)``, both
        (N_img, N_txt) float64.
    """
    _check_temperature(temperature)
    sim = _as_matrix(sim)
    out = []
    for q, b in _oriented(sim, bank_i2t, bank_t2i):
        prior = torch.exp(_inverted_softmax_qg(q, b, temperature))
        out.append(q * prior)
    return out[0], out[1].t()


def _qb_norm_qg(q: torch.Tensor, b: torch.Tensor, same: bool, k: int,
                temperature: float) -> torch.Tensor:
    """Dynamic inverted softmax for queries ``q`` (Q, G), bank ``b``."""
    num_gallery = q.size(1)
    k = min(k, num_gallery)
    bank_top = torch.topk(b, k, dim=1).indices  # (B, k)
    # hits[g] = how many bank queries have g in their top k
    hits = torch.zeros(num_gallery, dtype=torch.long)
    hits.index_add_(0, bank_top.flatten(),
                    torch.ones(bank_top.numel(), dtype=torch.long))
    top1 = q.argmax(dim=1)  # (Q,) (ties: first index, as the metric)
    count = hits[top1]
    if same:  # leave the query itself out of the activation set
        own = (bank_top == top1.unsqueeze(1)).any(dim=1).long()
        count = count - own
    active = count > 0
    out = q.clone()
    if active.any():
        out[active] = _inverted_softmax_qg(q[active], b, temperature)
    return out


def qb_norm(sim: Union[torch.Tensor, np.ndarray],
            temperature: float = 0.05,
            k: int = 1,
            bank_i2t: Optional[torch.Tensor] = None,
            bank_t2i: Optional[torch.Tensor] = None) -> SimPair:
    """Querybank normalisation with dynamic inverted softmax.

    Args:
        sim (torch.Tensor | np.ndarray): (N_img, N_txt) similarities.
        temperature (float): softmax temperature T. Defaults to 0.05.
        k (int): top-k of each bank query forming the activation set.
            Defaults to 1.
        bank_i2t (torch.Tensor, optional): see :func:`inverted_softmax`;
            default: the test images, each query leaving itself out of the
            activation set.
        bank_t2i (torch.Tensor, optional): see :func:`inverted_softmax`.

    Returns:
        tuple[torch.Tensor, torch.Tensor]: ``(sim_i2t, sim_t2i)``, both
        (N_img, N_txt) float64; a row (i2t) / column (t2i) holds either
        the raw similarities or the log-domain IS scores of its query.
    """
    _check_temperature(temperature)
    if k < 1:
        raise ValueError(f'k must be >= 1, got {k}')
    sim = _as_matrix(sim)
    (q1, b1), (q2, b2) = _oriented(sim, bank_i2t, bank_t2i)
    return (_qb_norm_qg(q1, b1, bank_i2t is None, k, temperature),
            _qb_norm_qg(q2, b2, bank_t2i is None, k, temperature).t())


def _ranks(scores: torch.Tensor) -> torch.Tensor:
    """0-based rank of every column in each row, with the metric's tie
    rule (equal scores: lower index first)."""
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order,
                   torch.arange(scores.size(1)).expand_as(order).contiguous())
    return ranks


def _k_reciprocal_qg(own: torch.Tensor, reverse: torch.Tensor, k: int,
                     lam: float) -> torch.Tensor:
    """Re-sort the top ``k`` of each query row by the combined rank.

    Args:
        own (torch.Tensor): (Q, G) rank of each gallery item for the query.
        reverse (torch.Tensor): (Q, G) rank of the query for each item.
        k (int): re-sorted head size.
        lam (float): weight of the reverse rank.

    Returns:
        torch.Tensor: (Q, G) float64 scores ``G - new_rank``.
    """
    num_gallery = own.size(1)
    own_np = own.numpy()
    top = own_np < k
    combined = (1 - lam) * own_np + lam * reverse.numpy()
    combined = np.where(top, combined, np.inf)
    # top-k items first, by combined rank, ties by their own rank; the
    # others (own rank >= k) after them in their original order
    order = np.lexsort((own_np, combined), axis=-1)  # (Q, G)
    new_rank = np.empty_like(order)
    np.put_along_axis(
        new_rank,
        order,
        np.broadcast_to(np.arange(num_gallery), order.shape),
        axis=-1)
    return torch.from_numpy((num_gallery - new_rank).astype(np.float64))


def k_reciprocal(sim: Union[torch.Tensor, np.ndarray],
                 k: int = 10,
                 lam: float = 0.5) -> SimPair:
    """Cross-modal neighbourhood (k-reciprocal style) re-ranking.

    For an image query ``i`` and a caption ``j`` in its top ``k``, the
    reverse rank is the rank of ``i`` in caption ``j``'s ranking of the
    images (and symmetrically for caption queries). Mutual neighbours move
    up.

    Args:
        sim (torch.Tensor | np.ndarray): (N_img, N_txt) similarities.
        k (int): size of the re-sorted head of each list. Defaults to 10.
        lam (float): weight of the reverse rank in ``[0, 1]``; 0 keeps the
            raw order. Defaults to 0.5.

    Returns:
        tuple[torch.Tensor, torch.Tensor]: ``(sim_i2t, sim_t2i)``, both
        (N_img, N_txt) float64 rank scores (higher is better).
    """
    if k < 1:
        raise ValueError(f'k must be >= 1, got {k}')
    if not 0 <= lam <= 1:
        raise ValueError(f'lam must be in [0, 1], got {lam}')
    sim = _as_matrix(sim)
    rank_i2t = _ranks(sim)  # (N_img, N_txt): rank of text j for image i
    rank_t2i = _ranks(sim.t())  # (N_txt, N_img): rank of image i for text j
    sim_i2t = _k_reciprocal_qg(rank_i2t, rank_t2i.t(), k, lam)
    sim_t2i = _k_reciprocal_qg(rank_t2i, rank_i2t.t(), k, lam).t()
    return sim_i2t, sim_t2i


#: ``type`` -> re-ranking function (see the module docstring).
RERANKERS: Dict[str, Callable[..., SimPair]] = {
    'none': no_rerank,
    'inverted_softmax': inverted_softmax,
    'dual_softmax': dual_softmax,
    'qb_norm': qb_norm,
    'k_reciprocal': k_reciprocal,
}


def build_reranker(
    cfg: Union[None, str, dict, Callable]
) -> Optional[Callable[[torch.Tensor], SimPair]]:
    """A re-ranker ``sim -> (sim_i2t, sim_t2i)`` from its config.

    Args:
        cfg (None | str | dict | Callable): None (no re-ranking), a
            :data:`RERANKERS` key, ``dict(type=KEY, **kwargs)`` (e.g.
            ``dict(type='dual_softmax', temperature=0.05)``) or a callable.

    Returns:
        Callable | None: the re-ranker, None for ``cfg=None``.
    """
    if cfg is None or callable(cfg):
        return cfg
    if isinstance(cfg, str):
        cfg = dict(type=cfg)
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise ValueError(f'rerank must be None or dict(type=..., ...), got '
                         f'{cfg!r}; types: {sorted(RERANKERS)}.')
    kwargs = dict(cfg)
    name = kwargs.pop('type')
    if name not in RERANKERS:
        raise ValueError(f'Unknown rerank type {name!r}: expected one of '
                         f'{sorted(RERANKERS)}.')
    fn = RERANKERS[name]
    params = inspect.signature(fn).parameters
    bad = [k for k in kwargs if k not in params or k == 'sim']
    if bad:
        allowed = [p for p in params if p != 'sim']
        raise TypeError(f'rerank type {name!r} got unknown argument(s) '
                        f'{bad}; it accepts {allowed}.')

    def reranker(sim):
        return fn(sim, **kwargs)

    reranker.__name__ = name
    reranker.cfg = dict(cfg)
    return reranker


def merge_directions(metrics_i2t: Dict[str, float],
                     metrics_t2i: Dict[str, float]) -> Dict[str, float]:
    """Recall dict with the ``i2t_*`` numbers of one evaluation and the
    ``t2i_*`` numbers of another; ``mR`` and ``rsum`` recomputed.

    Keys may carry a prefix (``retrieval/i2t_R@1``); other keys are taken
    from ``metrics_i2t``.

    Args:
        metrics_i2t (dict): metrics of the i2t-re-ranked matrix.
        metrics_t2i (dict): metrics of the t2i-re-ranked matrix.

    Returns:
        dict[str, float]: the merged metrics.
    """
    out: Dict[str, float] = {}
    recalls = []
    for key, value in metrics_i2t.items():
        name = key.rsplit('/', 1)[-1]
        if name.startswith('t2i_'):
            value = metrics_t2i[key]
        if name.startswith(('i2t_R@', 't2i_R@')):
            recalls.append(value)
        out[key] = value
    for key in out:
        name = key.rsplit('/', 1)[-1]
        if name == 'mR' and recalls:
            out[key] = float(sum(recalls) / len(recalls))
        elif name == 'rsum' and recalls:
            out[key] = float(sum(recalls))
    return out


def evaluate_reranked(evaluator,
                      sim: Optional[torch.Tensor],
                      reranker: Callable[[torch.Tensor], SimPair],
                      prefix: str = 'rerank/') -> Dict[str, float]:
    """Evaluate the re-ranked matrices of ``sim`` with ``evaluator``.

    ``sim`` is only needed (and only re-ranked) on the process that feeds
    the evaluator (``sim`` is None elsewhere); every process calls
    ``evaluator.evaluate(1)`` twice (i2t and t2i matrices), as the
    retrieval loops do.

    Args:
        evaluator (mmengine.evaluator.Evaluator): e.g. an
            ``RSRetrievalMetric`` evaluator.
        sim (torch.Tensor, optional): (N_img, N_txt) raw similarities.
        reranker (Callable): from :func:`build_reranker`.
        prefix (str): prefix of the returned keys. Defaults to
            ``'rerank/'``.

    Returns:
        dict[str, float]: the merged re-ranked metrics, keys prefixed.
    """
    pair = reranker(sim) if sim is not None else (None, None)
    results = []
    for mat in pair:
        if mat is not None:
            # float64 kept: re-ranked scores may differ by less than a
            # float32 step
            evaluator.process(
                data_samples=[dict(similarity=mat.cpu())], data_batch=None)
        results.append(evaluator.evaluate(1))
    merged = merge_directions(results[0], results[1])
    return {prefix + k: v for k, v in merged.items()}
