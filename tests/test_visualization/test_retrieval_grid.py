# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Retrieval grids mark the gold items (framed, or drawn with their rank
when below the top k) and show identical captions once with their count."""
import numpy as np
import pytest
from PIL import Image

from rsitr_mm.visualization import retrieval_grid as grid


@pytest.fixture
def drawn(monkeypatch, tmp_path):
    """The figures the drawing functions save, and three small images."""
    figures = []
    monkeypatch.setattr(grid, '_save', lambda fig, out: (
        figures.append(fig), out)[1])
    paths = []
    for i in range(3):
        path = tmp_path / f'img{i}.png'
        Image.new('RGB', (8, 8), (80 * i, 0, 0)).save(path)
        paths.append(str(path))
    return figures, paths


def test_caption_grid_collapses_repeats_and_lists_gold_below_top_k(drawn):
    figures, paths = drawn
    result = type('R', (), dict(queries=[paths[0]],
                                items=[['a plane', 'a plane', 'a road']],
                                scores=np.array([[0.9, 0.9, 0.5]])))
    grid.draw_caption_results(result, 'x.png', hits=[[False, False, True]],
                              gold=[[(2, 'a road', 0.5),
                                     (6, 'a red roof', 0.1),
                                     (7, 'a red roof', 0.1)]])
    ax = figures[0].axes[1]
    lines = [(t.get_text(), t.get_color()) for t in ax.texts]
    assert lines == [
        ('#1,#2 0.900 (x2)  a plane', grid.MISS_COLOUR),
        ('#3 0.500  a road', grid.HIT_COLOUR),
        ('gold captions below the top k:', grid.HIT_COLOUR),
        ('#7,#8 0.100 (x2)  a red roof', grid.HIT_COLOUR)]


def test_image_grid_frames_hits_and_draws_a_low_gold_image(drawn):
    figures, paths = drawn
    result = type('R', (), dict(queries=['two tanks'],
                                items=[[paths[1], paths[2]]],
                                scores=np.array([[0.8, 0.7]])))
    grid.draw_image_results(result, 'x.png', 'text',
                            hits=[[False, True]],
                            gold=[(1, paths[2], 0.7)])
    axes = figures[0].axes
    assert len(axes) == 3  # query + top 2; the gold one is in the top 2
    assert not axes[1].patches and len(axes[2].patches) == 1  # framed hit
    figures.clear()
    grid.draw_image_results(result, 'x.png', 'text', hits=[[False, False]],
                            gold=[(7, paths[0], 0.1)])
    axes = figures[0].axes
    assert len(axes) == 4
    assert axes[3].get_title() == 'gold: #8 0.100\nimg0.png'
    assert len(axes[3].patches) == 1


def test_gold_caption_ranks_follow_the_metric_tie_rule(load_tool):
    tool = load_tool('test')
    scores = np.array([0.5, 0.9, 0.5, 0.1, 0.5])
    assert [tool._tie_rank(scores, j) for j in range(5)] == [1, 0, 2, 4, 3]
