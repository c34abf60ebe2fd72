# Copyright (c) rsitr_mm contributors. All rights reserved.
import numpy as np
import pytest
import torch
from matplotlib.image import imread

from rsitr_mm.models.necks import BidirectionalScaleDecoupling
from rsitr_mm.visualization.salience import draw_salience_maps


@pytest.mark.parametrize('directions,num_scales', [(('f2c', 'c2f'), 3),
                                                   (('c2f', ), 2)])
def test_png_has_expected_grid(tmp_path, directions, num_scales):
    neck = BidirectionalScaleDecoupling([4] * num_scales,
                                        directions=directions)
    feats = tuple(
        torch.randn(2, 4, 16 >> s, 16 >> s) for s in range(num_scales))
    _, maps = neck.forward_with_maps(feats)
    image = torch.randn(3, 32, 32)
    out = tmp_path / 'maps.png'
    fig = draw_salience_maps(image, maps, out_file=str(out), sample_idx=1)
    rows, cols = 2 * len(directions), 1 + num_scales
    # the panels, then one colour bar for every map
    assert len(fig.axes) == rows * cols + 1
    assert fig.axes[-1].get_ylabel() == 'map value'
    assert fig.axes[-1].get_ylim() == (0.0, 1.0)
    grid = np.array(fig.axes[:-1]).reshape(rows, cols)
    assert grid[0, 0].get_ylabel() == f'{directions[0]} salience'
    assert grid[1, 0].get_ylabel() == f'{directions[0]} suppression'
    # every scale panel shows the image plus one overlay of the map
    for r in range(rows):
        for c in range(1, cols):
            assert len(grid[r, c].get_images()) == 2
            h, w = feats[c - 1].shape[-2:]
            assert grid[r, c].get_title() == f'scale {c - 1} ({h}x{w})'
    png = imread(str(out))
    assert png.ndim == 3 and png.shape[0] > 0
    # figure size follows the grid (2.2 inches per panel at 100 dpi, plus
    # 0.8 inch for the colour bar)
    assert png.shape[1] == pytest.approx(220 * cols + 80, abs=2)
    assert png.shape[0] == pytest.approx(220 * rows, abs=2)


def test_accepts_hwc_uint8_and_rejects_bad_maps(tmp_path):
    maps = dict(salience=dict(f2c=[torch.rand(1, 1, 4, 4)]))
    img = (np.random.rand(20, 30, 3) * 255).astype(np.uint8)
    fig = draw_salience_maps(img, maps)
    # one row (no suppression given), 1 + 1 cols, and the colour bar
    assert len(fig.axes) == 3
    with pytest.raises(ValueError, match='salience'):
        draw_salience_maps(img, dict(attention=[]))
