# Copyright (c) rsitr_mm contributors. All rights reserved.
"""2-D maps of embeddings (t-SNE / PCA) and their scatter plots.

``reduce_to_2d(method='auto')`` uses scikit-learn's t-SNE when scikit-learn
is installed and otherwise the small exact t-SNE written here in numpy
(O(N^2) memory and time per iteration, fine for a few thousand points).
``method='pca'`` gives a deterministic linear projection.
"""
import os
import os.path as osp
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch

ArrayLike = Union[np.ndarray, torch.Tensor]


def _to_numpy(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def pca_2d(feats: ArrayLike) -> np.ndarray:
    """Project (N, D) features on their first two principal axes.

    The sign of each axis is fixed (largest-magnitude loading positive) so the
    result is deterministic.

    Returns:
        np.ndarray: (N, 2).
    """
    x = _to_numpy(feats)
    if x.ndim != 2:
        raise ValueError(f'pca_2d expects (N, D) features, got {x.shape}.')
    x = x - x.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    comps = vt[:2]
    if comps.shape[0] < 2:  # D == 1 or N == 1
        comps = np.vstack([comps, np.zeros((2 - comps.shape[0], x.shape[1]))])
    signs = np.sign(comps[np.arange(2), np.abs(comps).argmax(axis=1)])
    signs[signs == 0] = 1
    return x @ (comps * signs[:, None]).T


def _conditional_probs(dist2: np.ndarray, perplexity: float,
                       tol: float = 1e-5, max_iter: int = 60) -> np.ndarray:
    """Row-wise Gaussian affinities matching a target perplexity."""
    n = dist2.shape[0]
    target = np.log(perplexity)
    P = np.zeros((n, n))
    for i in range(n):
        d = np.delete(dist2[i], i)
        beta, lo, hi = 1.0, 0.0, np.inf
        for _ in range(max_iter):
            p = np.exp(-(d - d.min()) * beta)
            s = p.sum()
            entropy = np.log(s) + beta * (d - d.min()) @ p / s
            diff = entropy - target
            if abs(diff) < tol:
                break
            if diff > 0:  # too flat -> sharpen
                lo = beta
                beta = beta * 2 if hi == np.inf else (beta + hi) / 2
            else:
                hi = beta
                beta = (beta + lo) / 2
        P[i, np.arange(n) != i] = p / s
    return P


def tsne_2d(feats: ArrayLike,
            perplexity: float = 30.0,
            n_iter: int = 500,
            learning_rate: float = 200.0,
            seed: int = 0) -> np.ndarray:
    """Exact t-SNE to 2-D in numpy (van der Maaten & Hinton, 2008).

    Standard recipe: perplexity-calibrated Gaussian affinities, Student-t
    similarities in 2-D, early exaggeration (x12 for the first 100
    iterations), momentum 0.5 then 0.8, adaptive gains. Initialised from the
    PCA projection (scaled to std 1e-4) plus ``seed``-controlled jitter, so
    it is deterministic for a given seed.

    Args:
        feats: (N, D) features.
        perplexity (float): Target perplexity; clipped to ``(N - 1) / 3``.
        n_iter (int): Gradient steps. Defaults to 500.
        learning_rate (float): Step size. Defaults to 200.
        seed (int): Seed of the initial jitter. Defaults to 0.

    Returns:
        np.ndarray: (N, 2) embedding.
    """
    x = _to_numpy(feats)
    n = x.shape[0]
    if n < 4:
        return pca_2d(x)
    perplexity = float(min(perplexity, max((n - 1) / 3.0, 1.0)))
    sq = (x * x).sum(axis=1)
    dist2 = np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0)
    P = _conditional_probs(dist2, perplexity)
    P = (P + P.T) / (2 * n)
    P = np.maximum(P, 1e-12)

    rng = np.random.default_rng(seed)
    y = pca_2d(x)
    y = y / max(y[:, 0].std(), 1e-12) * 1e-4
    y = y + rng.normal(scale=1e-5, size=y.shape)
    update = np.zeros_like(y)
    gains = np.ones_like(y)
    for it in range(n_iter):
        exag = 12.0 if it < 100 else 1.0
        momentum = 0.5 if it < 250 else 0.8
        sy = (y * y).sum(axis=1)
        num = 1.0 / (1.0 + np.maximum(
            sy[:, None] + sy[None, :] - 2 * y @ y.T, 0.0))
        np.fill_diagonal(num, 0.0)
        Q = np.maximum(num / num.sum(), 1e-12)
        W = (exag * P - Q) * num
        grad = 4.0 * (np.diag(W.sum(axis=1)) - W) @ y
        same = np.sign(grad) == np.sign(update)
        gains = np.where(same, gains * 0.8, gains + 0.2).clip(min=0.01)
        update = momentum * update - learning_rate * gains * grad
        y = y + update
        y = y - y.mean(axis=0, keepdims=True)
    return y


