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
from typing import List, Optional, Sequence, Tuple

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


#: one gold item of a query: (0-based rank, image path or caption, score)
Gold = Tuple[int, str, float]


def _frame(ax, colour: str) -> None:
    """A thick frame around an image panel (its axis is off)."""
    from matplotlib.patches import Rectangle
    ax.add_patch(Rectangle((0, 0), 1, 1, transform=ax.transAxes,
                           fill=False, edgecolor=colour, linewidth=4,
                           clip_on=False))


def collapse_captions(captions: Sequence[str], scores: Sequence[float],
                      ranks: Sequence[int],
                      hits: Optional[Sequence[bool]] = None
                      ) -> List[Tuple[str, float, List[int], bool]]:
    """Identical captions of a ranking, shown once.

    Args:
        captions (Sequence[str]): the ranked captions.
        scores (Sequence[float]): their scores.
        ranks (Sequence[int]): their 0-based ranks.
        hits (Sequence[bool], optional): whether each is a gold caption.

    Returns:
        list[tuple]: ``(caption, score, ranks, hit)`` per distinct caption,
        in order of first appearance; ``ranks`` lists every rank it holds
        and ``hit`` is True when any of them is gold.
    """
    merged: dict = {}
    for i, (caption, score, rank) in enumerate(zip(captions, scores, ranks)):
        hit = bool(hits[i]) if hits is not None else False
        if caption in merged:
            merged[caption][2].append(rank)
            merged[caption][3] = merged[caption][3] or hit
        else:
            merged[caption] = [caption, float(score), [rank], hit]
    return [tuple(v) for v in merged.values()]


def draw_image_results(result,
                       out_file: str,
                       query_kind: str,
                       hits: Optional[Sequence[Sequence[bool]]] = None,
                       gold: Optional[Sequence[Optional[Gold]]] = None
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
            or red, and matches framed green.
        gold (Sequence[Gold | None], optional): per query, its gold image
            ``(rank, path, score)``; when it ranks below the top k it is
            drawn in an extra, green-framed column titled with its rank.

    Returns:
        str: ``out_file``.
    """
    from matplotlib.figure import Figure
    from PIL import Image

    scores = np.asarray(result.scores)
    rows, k = len(result.queries), scores.shape[1]
    extra = int(gold is not None and any(
        g is not None and g[0] >= k for g in gold))
    fig = Figure(figsize=(2.2 * (k + 1 + extra), 2.4 * rows),
                 layout='constrained')
    axes = fig.subplots(rows, k + 1 + extra, squeeze=False)
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
            if hits is not None and hits[r][c]:
                _frame(ax, HIT_COLOUR)
        if extra:
            ax = axes[r][k + 1]
            ax.axis('off')
            row_gold = gold[r]
            if row_gold is not None and row_gold[0] >= k:
                rank, path, score = row_gold
                with Image.open(path) as im:
                    ax.imshow(im.convert('RGB'))
                ax.set_title(f'gold: #{rank + 1} {score:.3f}\n'
                             f'{osp.basename(path)}', fontsize=8,
                             color=HIT_COLOUR)
                _frame(ax, HIT_COLOUR)
    return _save(fig, out_file)


def draw_caption_results(result,
                         out_file: str,
                         hits: Optional[Sequence[Sequence[bool]]] = None,
                         gold: Optional[Sequence[Sequence[Gold]]] = None
                         ) -> str:
    """Draw one row per query image: the image and its ranked captions.

    Identical captions (RSICD repeats many) are shown once, with the count
    and every rank they hold.

    Args:
        result: the ranking: ``queries`` (Q image paths), ``items`` (Q
            lists of k captions) and ``scores`` ((Q, k) array), best first.
        out_file (str): PNG to write.
        hits (Sequence[Sequence[bool]], optional): (Q, k) whether each
            caption is a ground-truth caption of the image; those lines are
            then green, the others red.
        gold (Sequence[Sequence[Gold]], optional): per query, its gold
            captions ``(rank, caption, score)``; those ranked below the top
            k are listed after it, green, with their ranks.

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
        lines = [(_caption_line(c, s, rk), HIT_COLOUR if hit else (
            MISS_COLOUR if hits is not None else 'black'))
            for c, s, rk, hit in collapse_captions(
                result.items[r], result.scores[r], range(k),
                hits[r] if hits is not None else None)]
        below = [g for g in (gold[r] if gold is not None else ())
                 if g[0] >= k]
        if below:
            lines.append(('gold captions below the top k:', HIT_COLOUR))
            lines += [(_caption_line(c, s, rk), HIT_COLOUR)
                      for c, s, rk, _ in collapse_captions(
                          [g[1] for g in below], [g[2] for g in below],
                          [g[0] for g in below])]
        for i, (text, colour) in enumerate(lines):
            ax.text(0, 1 - i / max(len(lines), k, 1), text, va='top',
                    fontsize=9, family='monospace', color=colour,
                    transform=ax.transAxes)
        ax.axis('off')
    return _save(fig, out_file)


def _caption_line(caption: str, score: float, ranks: Sequence[int]) -> str:
    """``#3 0.412  text`` or, for a repeated caption, ``#3,#5 (x2) ...``."""
    where = ','.join(f'#{rank + 1}' for rank in ranks)
    count = f' (x{len(ranks)})' if len(ranks) > 1 else ''
    return f'{where} {score:.3f}{count}  {textwrap.shorten(caption, 70)}'
