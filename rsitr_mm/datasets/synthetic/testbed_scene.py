# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Scene sampling for the testbed profile of the synthetic scenes.

Two domains share one scene description (:class:`~.scene.Scene`):

* ``'target'``: aerial scenes of the demo's ten classes, backgrounds, line
  features and object kinds, but with object scale ranging
  :data:`SCALE_RANGE` (> 4x) within every kind, one or two distractor
  groups, background clutter (bushes, rocks, debris that no caption names)
  and colour x kind combinations (:data:`HELD_OUT_COMBOS`) that appear in
  the test split only.
* ``'pretrain'``: a DISJOINT toy domain for pretraining: other object
  kinds (geometric shapes), another palette, patterned floors instead of
  land cover, fences and paths instead of roads. No object kind, colour
  word or background is shared with the target domain.

Coordinates are fractions of the image side, as in :mod:`.scene`.
"""
import math
from dataclasses import replace
from typing import Dict, List, Optional, Tuple

import numpy as np

from .scene import (_BACKGROUND_CLASH, _CLASS_SPECS, LINE_KINDS, PIER_FRACTION,
                    SCENE_CLASSES, ObjectGroup, ObjectInstance, Scene,
                    _place_group, _sample_line)

#: Range of the per-group length multiplier (max / min = 4.33).
SCALE_RANGE: Tuple[float, float] = (0.6, 2.6)
#: Multipliers below / above these get the word ``small`` / ``large``.
SIZE_WORD_BOUNDS: Tuple[float, float] = (1.0, 1.7)

#: Base length (fraction of the side) of each target kind at multiplier 1.
TARGET_BASE_LENGTH: Dict[str, float] = {
    'plane': 0.09,
    'storage_tank': 0.06,
    'ship': 0.08,
    'building': 0.07,
    'vehicle': 0.045,
    'court': 0.09,
}

#: Colours each target kind may take (a superset of the demo's).
TARGET_KIND_COLOURS: Dict[str, Tuple[str, ...]] = {
    'plane': ('white', 'grey', 'red', 'blue', 'yellow'),
    'storage_tank': ('white', 'grey', 'blue', 'orange', 'green'),
    'ship': ('white', 'red', 'grey', 'orange', 'yellow'),
    'building': ('red', 'grey', 'white', 'brown', 'blue', 'orange'),
    'vehicle': ('red', 'blue', 'white', 'black', 'yellow'),
    'court': ('green', 'blue', 'red', 'orange'),
}

#: ``(kind, colour)`` combinations absent from train and val, present in
#: test (every word is seen in training, only the combination is new).
HELD_OUT_COMBOS: Tuple[Tuple[str, str], ...] = (
    ('plane', 'red'),
    ('storage_tank', 'orange'),
    ('ship', 'yellow'),
    ('building', 'blue'),
    ('vehicle', 'white'),
    ('court', 'red'),
)

#: Probability that a test image shows a held-out combination.
HELD_OUT_TEST_PROB = 0.5

#: Pretraining-domain classes (one per main shape), kinds, colours, floors.
PRETRAIN_KINDS: Tuple[str, ...] = ('triangle', 'star', 'cross', 'ring',
                                   'diamond', 'hexagon')
PRETRAIN_CLASSES: Tuple[str, ...] = tuple(
    sorted(f'{k}_yard' for k in PRETRAIN_KINDS))
PRETRAIN_COLOURS: Dict[str, Tuple[int, int, int]] = {
    'purple': (128, 60, 170),
    'pink': (240, 120, 180),
    'cyan': (60, 210, 220),
    'lime': (170, 230, 50),
    'navy': (30, 40, 110),
    'maroon': (120, 20, 40),
    'teal': (20, 128, 128),
    'gold': (212, 175, 55),
}
PRETRAIN_BACKGROUNDS: Tuple[str,
                            ...] = ('checker', 'stripes', 'dots', 'gradient')
PRETRAIN_LINE_KINDS: Tuple[str, ...] = ('fence', 'path')
_PRETRAIN_BASE_LENGTH = 0.08

DOMAINS: Tuple[str, ...] = ('target', 'pretrain')


def size_word(multiplier: float) -> str:
    """``'small'``, ``''`` or ``'large'`` for a length multiplier."""
    lo, hi = SIZE_WORD_BOUNDS
    return 'small' if multiplier < lo else ('large' if multiplier > hi else '')


def _scale(rng: np.random.Generator) -> float:
    """Log-uniform length multiplier over :data:`SCALE_RANGE`."""
    lo, hi = SCALE_RANGE
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _clutter(rng: np.random.Generator, low: int,
             high: int) -> List[Tuple[float, float, float, int]]:
    """Unnamed clutter: ``(x, y, radius, shade index)`` blobs."""
    n = int(rng.integers(low, high + 1))
    return [(float(rng.random()), float(rng.random()),
             float(rng.uniform(0.006, 0.02)), int(rng.integers(0, 4)))
            for _ in range(n)]


def _target_colour(kind: str, background: str, rng: np.random.Generator,
                   held_out_ok: bool) -> str:
    clash = _BACKGROUND_CLASH.get(background, ())
    banned = {c for k, c in HELD_OUT_COMBOS if k == kind}
    choices = [
        c for c in TARGET_KIND_COLOURS[kind]
        if c not in clash and (held_out_ok or c not in banned)
    ]
    return str(rng.choice(choices))


def _held_out_colour(kind: str, background: str) -> Optional[str]:
    clash = _BACKGROUND_CLASH.get(background, ())
    for k, c in HELD_OUT_COMBOS:
        if k == kind and c not in clash:
            return c
    return None


def sample_target_scene(scene_class: str, rng: np.random.Generator,
                        split: str) -> Scene:
    """Sample one target-domain (aerial) testbed scene.

    Args:
        scene_class (str): One of :data:`~.scene.SCENE_CLASSES`.
        rng (numpy.random.Generator): Source of randomness.
        split (str): ``'train'``, ``'val'`` or ``'test'``. Held-out
            combinations are drawn only for ``'test'`` (in about
            :data:`HELD_OUT_TEST_PROB` of its images).

    Returns:
        Scene: with ``clutter`` (list of blobs) and ``multipliers`` (one
        per group) set as extra attributes.
    """
    if scene_class not in _CLASS_SPECS:
        raise ValueError(f'scene_class must be one of {SCENE_CLASSES}, '
                         f'got {scene_class!r}')
    spec = _CLASS_SPECS[scene_class]
    background = str(rng.choice(spec['backgrounds']))
    scene = Scene(scene_class=scene_class, background=background)
    if scene_class == 'harbor':
        scene.pier_side = str(rng.choice(('left', 'right', 'top', 'bottom')))
    for kind in LINE_KINDS:
        if rng.random() < spec['lines'].get(kind, 0.0):
            scene.lines.append(_sample_line(kind, rng))
    scene.lines.sort(
        key=lambda ln: LINE_KINDS.index(ln.kind) if ln.kind != 'road' else 0.5)
    wanted: List[Tuple[str, int, bool]] = []
    if spec['main'] is not None:
        kind, lo, hi = spec['main']
        wanted.append((kind, int(rng.integers(lo, hi + 1)), True))
    # distractors: the class's extra groups, drawn more often than in the
    # demo, and at least one per scene
    extras = [(k, lo, hi) for k, p, lo, hi in spec['extras']
              if rng.random() < max(p, 0.6)]
    if not extras and spec['extras']:
        k, _, lo, hi = spec['extras'][int(rng.integers(len(spec['extras'])))]
        extras = [(k, lo, hi)]
    wanted += [(k, int(rng.integers(lo, hi + 1)), False)
               for k, lo, hi in extras]
    held_out = split == 'test' and rng.random() < HELD_OUT_TEST_PROB
    placed: List[ObjectInstance] = []
    multipliers: List[float] = []
    for kind, count, is_main in wanted:
        colour = _target_colour(kind, background, rng, held_out_ok=False)
        if held_out:
            forced = _held_out_colour(kind, background)
            if forced is not None:
                colour, held_out = forced, False
        mult = _scale(rng)
        length = TARGET_BASE_LENGTH[kind] * mult
        instances, on_line = [], None
        for _ in range(4):
            instances, on_line = _place_group(
                kind, count, 'small', scene, placed, rng, length=length)
            if instances or not is_main:
                break
            mult = max(SCALE_RANGE[0], mult * 0.7)
            length = TARGET_BASE_LENGTH[kind] * mult
        if is_main and not instances:
            scene.lines = [ln for ln in scene.lines if ln.kind == 'river']
            mult = SCALE_RANGE[0]
            instances, on_line = _place_group(
                kind,
                1,
                'small',
                scene,
                placed,
                rng,
                length=TARGET_BASE_LENGTH[kind] * mult)
            if not instances:
                raise RuntimeError(
                    f'could not place a {kind} in a {scene_class} scene')
        if not instances:
            continue
        # the size word follows the drawn size (rivers can shrink ships)
        mult = instances[0].length / TARGET_BASE_LENGTH[kind]
        placed.extend(instances)
        scene.groups.append(
            ObjectGroup(
                kind, colour, size_word(mult), instances, on_line=on_line))
        multipliers.append(mult)
        if is_main:
            scene.has_main = True
    scene.clutter = _clutter(rng, 15, 45)
    scene.multipliers = multipliers
    return scene


def sample_pretrain_scene(scene_class: str, rng: np.random.Generator) -> Scene:
    """Sample one scene of the disjoint pretraining domain.

    Args:
        scene_class (str): One of :data:`PRETRAIN_CLASSES`
            (``'<shape>_yard'``, whose main group is of that shape).
        rng (numpy.random.Generator): Source of randomness.

    Returns:
        Scene: with toy kinds, colours (:data:`PRETRAIN_COLOURS`),
        background (:data:`PRETRAIN_BACKGROUNDS`) and lines
        (:data:`PRETRAIN_LINE_KINDS`).
    """
    if scene_class not in PRETRAIN_CLASSES:
        raise ValueError(f'scene_class must be one of {PRETRAIN_CLASSES}, '
                         f'got {scene_class!r}')
    main_kind = scene_class[:-len('_yard')]
    scene = Scene(
        scene_class=scene_class,
        background=str(rng.choice(PRETRAIN_BACKGROUNDS)))
    for kind in PRETRAIN_LINE_KINDS:
        if rng.random() < 0.35:
            line = _sample_line('road', rng)
            scene.lines.append(replace(line, kind=kind))
    kinds = [main_kind] + [
        str(k)
        for k in rng.choice([k for k in PRETRAIN_KINDS if k != main_kind],
                            size=int(rng.integers(0, 3)),
                            replace=False)
    ]
    placed: List[ObjectInstance] = []
    multipliers: List[float] = []
    colours = list(PRETRAIN_COLOURS)
    for i, kind in enumerate(kinds):
        count = int(rng.integers(1, 6))
        mult = _scale(rng)
        length = _PRETRAIN_BASE_LENGTH * mult
        out: List[ObjectInstance] = []
        cx, cy = rng.uniform(0.2, 0.8, size=2)
        spread = 0.08 + 0.05 * math.sqrt(count)
        for _ in range(count):
            for _attempt in range(40):
                x = float(cx + rng.normal(0.0, spread))
                y = float(cy + rng.normal(0.0, spread))
                r = length / 2
                if not (r + 0.02 <= x <= 0.98 - r
                        and r + 0.02 <= y <= 0.98 - r):
                    continue
                if any(
                        math.hypot(x - o.x, y - o.y) < r + o.radius + 0.01
                        for o in placed + out):
                    continue
                out.append(
                    ObjectInstance(x, y, float(rng.uniform(0, math.pi)),
                                   length, length))
                break
        if not out:
            if i == 0:
                out = [ObjectInstance(0.5, 0.5, 0.0, length, length)]
            else:
                continue
        placed.extend(out)
        scene.groups.append(
            ObjectGroup(kind, str(rng.choice(colours)), size_word(mult), out))
        multipliers.append(mult)
    scene.has_main = True
    scene.clutter = _clutter(rng, 5, 20)
    scene.multipliers = multipliers
    return scene


__all__ = [
    'SCALE_RANGE', 'HELD_OUT_COMBOS', 'TARGET_KIND_COLOURS',
    'PRETRAIN_CLASSES', 'PRETRAIN_KINDS', 'PRETRAIN_COLOURS',
    'PRETRAIN_BACKGROUNDS', 'DOMAINS', 'sample_target_scene',
    'sample_pretrain_scene', 'size_word', 'PIER_FRACTION'
]
