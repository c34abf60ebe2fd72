# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Drawing of ranked retrieval results: one row per query.

Used by ``tools/retrieve.py`` (search results) and ``tools/test.py
--show-dir`` (the test set's rankings). Uses matplotlib's object API with
the Agg canvas only (no ``pyplot``), so it works headless and leaves the
global matplotlib backend alone.
"""
import os
import os.path as osp
import textwrap
from typing import Optional, Sequence

import numpy as np

#: title colours of a result that is / is not a ground-truth match
HIT_COLOUR, MISS_COLOUR = '#1a7f37', '#cf222e'


def _wrap(text: str, width: int = 24) -> str:
    return '\n'.join(textwrap.wrap(text, width)) or text


def _colour(hits: Optional[Sequence[Sequence[bool]]], row: int,
            col: int) -> str:
    if hits is None:
        return 'black'
    return HIT_COLOUR if hits[row][col] else MISS_COLOUR


def _save(fig, out_file: str) -> str:
    dirname = osp.dirname(osp.abspath(out_file))
    os.makedirs(dirname, exist_ok=True)
    fig.savefig(out_file, dpi=80)
    return out_file


def draw_image_results(result,
                       out_file: str,
                       query_kind: str,
                       hits: Optional[Sequence[Sequence[bool]]] = None
                       ) -> str:
    """Draw one row per query: the query, then its top-k images.

    Args:
        result: the ranking, e.g. a
            :class:`~rsitr_mm.apis.search.SearchResult`: ``queries``
            (Q captions or image paths), ``items`` (Q lists of k image
            paths) and ``scores`` ((Q, k) array), best first.
        out_file (str): PNG to write.
        query_kind (str): ``'text'`` or ``'image'``.
        hits (Sequence[Sequence[bool]], optional): (Q, k) whether each
            result is a ground-truth match; titles are then green (match)
            or red.

    Returns:
        str: ``out_file``.
    """
    from matplotlib.figure import Figure
    from PIL import Image

    scores = np.asarray(result.scores)
    rows, k = len(result.queries), scores.shape[1]
    fig = Figure(figsize=(2.2 * (k + 1), 2.4 * rows), layout='constrained')
    axes = fig.subplots(rows, k + 1, squeeze=False)
    for r, query in enumerate(result.queries):
        ax = axes[r][0]
        if query_kind == 'image':
            with Image.open(query) as im:
                ax.imshow(im.convert('RGB'))
            ax.set_title('query', fontsize=9)
        else:
            ax.text(0.5, 0.5, _wrap(query), ha='center', va='center',
                    fontsize=9, wrap=True)
        ax.axis('off')
        for c in range(k):
            ax = axes[r][c + 1]
            with Image.open(result.items[r][c]) as im:
                ax.imshow(im.convert('RGB'))
            ax.set_title(
                f'#{c + 1} {scores[r, c]:.3f}\n'
                f'{osp.basename(result.items[r][c])}',
                fontsize=8, color=_colour(hits, r, c))
            ax.axis('off')
    return _save(fig, out_file)


def draw_caption_results(result,
                         out_file: str,
                         hits: Optional[Sequence[Sequence[bool]]] = None
                         ) -> str:
    """Draw one row per query image: the image and its ranked captions.

    Args:
        result: the ranking: ``queries`` (Q image paths), ``items`` (Q
            lists of k captions) and ``scores`` ((Q, k) array), best first.
        out_file (str): PNG to write.
        hits (Sequence[Sequence[bool]], optional): (Q, k) whether each
            caption is a ground-truth caption of the image; those lines are
            then green, the others red.

    Returns:
        str: ``out_file``.
    """
    from matplotlib.figure import Figure
    from PIL import Image

    rows = len(result.queries)
    fig = Figure(figsize=(10, 2.8 * rows), layout='constrained')
    axes = fig.subplots(
        rows, 2, squeeze=False, gridspec_kw=dict(width_ratios=[1, 3]))
    for r, query in enumerate(result.queries):
        with Image.open(query) as im:
            axes[r][0].imshow(im.convert('RGB'))
        axes[r][0].set_title(osp.basename(query), fontsize=9)
        axes[r][0].axis('off')
        ax = axes[r][1]
        k = len(result.items[r])
        for i, (caption, score) in enumerate(
                zip(result.items[r], result.scores[r])):
            ax.text(0, 1 - i / max(k, 1),
                    f'#{i + 1} {score:.3f}  {textwrap.shorten(caption, 70)}',
                    va='top', fontsize=9, family='monospace',
                    color=_colour(hits, r, i), transform=ax.transAxes)
        ax.axis('off')
    return _save(fig, out_file)
