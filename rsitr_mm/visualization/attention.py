# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Drawing of attention maps (e.g. DAPN's spatial and region maps)."""
import os
import os.path as osp
from typing import Mapping, Optional, Union

import numpy as np
import torch

ArrayLike = Union[np.ndarray, torch.Tensor]


def _to_numpy(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x)


def _as_map(x: ArrayLike) -> np.ndarray:
    """Squeeze a (1, 1, h, w) / (1, h, w) / (h, w) map to (h, w)."""
    arr = _to_numpy(x).astype(np.float64)
    while arr.ndim > 2:
        arr = arr[0]  # first sample of a batch / single channel
    if arr.ndim != 2:
        raise ValueError(f'Expected a 2-D attention map, got shape '
                         f'{_to_numpy(x).shape}.')
    return arr


def _as_image(image: ArrayLike) -> np.ndarray:
    """(H, W, 3) uint8 from an (H, W, 3) or (3, H, W) array / tensor."""
    arr = _to_numpy(image)
    if arr.ndim == 4:
        arr = arr[0]
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (
            1, 3):
        arr = arr.transpose(1, 2, 0)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3):
        raise ValueError(f'Expected an (H, W, 3) image, got shape '
                         f'{arr.shape}.')
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    if arr.dtype != np.uint8:
        lo, hi = float(arr.min()), float(arr.max())
        if lo >= 0 and hi <= 1.0:
            arr = arr * 255.0
        elif lo < 0 or hi > 255:
            arr = (arr - lo) / max(hi - lo, 1e-12) * 255.0
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return arr


def upsample_map(heat: ArrayLike, size: tuple) -> np.ndarray:
    """Bilinearly resize an (h, w) map to ``size`` = (H, W), scaled to
    [0, 1]."""
    h = torch.from_numpy(_as_map(heat)).float()[None, None]
    up = torch.nn.functional.interpolate(
        h, size=tuple(size), mode='bilinear', align_corners=False)[0, 0]
    up = up.numpy()
    lo, hi = float(up.min()), float(up.max())
    return (up - lo) / (hi - lo) if hi > lo else np.zeros_like(up)


def overlay_heatmap(image: ArrayLike,
                    heat: ArrayLike,
                    alpha: float = 0.5,
                    cmap: str = 'jet') -> np.ndarray:
    """Blend a heat map over an image.

    Args:
        image: (H, W, 3) uint8 (or (3, H, W); floats are rescaled).
        heat: (h, w) map (any scale; min-max normalised).
        alpha (float): Heat-map opacity. Defaults to 0.5.
        cmap (str): Matplotlib colour map. Defaults to ``'jet'``.

    Returns:
        np.ndarray: (H, W, 3) uint8 blended image.
    """
    from matplotlib import colormaps
    img = _as_image(image)
    up = upsample_map(heat, img.shape[:2])
    colour = colormaps[cmap](up)[..., :3] * 255.0
    out = (1 - alpha) * img.astype(np.float64) + alpha * colour
    return np.clip(out, 0, 255).astype(np.uint8)


def draw_attention_maps(image: ArrayLike,
                        maps: Mapping,
                        out_file: str,
                        alpha: float = 0.5,
                        title: Optional[str] = None,
                        dpi: int = 100,
                        cmap: str = 'jet') -> str:
    """Save a figure: the image, its spatial map and each region-scale map.

    Every map is min-max normalised on its own before it is overlaid; one
    colour bar (0 = the map's minimum, 1 = its maximum) reads all of them.

    Args:
        image: (H, W, 3) uint8 image (RGB).
        maps (Mapping): As returned by
            ``DualAttentionPerception.forward_with_maps``: ``spatial``
            (B, 1, h, w), optional ``regions`` ``{scale: (B, 1, h, w)}`` and
            ``scale_weights`` (B, S). Only the first sample is drawn. Any
            other 2-D-able entry given as ``{name: map}`` under ``extra`` is
            drawn too.
        out_file (str): Output path (PNG).
        alpha (float): Heat-map opacity. Defaults to 0.5.
        title (str, optional): Figure title.
        dpi (int): Figure resolution. Defaults to 100.
        cmap (str): Matplotlib colour map of the heat maps. Defaults to
            ``'jet'``.

    Returns:
        str: ``out_file``.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    img = _as_image(image)
    panels = [('image', img)]
    if maps.get('spatial') is not None:
        panels.append(('spatial attention',
                       overlay_heatmap(img, maps['spatial'], alpha, cmap)))
    regions = maps.get('regions') or {}
    weights = maps.get('scale_weights')
    weights = None if weights is None else _to_numpy(weights).reshape(
        -1, len(regions) or 1)[0]
    for i, (scale, heat) in enumerate(sorted(regions.items())):
        name = f'regions {scale}x{scale}'
        if weights is not None and i < len(weights):
            name += f' (w={weights[i]:.2f})'
        panels.append((name, overlay_heatmap(img, heat, alpha, cmap)))
    for name, heat in (maps.get('extra') or {}).items():
        panels.append((str(name), overlay_heatmap(img, heat, alpha, cmap)))

    # A bare Figure renders with Agg and never touches pyplot's backend.
    fig = Figure(figsize=(3 * len(panels) + 0.8, 3.3), layout='constrained')
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, (name, pic) in zip(axes[0], panels):
        ax.imshow(pic)
        ax.set_title(name, fontsize=9)
        ax.axis('off')
    if len(panels) > 1:  # the heat maps share one 0..1 scale
        bar = fig.colorbar(
            ScalarMappable(norm=Normalize(0.0, 1.0), cmap=cmap),
            ax=list(axes[0][1:]), shrink=0.8, pad=0.02)
        bar.set_label('weight (min-max per map)', fontsize=8)
        bar.ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    dirname = osp.dirname(osp.abspath(out_file))
    os.makedirs(dirname, exist_ok=True)
    fig.savefig(out_file, dpi=dpi)
    return out_file