def reduce_to_2d(feats: ArrayLike,
                 method: str = 'auto',
                 perplexity: float = 30.0,
                 seed: int = 0) -> Tuple[np.ndarray, str]:
    """Map (N, D) features to 2-D.

    Args:
        feats: (N, D) features.
        method (str): ``'auto'`` (scikit-learn t-SNE if installed, else the
            numpy t-SNE), ``'sklearn'``, ``'tsne'`` (numpy) or ``'pca'``.
        perplexity (float): t-SNE perplexity. Defaults to 30.
        seed (int): Random seed. Defaults to 0.

    Returns:
        tuple: (N, 2) points and the name of the method used.
    """
    x = _to_numpy(feats)
    if method not in ('auto', 'sklearn', 'tsne', 'pca'):
        raise ValueError("reduce_to_2d: method must be 'auto', 'sklearn', "
                         f"'tsne' or 'pca', got {method!r}.")
    if method == 'pca':
        return pca_2d(x), 'pca'
    if method in ('auto', 'sklearn'):
        try:
            from sklearn.manifold import TSNE
        except ImportError:
            if method == 'sklearn':
                raise
        else:
            perp = float(min(perplexity, max((len(x) - 1) / 3.0, 1.0)))
            pts = TSNE(
                n_components=2, perplexity=perp, init='pca',
                random_state=seed).fit_transform(x)
            return pts, 'sklearn-tsne'
    return tsne_2d(x, perplexity=perplexity, seed=seed), 'numpy-tsne'


def draw_embedding_scatter(points: ArrayLike,
                           labels: Sequence[int],
                           out_file: str,
                           label_names: Optional[Sequence[str]] = None,
                           title: Optional[str] = None,
                           max_legend: int = 12,
                           dpi: int = 120) -> str:
    """Scatter plot of 2-D points coloured by label.

    Labels beyond the ``max_legend`` most frequent ones are drawn in grey as
    ``other``; label ``-1`` is drawn in light grey as ``none``.

    Args:
        points: (N, 2) coordinates.
        labels (Sequence[int]): (N,) integer labels (-1 = no label).
        out_file (str): Output PNG path.
        label_names (Sequence[str], optional): Name of each label index.
        title (str, optional): Figure title.
        max_legend (int): Number of labels with their own colour.
        dpi (int): Resolution. Defaults to 120.

    Returns:
        str: ``out_file``.
    """
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    pts = _to_numpy(points)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) != len(labels):
        raise ValueError('draw_embedding_scatter: expected (N, 2) points and '
                         f'N labels, got {pts.shape} and {labels.shape}.')

    def name_of(lab: int) -> str:
        if label_names is not None and 0 <= lab < len(label_names):
            return str(label_names[lab])
        return str(lab)

    uniq, counts = np.unique(labels[labels >= 0], return_counts=True)
    order = uniq[np.lexsort((uniq, -counts))][:max_legend]
    cmap = colormaps['tab20' if len(order) > 10 else 'tab10']
    fig = Figure(figsize=(7.5, 6))
    ax = fig.subplots()
    shown = np.isin(labels, order)
    rest = (~shown) & (labels >= 0)
    if (labels < 0).any():
        m = labels < 0
        ax.scatter(pts[m, 0], pts[m, 1], s=8, c='#dddddd', label='none')
    if rest.any():
        ax.scatter(pts[rest, 0], pts[rest, 1], s=8, c='#999999',
                   label='other')
    for i, lab in enumerate(order):
        m = labels == lab
        ax.scatter(pts[m, 0], pts[m, 1], s=10, color=cmap(i % cmap.N),
                   label=f'{name_of(int(lab))} ({int(m.sum())})')
    ax.set_xticks([])
    ax.set_yticks([])
    if len(pts):
        ax.legend(fontsize=7, loc='center left', bbox_to_anchor=(1.0, 0.5),
                  frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    fig.savefig(out_file, dpi=dpi)
    return out_file
