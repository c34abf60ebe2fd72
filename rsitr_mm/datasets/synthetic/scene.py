# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Scene sampling for the synthetic aerial-scene dataset.

A :class:`Scene` is a resolution-free description of one top-down image: a
land-cover background, optional line features (roads, rivers, runways), an
optional pier (harbours) and groups of countable objects. All coordinates and
lengths are fractions of the image side, ``(x, y)`` with ``x`` to the right
and ``y`` downwards, so the same scene can be rendered at any size.

The scene is what both the renderer (:mod:`.render`) and the caption writer
(:mod:`.captions`) read, which keeps the pictures and the words consistent.
"""
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

#: Scene classes, sorted alphabetically (``classes.txt`` keeps this order).
SCENE_CLASSES: Tuple[str, ...] = ('airport', 'bareland', 'farmland', 'forest',
                                  'harbor', 'industrial', 'parking',
                                  'residential', 'river', 'sports')

#: Land-cover backgrounds.
BACKGROUNDS: Tuple[str, ...] = ('bareland', 'farmland', 'forest', 'grassland',
                                'urban', 'water')

#: Countable object kinds.
OBJECT_KINDS: Tuple[str, ...] = ('plane', 'storage_tank', 'ship', 'building',
                                 'vehicle', 'court')

#: Line feature kinds.
LINE_KINDS: Tuple[str, ...] = ('road', 'river', 'runway')

#: Named object colours (RGB).
COLOURS: Dict[str, Tuple[int, int, int]] = {
    'white': (236, 236, 230),
    'grey': (150, 150, 152),
    'red': (196, 48, 42),
    'blue': (48, 92, 200),
    'green': (58, 158, 62),
    'yellow': (232, 205, 58),
    'orange': (232, 128, 36),
    'brown': (128, 82, 48),
    'black': (28, 28, 30),
}

#: Colours each object kind may take.
KIND_COLOURS: Dict[str, Tuple[str, ...]] = {
    'plane': ('white', 'grey'),
    'storage_tank': ('white', 'grey', 'blue'),
    'ship': ('white', 'red', 'grey', 'orange'),
    'building': ('red', 'grey', 'white', 'brown', 'blue', 'orange'),
    'vehicle': ('red', 'blue', 'white', 'black', 'yellow'),
    'court': ('green', 'blue', 'red', 'orange'),
}

#: Colours that would not stand out from a background.
_BACKGROUND_CLASH: Dict[str, Tuple[str, ...]] = {
    'water': ('blue', 'black'),
    'forest': ('green', 'black'),
    'grassland': ('green', ),
    'farmland': ('green', 'yellow', 'brown'),
    'bareland': ('brown', 'yellow', 'orange'),
    'urban': ('grey', ),
}

#: ``(length range small, length range large, width / length)`` per kind.
_KIND_SIZES: Dict[str,
                  Tuple[Tuple[float, float], Tuple[float, float],
                        Tuple[float, float]]] = {
                            'plane': ((0.13, 0.17), (0.21, 0.27), (0.95, 1.0)),
                            'storage_tank':
                            ((0.075, 0.10), (0.13, 0.17), (1.0, 1.0)),
                            'ship': ((0.11, 0.14), (0.18, 0.25), (0.22, 0.28)),
                            'building':
                            ((0.08, 0.11), (0.14, 0.19), (0.55, 0.95)),
                            'vehicle':
                            ((0.05, 0.06), (0.075, 0.09), (0.45, 0.55)),
                            'court': ((0.14, 0.17), (0.21, 0.26), (0.5, 0.6)),
                        }

#: Per-class recipe: backgrounds, main object ``(kind, min, max)``, line
#: probabilities and extra groups ``(kind, probability, min, max)``.
_CLASS_SPECS: Dict[str, dict] = {
    'airport':
    dict(
        backgrounds=('grassland', 'bareland', 'urban'),
        main=('plane', 1, 6),
        lines=dict(runway=0.8, road=0.3),
        extras=(('vehicle', 0.3, 1, 4), ('building', 0.3, 1, 3))),
    'bareland':
    dict(
        backgrounds=('bareland', ),
        main=None,
        lines=dict(road=0.4),
        extras=(('vehicle', 0.25, 1, 3), )),
    'farmland':
    dict(
        backgrounds=('farmland', ),
        main=None,
        lines=dict(road=0.35, river=0.1),
        extras=(('building', 0.3, 1, 3), )),
    'forest':
    dict(
        backgrounds=('forest', ),
        main=None,
        lines=dict(road=0.35, river=0.1),
        extras=(('building', 0.15, 1, 2), )),
    'harbor':
    dict(
        backgrounds=('water', ),
        main=('ship', 1, 6),
        lines=dict(),
        extras=(('storage_tank', 0.3, 1, 3), ('building', 0.3, 1, 2))),
    'industrial':
    dict(
        backgrounds=('urban', 'bareland'),
        main=('storage_tank', 1, 6),
        lines=dict(road=0.5),
        extras=(('building', 0.5, 1, 3), ('vehicle', 0.2, 1, 3))),
    'parking':
    dict(
        backgrounds=('urban', ),
        main=('vehicle', 2, 6),
        lines=dict(road=0.4),
        extras=(('building', 0.3, 1, 2), )),
    'residential':
    dict(
        backgrounds=('urban', 'grassland'),
        main=('building', 2, 6),
        lines=dict(road=0.7),
        extras=(('vehicle', 0.3, 1, 3), )),
    'river':
    dict(
        backgrounds=('forest', 'farmland', 'grassland', 'bareland'),
        main=None,
        lines=dict(river=1.0, road=0.3),
        extras=(('ship', 0.4, 1, 3), ('building', 0.2, 1, 2))),
    'sports':
    dict(
        backgrounds=('grassland', 'urban'),
        main=('court', 1, 4),
        lines=dict(road=0.3),
        extras=(('building', 0.25, 1, 2), ('vehicle', 0.2, 1, 3))),
}

#: Fraction of the image side the harbour pier occupies.
PIER_FRACTION = 0.26
_PIER_SIDES = ('left', 'right', 'top', 'bottom')
_MARGIN = 0.02


@dataclass(frozen=True)
class ObjectInstance:
    """One drawn object.

    Attributes:
        x (float): Centre, fraction of the width.
        y (float): Centre, fraction of the height.
        angle (float): Orientation of the long axis in radians.
        length (float): Long side (planes: nose to tail; tanks: diameter).
        width (float): Short side (planes: wing span).
    """
    x: float
    y: float
    angle: float
    length: float
    width: float

    @property
    def radius(self) -> float:
        """Radius of a circle that covers the object."""
        return 0.5 * math.hypot(self.length, self.width) if self.width < \
            0.9 * self.length else 0.5 * max(self.length, self.width)


@dataclass
class ObjectGroup:
    """Objects of one kind sharing a colour and a size class.

    Attributes:
        kind (str): One of :data:`OBJECT_KINDS`.
        colour (str): A key of :data:`COLOURS`.
        size (str): ``'small'`` or ``'large'``.
        instances (list[ObjectInstance]): The drawn objects.
        on_line (str, optional): Line kind the objects sit on (ships on a
            river), else None.
    """
    kind: str
    colour: str
    size: str
    instances: List[ObjectInstance] = field(default_factory=list)
    on_line: Optional[str] = None

    @property
    def count(self) -> int:
        """Number of objects."""
        return len(self.instances)

    @property
    def position(self) -> str:
        """Where the group's centre lies on a 3x3 grid.

        One of ``'top left'``, ``'top'``, ``'top right'``, ``'left'``,
        ``'center'``, ``'right'``, ``'bottom left'``, ``'bottom'``,
        ``'bottom right'``.
        """
        return position_name(
            float(np.mean([o.x for o in self.instances])),
            float(np.mean([o.y for o in self.instances])))


@dataclass
class LineFeature:
    """A road, river or runway crossing the image.

    Attributes:
        kind (str): One of :data:`LINE_KINDS`.
        points (tuple): Polyline vertices ``((x, y), ...)``; the ends lie
            just outside the image.
        width (float): Width, fraction of the image side.
        direction (str): ``'horizontal'``, ``'vertical'`` or ``'diagonal'``.
    """
    kind: str
    points: Tuple[Tuple[float, float], ...]
    width: float
    direction: str

    def distance(self, x: float, y: float) -> float:
        """Distance from ``(x, y)`` to the centre line."""
        return _polyline_distance(np.asarray(self.points), x, y)[0]


@dataclass
class Scene:
    """Everything needed to draw and describe one image.

    Attributes:
        scene_class (str): One of :data:`SCENE_CLASSES`.
        background (str): One of :data:`BACKGROUNDS`.
        groups (list[ObjectGroup]): Main group first (when the class has
            one), then extra groups.
        lines (list[LineFeature]): Line features, drawn in order.
        pier_side (str, optional): Side of the image covered by a pier
            (harbours), else None.
        has_main (bool): Whether ``groups[0]`` is the class's main group.
    """
    scene_class: str
    background: str
    groups: List[ObjectGroup] = field(default_factory=list)
    lines: List[LineFeature] = field(default_factory=list)
    pier_side: Optional[str] = None
    has_main: bool = False

    @property
    def main_group(self) -> Optional[ObjectGroup]:
        """The class's main object group, if any."""
        return self.groups[0] if self.has_main and self.groups else None

    def line(self, kind: str) -> Optional[LineFeature]:
        """The first line feature of ``kind`` or None."""
        for line in self.lines:
            if line.kind == kind:
                return line
        return None

    def to_dict(self) -> dict:
        """A json-friendly description (stored per image as ``scene``)."""
        return dict(
            background=self.background,
            pier_side=self.pier_side,
            lines=[
                dict(
                    kind=ln.kind,
                    direction=ln.direction,
                    width=round(ln.width, 4)) for ln in self.lines
            ],
            objects=[
                dict(
                    kind=g.kind,
                    count=g.count,
                    colour=g.colour,
                    size=g.size,
                    position=g.position,
                    main=bool(self.has_main and i == 0),
                    boxes=[[
                        round(o.x, 4),
                        round(o.y, 4),
                        round(o.length, 4),
                        round(o.width, 4),
                        round(o.angle, 4)
                    ] for o in g.instances]) for i, g in enumerate(self.groups)
            ])


