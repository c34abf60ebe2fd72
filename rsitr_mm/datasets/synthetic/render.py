# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Drawing of synthetic aerial scenes with numpy and PIL.

:func:`render_scene` turns a :class:`~.scene.Scene` into an RGB ``uint8``
array. Backgrounds are textured with smooth value noise (water ripples, tree
crowns, striped field parcels, city blocks); lines and objects are drawn
with PIL on a canvas supersampled twice for small images and box-filtered
down, and light pixel noise is added at the end. The result is a pure
function of the scene, the size and the generator state.
"""
import math
from typing import List, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw

from .scene import COLOURS, PIER_FRACTION, LineFeature, ObjectGroup, Scene

Point = Tuple[float, float]

_SHADOW = (30, 32, 30)


def _smooth_noise(rng: np.random.Generator, size: int,
                  cells: int) -> np.ndarray:
    """Bilinear value noise in ``[-0.5, 0.5]``, shape (size, size)."""
    cells = max(2, int(cells))
    grid = rng.random((cells, cells), dtype=np.float32)
    img = Image.fromarray(grid).resize((size, size), Image.BILINEAR)
    return np.asarray(img, dtype=np.float32) - 0.5


def _tint(base: Sequence[float], rng: np.random.Generator,
          jitter: float) -> np.ndarray:
    return np.asarray(base, np.float32) + rng.uniform(-jitter, jitter, 3)


def _water(rng: np.random.Generator, s: int) -> np.ndarray:
    base = _tint((34, 74, 128), rng, 8)
    low = _smooth_noise(rng, s, 3) * 28
    ripple = _smooth_noise(rng, s, max(4, s // 6)) * 10
    tex = (low + ripple)[..., None] * np.array([0.5, 0.75, 1.0], np.float32)
    return base + tex


def _forest(rng: np.random.Generator, s: int) -> np.ndarray:
    base = _tint((42, 86, 40), rng, 6)
    crowns = _smooth_noise(rng, s, max(4, s // 5))
    crowns = np.sign(crowns) * np.abs(crowns)**0.7
    low = _smooth_noise(rng, s, 3) * 18
    return base + crowns[..., None] * np.array([38, 62, 34],
                                               np.float32) + low[..., None]


def _grassland(rng: np.random.Generator, s: int) -> np.ndarray:
    base = _tint((116, 152, 76), rng, 8)
    low = _smooth_noise(rng, s, 3) * 24
    fine = _smooth_noise(rng, s, max(4, s // 8)) * 8
    return base + (low + fine)[..., None] * np.array([0.8, 1.0, 0.6],
                                                     np.float32)


def _bareland(rng: np.random.Generator, s: int) -> np.ndarray:
    base = _tint((178, 148, 108), rng, 10)
    low = _smooth_noise(rng, s, 3) * 34
    fine = _smooth_noise(rng, s, max(4, s // 8)) * 14
    return base + (low + fine)[..., None]


def _urban(rng: np.random.Generator, s: int) -> np.ndarray:
    blocks = int(rng.integers(5, 9))
    greys = rng.uniform(98, 160, (blocks, blocks)).astype(np.float32)
    grid = np.asarray(
        Image.fromarray(greys).resize((s, s), Image.NEAREST), np.float32)
    yy, xx = np.mgrid[0:s, 0:s]
    cell = s / blocks
    street = ((xx % cell) < max(1.0, s / 64)) | ((yy % cell) < max(
        1.0, s / 64))
    grid = np.where(street, 92.0, grid)
    fine = _smooth_noise(rng, s, max(4, s // 4)) * 16
    tone = _tint((1.0, 1.0, 1.02), rng, 0.03)
    return (grid + fine)[..., None] * tone


_FIELD_COLOURS = ((118, 160, 62), (190, 172, 92), (142, 110, 72),
                  (92, 132, 52), (160, 176, 84))


def _farmland(rng: np.random.Generator, s: int) -> np.ndarray:
    # guillotine split of the unit square into parcels
    parcels = [(0.0, 0.0, 1.0, 1.0)]
    for _ in range(int(rng.integers(3, 7))):
        i = int(np.argmax([(p[2] - p[0]) * (p[3] - p[1]) for p in parcels]))
        x0, y0, x1, y1 = parcels.pop(i)
        cut = rng.uniform(0.35, 0.65)
        if x1 - x0 >= y1 - y0:
            xm = x0 + (x1 - x0) * cut
            parcels += [(x0, y0, xm, y1), (xm, y0, x1, y1)]
        else:
            ym = y0 + (y1 - y0) * cut
            parcels += [(x0, y0, x1, ym), (x0, ym, x1, y1)]
    out = np.empty((s, s, 3), np.float32)
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    margin = np.array((150, 140, 100), np.float32)
    for x0, y0, x1, y1 in parcels:
        a, b = int(round(x0 * s)), int(round(x1 * s))
        c, d = int(round(y0 * s)), int(round(y1 * s))
        colour = np.asarray(
            _FIELD_COLOURS[int(rng.integers(len(_FIELD_COLOURS)))],
            np.float32) + rng.uniform(-8, 8, 3)
        theta = float(rng.choice([0.0, np.pi / 2])) + rng.normal(0, 0.1)
        period = s * rng.uniform(0.035, 0.07)
        u = xx[c:d, a:b] * math.cos(theta) + yy[c:d, a:b] * math.sin(theta)
        stripes = np.where((u / period) % 1.0 < 0.5, 1.0, -1.0)
        amp = rng.uniform(8, 16)
        out[c:d, a:b] = colour + (stripes * amp)[..., None]
        # field margins
        out[c:d, a:min(a + 1, b)] = margin
        out[c:min(c + 1, d), a:b] = margin
    out += _smooth_noise(rng, s, 4)[..., None] * 14
    return out


_BACKGROUND_FN = dict(
    water=_water,
    forest=_forest,
    grassland=_grassland,
    bareland=_bareland,
    urban=_urban,
    farmland=_farmland)


def render_background(background: str, size: int,
                      rng: np.random.Generator) -> np.ndarray:
    """Texture of one land-cover class.

    Args:
        background (str): One of :data:`~.scene.BACKGROUNDS`.
        size (int): Side in pixels.
        rng (numpy.random.Generator): Source of randomness.

    Returns:
        numpy.ndarray: float32 array of shape (size, size, 3), roughly in
        ``[0, 255]`` (not clipped).
    """
    if background not in _BACKGROUND_FN:
        raise ValueError(f'background must be one of '
                         f'{sorted(_BACKGROUND_FN)}, got {background!r}')
    return _BACKGROUND_FN[background](rng, size)


def render_scene_ground(scene: Scene, size: int,
                        rng: np.random.Generator) -> np.ndarray:
    """The scene's land cover, with its urban pier strip when it has one.

    Args:
        scene (Scene): Its ``background`` and ``pier_side`` are used.
        size (int): Side in pixels.
        rng (numpy.random.Generator): Source of randomness.

    Returns:
        numpy.ndarray: float32 array of shape (size, size, 3), roughly in
        ``[0, 255]`` (not clipped).
    """
    arr = render_background(scene.background, size, rng)
    if scene.pier_side is not None:
        pier = _urban(rng, size) * 0.95
        p = int(round(PIER_FRACTION * size))
        region = dict(
            left=(slice(None), slice(0, p)),
            right=(slice(None), slice(size - p, size)),
            top=(slice(0, p), slice(None)),
            bottom=(slice(size - p, size), slice(None)))[scene.pier_side]
        arr[region] = pier[region]
    return arr


def _transform(points: Sequence[Point], cx: float, cy: float, angle: float,
               scale: float) -> List[Point]:
    """Scale, rotate and translate local coordinates."""
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + (px * c - py * s) * scale, cy + (px * s + py * c) * scale)
            for px, py in points]


def _mirror(points: Sequence[Point]) -> List[Point]:
    return [(px, -py) for px, py in points]


def _shade(colour: Tuple[int, int, int], factor: float) -> Tuple[int, ...]:
    return tuple(int(max(0, min(255, round(v * factor)))) for v in colour)


# plane in units of its length, nose towards +x
_FUSELAGE = [(0.5, 0.0), (0.42, 0.055), (-0.48, 0.045), (-0.5, 0.0),
             (-0.48, -0.045), (0.42, -0.055)]
_WING = [(0.14, 0.04), (-0.1, 0.48), (-0.2, 0.48), (-0.06, 0.04)]
_TAIL = [(-0.34, 0.03), (-0.46, 0.19), (-0.51, 0.19), (-0.47, 0.03)]
# ship in units of its length, bow towards +x; width set separately
_HULL = [(0.5, 0.0), (0.3, 0.5), (-0.5, 0.5), (-0.5, -0.5), (0.3, -0.5)]


def _rect(length: float, width: float) -> List[Point]:
    hl, hw = length / 2, width / 2
    return [(hl, hw), (-hl, hw), (-hl, -hw), (hl, -hw)]


def _draw_group(draw: ImageDraw.ImageDraw, group: ObjectGroup,
                side: float) -> None:
    """Draw every instance of a group on a canvas of ``side`` pixels."""
    colour = COLOURS[group.colour]
    dark = _shade(colour, 0.72)
    sh = 0.012 * side  # shadow offset
    for o in group.instances:
        cx, cy, a = o.x * side, o.y * side, o.angle
        L, W = o.length * side, o.width * side
        if group.kind == 'plane':
            parts = [_FUSELAGE, _WING, _mirror(_WING), _TAIL, _mirror(_TAIL)]
            for off, fill in ((sh, _SHADOW), (0.0, colour)):
                for part in parts:
                    draw.polygon(
                        _transform(part, cx + off, cy + off, a, L), fill=fill)
        elif group.kind == 'storage_tank':
            r = L / 2
            draw.ellipse([cx - r + sh, cy - r + sh, cx + r + sh, cy + r + sh],
                         fill=_SHADOW)
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
            ri = r * 0.62
            draw.ellipse([cx - ri, cy - ri, cx + ri, cy + ri],
                         outline=dark,
                         width=max(1, int(round(r * 0.12))))
        elif group.kind == 'ship':
            hull = [(px * L, py * W) for px, py in _HULL]
            wake = _transform([(-0.5 * L, 0.0), (-0.9 * L, 0.0)], cx, cy, a,
                              1.0)
            draw.line(wake, fill=(200, 215, 225), width=max(1, int(W * 0.4)))
            draw.polygon(_transform(hull, cx, cy, a, 1.0), fill=colour)
            cabin = _rect(L * 0.22, W * 0.6)
            draw.polygon(
                _transform(cabin, cx - 0.15 * L * math.cos(a),
                           cy - 0.15 * L * math.sin(a), a, 1.0),
                fill=dark)
        elif group.kind == 'building':
            body = _rect(L, W)
            draw.polygon(
                _transform(body, cx + sh * 1.5, cy + sh * 1.5, a, 1.0),
                fill=_SHADOW)
            draw.polygon(_transform(body, cx, cy, a, 1.0), fill=colour)
            ridge = _transform([(L * 0.45, 0.0), (-L * 0.45, 0.0)], cx, cy, a,
                               1.0)
            draw.line(ridge, fill=dark, width=max(1, int(round(W * 0.12))))
        elif group.kind == 'vehicle':
            body = _rect(L, W)
            draw.polygon(
                _transform(body, cx + sh * 0.5, cy + sh * 0.5, a, 1.0),
                fill=_SHADOW)
            draw.polygon(_transform(body, cx, cy, a, 1.0), fill=colour)
            glass = _rect(L * 0.18, W * 0.8)
            draw.polygon(
                _transform(glass, cx + 0.18 * L * math.cos(a),
                           cy + 0.18 * L * math.sin(a), a, 1.0),
                fill=_shade(colour, 0.45))
        elif group.kind == 'court':
            line_w = max(1, int(round(W * 0.05)))
            body = _rect(L, W)
            draw.polygon(_transform(body, cx, cy, a, 1.0), fill=colour)
            inner = _transform(_rect(L * 0.86, W * 0.8), cx, cy, a, 1.0)
            draw.line(inner + inner[:1], fill=(240, 240, 240), width=line_w)
            mid = _transform([(0.0, W * 0.4), (0.0, -W * 0.4)], cx, cy, a, 1.0)
            draw.line(mid, fill=(240, 240, 240), width=line_w)
        else:
            raise ValueError(f'unknown object kind {group.kind!r}')


def _draw_line(draw: ImageDraw.ImageDraw, line: LineFeature,
               side: float) -> None:
    pts = [(x * side, y * side) for x, y in line.points]
    w = max(1, int(round(line.width * side)))
    if line.kind == 'river':
        draw.line(
            pts, fill=(120, 112, 84), width=w + max(2, w // 5), joint='curve')
        draw.line(pts, fill=(40, 84, 136), width=w, joint='curve')
    elif line.kind == 'road':
        draw.line(pts, fill=(64, 64, 66), width=w, joint='curve')
        draw.line(
            pts, fill=(206, 200, 170), width=max(1, w // 12), joint='curve')
    elif line.kind == 'runway':
        draw.line(pts, fill=(78, 78, 82), width=w, joint='curve')
        # dashed centre line
        (x0, y0), (x1, y1) = pts[0], pts[-1]
        n = 14
        for i in range(n):
            t0, t1 = i / n, (i + 0.5) / n
            draw.line([(x0 + (x1 - x0) * t0, y0 + (y1 - y0) * t0),
                       (x0 + (x1 - x0) * t1, y0 + (y1 - y0) * t1)],
                      fill=(235, 235, 235),
                      width=max(1, w // 12))
    else:
        raise ValueError(f'unknown line kind {line.kind!r}')


def render_scene(scene: Scene, image_size: int,
                 rng: np.random.Generator) -> np.ndarray:
    """Draw a scene.

    Args:
        scene (Scene): The scene to draw.
        image_size (int): Side of the square image in pixels.
        rng (numpy.random.Generator): Source of randomness for textures and
            pixel noise.

    Returns:
        numpy.ndarray: uint8 array of shape (image_size, image_size, 3), RGB.
    """
    s = int(image_size)
    arr = render_scene_ground(scene, s, rng)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), 'RGB')
    ss = 2 if s <= 128 else 1
    if ss > 1:
        img = img.resize((s * ss, s * ss), Image.BILINEAR)
    draw = ImageDraw.Draw(img)
    side = float(s * ss)
    for line in scene.lines:
        _draw_line(draw, line, side)
    for group in scene.groups:
        _draw_group(draw, group, side)
    if ss > 1:
        img = img.resize((s, s), Image.BOX)
    out = np.asarray(img, np.float32)
    out += rng.normal(0.0, 3.0, out.shape).astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
