# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Drawing of the salience and suppression maps of a BSD neck.

Uses matplotlib's object API with the Agg canvas only (no ``pyplot``), so it
works headless and leaves the global matplotlib backend alone.
"""
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

ImageLike = Union[torch.Tensor, np.ndarray]


def _image_to_hwc(image: ImageLike,
                  mean: Optional[Sequence[float]] = None,
                  std: Optional[Sequence[float]] = None) -> np.ndarray:
    """Turn ``(3, H, W)`` / ``(1, 3, H, W)`` tensors or ``(H, W, 3)`` arrays
    into a float ``(H, W, 3)`` array in ``[0, 1]`` for display."""
    if isinstance(image, torch.Tensor):
        img = image.detach().float().cpu()
        if img.dim() == 4:
            img = img[0]
        if img.dim() != 3 or img.shape[0] not in (1, 3):
            raise ValueError('draw_salience_maps: image tensor must be '
                             f'(3, H, W), got {tuple(image.shape)}.')
        if mean is not None and std is not None:
            img = img * torch.tensor(std).view(-1, 1, 1) + torch.tensor(
                mean).view(-1, 1, 1)
        img = img.permute(1, 2, 0).numpy()
    else:
        img = np.asarray(image).astype(np.float32)
        if img.ndim == 2:
            img = img[..., None]
        if img.ndim != 3:
            raise ValueError('draw_salience_maps: image array must be '
                             f'(H, W, 3), got {img.shape}.')
        if mean is not None and std is not None:
            img = img * np.asarray(std) + np.asarray(mean)
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    lo, hi = float(img.min()), float(img.max())
    if hi > lo:
        img = (img - lo) / (hi - lo)
    else:
        img = np.zeros_like(img)
    return img


def _map_to_hw(m: torch.Tensor, size, sample_idx: int) -> np.ndarray:
    """``(B, 1, h, w)`` map -> ``(H, W)`` array upsampled to the image."""
    m = m.detach().float().cpu()
    if m.dim() == 4:
        m = m[sample_idx:sample_idx + 1]
    elif m.dim() == 3:
        m = m[sample_idx:sample_idx + 1, None]
    else:
        raise ValueError('draw_salience_maps: maps must be (B, 1, h, w), '
                         f'got {tuple(m.shape)}.')
    m = F.interpolate(m, size=size, mode='bilinear', align_corners=False)
    return m[0, 0].clamp(0, 1).numpy()


def draw_salience_maps(image: ImageLike,
                       maps: Dict[str, Dict[str, List[torch.Tensor]]],
                       out_file: Optional[str] = None,
                       sample_idx: int = 0,
                       mean: Optional[Sequence[float]] = None,
                       std: Optional[Sequence[float]] = None,
                       alpha: float = 0.5,
                       cmap: str = 'jet',
                       title: Optional[str] = None,
                       panel_size: float = 2.2):
    """Draw an image with the per-scale maps of every BSD chain.

    The grid has one row per (direction, kind) -- for each direction in
    ``maps['salience']`` a salience row then a suppression row -- and
    ``1 + S`` columns: the input image, then scale ``s = 0..S-1`` in the
    neck's input order, each map upsampled to the image and overlaid. The
    maps are drawn on their own scale (values in ``[0, 1]``, not
    normalised per map), read by one colour bar.

    Args:
        image (Tensor | ndarray): ``(3, H, W)`` tensor (optionally with a
            batch dim) or ``(H, W, 3)`` array.
        maps (dict): ``dict(salience={dir: [M_s]}, suppression={dir:
            [Q_s]})`` as returned by
            ``BidirectionalScaleDecoupling.forward_with_maps``; each map
            ``(B, 1, h_s, w_s)`` in ``[0, 1]``.
        out_file (str, optional): PNG path to write.
        sample_idx (int): Which sample of the batch to draw. Defaults to 0.
        mean, std (Sequence[float], optional): Normalisation to undo on the
            image before display.
        alpha (float): Overlay opacity. Defaults to 0.5.
        cmap (str): Colour map of the overlays. Defaults to ``'jet'``.
        title (str, optional): Figure title.
        panel_size (float): Inches per panel. Defaults to 2.2.

    Returns:
        matplotlib.figure.Figure: the figure (``rows * cols`` axes).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    if not isinstance(maps, dict) or 'salience' not in maps:
        raise ValueError('draw_salience_maps: `maps` must be the dict of '
                         'forward_with_maps, with a "salience" key.')
    img = _image_to_hwc(image, mean, std)
    size = img.shape[:2]
    suppression = maps.get('suppression', {})
    rows = []
    for direction, sal in maps['salience'].items():
        rows.append((f'{direction} salience', sal))
        if direction in suppression:
            rows.append((f'{direction} suppression', suppression[direction]))
    if not rows:
        raise ValueError('draw_salience_maps: `maps["salience"]` is empty.')
    num_scales = max(len(r[1]) for r in rows)
    n_rows, n_cols = len(rows), 1 + num_scales

    fig = Figure(figsize=(panel_size * n_cols + 0.8, panel_size * n_rows),
                 layout='constrained')
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for r, (name, row_maps) in enumerate(rows):
        ax = axes[r][0]
        ax.imshow(img)
        ax.set_title('image', fontsize=8)
        ax.set_ylabel(name, fontsize=8)
        for c in range(num_scales):
            ax = axes[r][c + 1]
            ax.imshow(img)
            if c < len(row_maps):
                m = row_maps[c]
                ax.imshow(
                    _map_to_hw(m, size, sample_idx),
                    cmap=cmap,
                    alpha=alpha,
                    vmin=0.0,
                    vmax=1.0)
                h, w = m.shape[-2:]
                ax.set_title(f'scale {c} ({h}x{w})', fontsize=8)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    bar = fig.colorbar(
        ScalarMappable(norm=Normalize(0.0, 1.0), cmap=cmap),
        ax=[ax for row in axes for ax in row[1:]], shrink=0.8, pad=0.02)
    bar.set_label('map value', fontsize=8)
    bar.ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    if out_file is not None:
        fig.savefig(out_file, dpi=100)
    return fig
