# Copyright (c) rsitr_mm contributors. All rights reserved.
"""2-D maps of embeddings (t-SNE / PCA) and their scatter plots.

``reduce_to_2d(method='auto')`` uses scikit-learn's t-SNE (as mmpretrain's
``tools/visualization/vis_tsne.py`` does); ``method='pca'`` gives a
deterministic linear projection.
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


def tsne_2d(feats: ArrayLike,
            perplexity: float = 30.0,
            seed: int = 0) -> np.ndarray:
    """t-SNE to 2-D with scikit-learn (as mmpretrain's ``vis_tsne.py``).

    Args:
        feats: (N, D) features.
        perplexity (float): Target perplexity; clipped to ``(N - 1) / 3``
            (scikit-learn needs it below N).
        seed (int): ``random_state``. Defaults to 0.

    Returns:
        np.ndarray: (N, 2) embedding (PCA for fewer than 4 points).
    """
    from sklearn.manifold import TSNE
    x = _to_numpy(feats)
    if len(x) < 4:
        return pca_2d(x)
    perp = float(min(perplexity, max((len(x) - 1) / 3.0, 1.0)))
    return TSNE(
        n_components=2, perplexity=perp, init='pca',
        random_state=seed).fit_transform(x)


def reduce_to_2d(feats: ArrayLike,
                 method: str = 'auto',
                 perplexity: float = 30.0,
                 seed: int = 0) -> Tuple[np.ndarray, str]:
    """Map (N, D) features to 2-D.

    Args:
        feats: (N, D) features.
        method (str): ``'auto'`` or ``'tsne'`` (scikit-learn's t-SNE) or
            ``'pca'``.
        perplexity (float): t-SNE perplexity. Defaults to 30.
        seed (int): Random seed. Defaults to 0.

    Returns:
        tuple: (N, 2) points and the name of the method used.
    """
    x = _to_numpy(feats)
    if method not in ('auto', 'tsne', 'pca'):
        raise ValueError("reduce_to_2d: method must be 'auto', 'tsne' or "
                         f"'pca', got {method!r}.")
    if method == 'pca':
        return pca_2d(x), 'pca'
    return tsne_2d(x, perplexity=perplexity, seed=seed), 'tsne'


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