def position_name(x: float, y: float) -> str:
    """Name of the 3x3 grid cell containing ``(x, y)``.

    Args:
        x (float): Horizontal position in ``[0, 1]``.
        y (float): Vertical position in ``[0, 1]``.

    Returns:
        str: e.g. ``'top left'``, ``'right'`` or ``'center'``.
    """
    row = 'top' if y < 0.37 else ('bottom' if y > 0.63 else '')
    col = 'left' if x < 0.37 else ('right' if x > 0.63 else '')
    name = ' '.join(p for p in (row, col) if p)
    return name or 'center'


def _polyline_distance(points: np.ndarray, x: float,
                       y: float) -> Tuple[float, int, float]:
    """Distance to a polyline, index of the nearest segment and its t."""
    a, b = points[:-1], points[1:]
    ab = b - a
    ap = np.array([x, y]) - a
    denom = np.maximum((ab**2).sum(1), 1e-12)
    t = np.clip((ap * ab).sum(1) / denom, 0.0, 1.0)
    proj = a + ab * t[:, None]
    d = np.hypot(proj[:, 0] - x, proj[:, 1] - y)
    i = int(np.argmin(d))
    return float(d[i]), i, float(t[i])


def _sample_line(kind: str, rng: np.random.Generator) -> LineFeature:
    """Sample a line feature that crosses the image edge to edge."""
    direction = str(rng.choice(['horizontal', 'vertical', 'diagonal']))
    if direction == 'horizontal':
        start = np.array([-0.06, rng.uniform(0.2, 0.8)])
        end = np.array([1.06, rng.uniform(0.2, 0.8)])
    elif direction == 'vertical':
        start = np.array([rng.uniform(0.2, 0.8), -0.06])
        end = np.array([rng.uniform(0.2, 0.8), 1.06])
    else:
        flip = rng.random() < 0.5
        s = rng.uniform(-0.06, 0.25, size=2)
        e = rng.uniform(0.75, 1.06, size=2)
        start, end = s, e
        if flip:  # bottom-left to top-right
            start = np.array([s[0], 1.0 - s[1]])
            end = np.array([e[0], 1.0 - e[1]])
    t = np.linspace(0.0, 1.0, 24)[:, None]
    pts = start + (end - start) * t
    axis = end - start
    normal = np.array([-axis[1], axis[0]]) / np.linalg.norm(axis)
    if kind == 'runway':
        width = rng.uniform(0.11, 0.15)
        offset = np.zeros(len(t))
    elif kind == 'road':
        width = rng.uniform(0.04, 0.06)
        offset = rng.uniform(-0.08, 0.08) * np.sin(np.pi * t[:, 0])
    else:
        width = rng.uniform(0.09, 0.14)
        amp = rng.uniform(0.03, 0.07)
        freq = rng.uniform(1.0, 2.0)
        phase = rng.uniform(0.0, 2.0 * np.pi)
        offset = amp * np.sin(2.0 * np.pi * freq * t[:, 0] + phase)
    pts = pts + offset[:, None] * normal
    points = tuple(
        (round(float(px), 4), round(float(py), 4)) for px, py in pts)
    return LineFeature(kind, points, float(width), direction)


def _pick_colour(kind: str, background: str, rng: np.random.Generator) -> str:
    clash = _BACKGROUND_CLASH.get(background, ())
    choices = [c for c in KIND_COLOURS[kind] if c not in clash]
    return str(rng.choice(choices or list(KIND_COLOURS[kind])))


def _on_land(x: float, y: float, r: float, scene: Scene) -> bool:
    """Whether a disc lies on land (off the water, off the river)."""
    if scene.background == 'water':
        side, p = scene.pier_side, PIER_FRACTION
        inner = {
            'left': x + r <= p,
            'right': x - r >= 1 - p,
            'top': y + r <= p,
            'bottom': y - r >= 1 - p,
        }
        return bool(side is not None and inner[side])
    return True


def _on_water(x: float, y: float, r: float, scene: Scene) -> bool:
    """Whether a disc lies on open water (off the pier)."""
    if scene.background != 'water':
        return False
    side, p = scene.pier_side, PIER_FRACTION + 0.02
    outer = {
        'left': x - r >= p,
        'right': x + r <= 1 - p,
        'top': y - r >= p,
        'bottom': y + r <= 1 - p,
        None: True,
    }
    return bool(outer[side])


def _place_group(
        kind: str, count: int, size: str, scene: Scene,
        placed: List[ObjectInstance], rng: np.random.Generator,
        length: Optional[float] = None
) -> Tuple[List[ObjectInstance], Optional[str]]:
    """Place up to ``count`` non-overlapping objects of one kind.

    ``length`` (fraction of the image side) overrides the size class's
    length range; when None (the demo) one is drawn from ``_KIND_SIZES``.

    Returns the instances (possibly fewer than asked when space runs out)
    and the line kind they sit on (ships on a river), if any.
    """
    small, large, ratio = _KIND_SIZES[kind]
    lo, hi = small if size == 'small' else large
    if length is None:
        length = rng.uniform(lo, hi)
    width = length * rng.uniform(*ratio)
    base_angle = rng.uniform(0.0, np.pi)
    river = scene.line('river')
    on_river = kind == 'ship' and scene.background != 'water' \
        and river is not None
    if kind in ('building', 'court', 'vehicle'):
        # man-made things tend to share an orientation
        base_angle = float(rng.choice([0.0, np.pi / 2])) + rng.normal(0, 0.08)
    if on_river:
        # the ship must fit across the river
        width = min(width, river.width * 0.45)
        length = min(length, width / ratio[0])
    # group centre
    cx, cy = rng.uniform(0.2, 0.8, size=2)
    spread = 0.08 + 0.06 * math.sqrt(count)
    out: List[ObjectInstance] = []
    for _ in range(count):
        for attempt in range(80):
            grow = 1.0 + attempt / 20.0
            if on_river:
                pts = np.asarray(river.points)
                seg = int(rng.integers(2, len(pts) - 3))
                t = rng.random()
                p = pts[seg] + (pts[seg + 1] - pts[seg]) * t
                d = pts[seg + 1] - pts[seg]
                x, y = float(p[0]), float(p[1])
                angle = math.atan2(d[1], d[0])
            else:
                x = float(cx + rng.normal(0.0, spread * grow))
                y = float(cy + rng.normal(0.0, spread * grow))
                angle = base_angle + (
                    rng.normal(0.0, 0.05)
                    if kind in ('building', 'court',
                                'vehicle') else rng.uniform(-0.4, 0.4))
            inst = ObjectInstance(x, y, float(angle), float(length),
                                  float(width))
            r = inst.radius
            if not (r + _MARGIN <= x <= 1 - r - _MARGIN
                    and r + _MARGIN <= y <= 1 - r - _MARGIN):
                continue
            if any(
                    math.hypot(x - o.x, y - o.y) < r + o.radius + 0.012
                    for o in placed + out):
                continue
            if kind == 'ship' and not on_river:
                if not _on_water(x, y, r, scene):
                    continue
            elif not on_river:
                if not _on_land(x, y, r, scene):
                    continue
                if any(
                        ln.distance(x, y) < ln.width / 2 + r * 0.9
                        for ln in scene.lines):
                    continue
            elif any(
                    ln.distance(x, y) < ln.width / 2 + r * 0.9
                    for ln in scene.lines if ln.kind != 'river'):
                continue
            out.append(inst)
            break
    return out, ('river' if on_river else None)


def sample_scene(scene_class: str, rng: np.random.Generator) -> Scene:
    """Sample a random scene of one class.

    Args:
        scene_class (str): One of :data:`SCENE_CLASSES`.
        rng (numpy.random.Generator): Source of randomness; the result is a
            pure function of its state.

    Returns:
        Scene: The sampled scene. Groups that found no room are dropped, so
        every group has at least one instance; the main group always has one.
    """
    if scene_class not in _CLASS_SPECS:
        raise ValueError(f'scene_class must be one of {SCENE_CLASSES}, '
                         f'got {scene_class!r}')
    spec = _CLASS_SPECS[scene_class]
    background = str(rng.choice(spec['backgrounds']))
    scene = Scene(scene_class=scene_class, background=background)
    if scene_class == 'harbor':
        scene.pier_side = str(rng.choice(_PIER_SIDES))
    for kind in LINE_KINDS:
        if rng.random() < spec['lines'].get(kind, 0.0):
            scene.lines.append(_sample_line(kind, rng))
    # rivers under roads under runways
    scene.lines.sort(
        key=lambda ln: LINE_KINDS.index(ln.kind) if ln.kind != 'road' else 0.5)
    placed: List[ObjectInstance] = []
    wanted: List[Tuple[str, int, bool]] = []
    if spec['main'] is not None:
        kind, lo, hi = spec['main']
        wanted.append((kind, int(rng.integers(lo, hi + 1)), True))
    for kind, prob, lo, hi in spec['extras']:
        if rng.random() < prob:
            wanted.append((kind, int(rng.integers(lo, hi + 1)), False))
    for kind, count, is_main in wanted:
        colour = _pick_colour(kind, background, rng)
        size = 'large' if rng.random() < 0.4 else 'small'
        instances, on_line = _place_group(kind, count, size, scene, placed,
                                          rng)
        if is_main and not instances:
            # always keep the class's defining object: retry small
            for _ in range(5):
                instances, on_line = _place_group(kind, 1, 'small', scene,
                                                  placed, rng)
                if instances:
                    size = 'small'
                    break
            if not instances:
                # last resort: drop the line features that are in the way
                scene.lines = [ln for ln in scene.lines if ln.kind == 'river']
                instances, on_line = _place_group(kind, 1, 'small', scene,
                                                  placed, rng)
                size = 'small'
            if not instances:
                raise RuntimeError(
                    f'could not place a {kind} in a {scene_class} scene')
        if not instances:
            continue
        placed.extend(instances)
        scene.groups.append(
            ObjectGroup(kind, colour, size, instances, on_line=on_line))
        if is_main:
            scene.has_main = True
    return scene
