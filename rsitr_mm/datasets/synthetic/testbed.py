# Copyright (c) rsitr_mm contributors. All rights reserved.
"""The testbed profile: a target domain that can rank modules and a disjoint
pretraining domain, rendered and written to a cached folder.

Layout written by :func:`generate_testbed`::

    ROOT/                       # e.g. data/testbed/v1-<params hash>
      params.json               # generator version + parameters (cache key)
      target/                   # fine-tuning / evaluation domain
        images/*.png  dataset_synthetic.json  classes.txt
      pretrain/                 # disjoint domain for the pretrained start
        images/*.png  dataset_synthetic.json  classes.txt

Both annotation files have the demo's Karpathy layout (a ``class`` and a
``scene`` per image, ``split`` train/val/test). ``scene`` also stores the
per-group length ``multipliers`` and ``held_out`` (whether the image shows
a held-out colour x kind combination). Images are a pure function of
``(seed, domain, index)``; the folder is reused when ``params.json`` is
complete (written last) and matches.
"""
import hashlib
import json
import math
import multiprocessing as mp
import os
import os.path as osp
from typing import Dict, List, Tuple

import numpy as np
from PIL import Image, ImageDraw

from .captions import tokenize
from .generate import CAPTIONS_PER_IMAGE, _check_int
from .render import _draw_group, _draw_line, render_scene_ground
from .scene import SCENE_CLASSES, Scene
from .testbed_captions import write_testbed_captions
from .testbed_scene import (HELD_OUT_COMBOS, PRETRAIN_CLASSES,
                            PRETRAIN_COLOURS, sample_pretrain_scene,
                            sample_target_scene)

#: Bump when the output of the same parameters changes.
TESTBED_VERSION = 1
ANN_FILE = 'dataset_synthetic.json'

#: Default sizes: target (train, val, test) and pretraining images.
DEFAULT_PARAMS: Dict[str, object] = dict(
    image_size=128,
    target_split=(1000, 200, 1000),
    pretrain_images=5000,
    seed=0,
)

_CLUTTER_TARGET = ((52, 78, 40), (96, 90, 80), (140, 132, 118), (70, 60, 44))
_CLUTTER_PRETRAIN = ((250, 250, 250), (60, 60, 60), (200, 200, 170), (170, 200,
                                                                      200))


def _rngs(seed: int, domain: int,
          index: int) -> Tuple[np.random.Generator, ...]:
    children = np.random.SeedSequence([seed, 7, domain, index]).spawn(3)
    return tuple(np.random.default_rng(c) for c in children)


def _draw_clutter(draw: ImageDraw.ImageDraw, scene: Scene, side: float,
                  palette) -> None:
    for x, y, r, shade in getattr(scene, 'clutter', ()):
        cx, cy, rr = x * side, y * side, max(1.0, r * side)
        draw.ellipse([cx - rr, cy - rr, cx + rr, cy + rr],
                     fill=palette[shade % len(palette)])


def _pattern_floor(background: str, s: int,
                   rng: np.random.Generator) -> np.ndarray:
    """Floors of the pretraining domain (no land cover)."""
    hue = rng.uniform(150, 235, 3).astype(np.float32)
    alt = hue * rng.uniform(0.75, 0.9)
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / s
    if background == 'checker':
        n = int(rng.integers(4, 10))
        mask = ((np.floor(xx * n) + np.floor(yy * n)) % 2).astype(bool)
    elif background == 'stripes':
        n = int(rng.integers(5, 12))
        t = xx + yy if rng.random() < 0.5 else xx - yy
        mask = (np.floor(t * n) % 2).astype(bool)
    elif background == 'dots':
        n = int(rng.integers(6, 12))
        fx, fy = (xx * n) % 1 - 0.5, (yy * n) % 1 - 0.5
        mask = fx**2 + fy**2 < 0.08
    else:
        mask = np.zeros((s, s), bool)
        alt = hue * 0.6
        w = (xx * 0.5 + yy * 0.5)[..., None]
        return hue * (1 - w) + alt * w
    return np.where(mask[..., None], alt, hue)


def _star(cx, cy, r, a, points=5):
    out = []
    for k in range(points * 2):
        rad = r if k % 2 == 0 else r * 0.45
        t = a + k * math.pi / points
        out.append((cx + rad * math.cos(t), cy + rad * math.sin(t)))
    return out


def _poly(cx, cy, r, a, n):
    return [(cx + r * math.cos(a + 2 * math.pi * k / n),
             cy + r * math.sin(a + 2 * math.pi * k / n)) for k in range(n)]


def _draw_shape_group(draw: ImageDraw.ImageDraw, group, side: float) -> None:
    colour = PRETRAIN_COLOURS[group.colour]
    for o in group.instances:
        cx, cy, r, a = o.x * side, o.y * side, o.length * side / 2, o.angle
        if group.kind == 'triangle':
            draw.polygon(_poly(cx, cy, r, a, 3), fill=colour)
        elif group.kind == 'star':
            draw.polygon(_star(cx, cy, r, a), fill=colour)
        elif group.kind == 'diamond':
            draw.polygon(_poly(cx, cy, r, a, 4), fill=colour)
        elif group.kind == 'hexagon':
            draw.polygon(_poly(cx, cy, r, a, 6), fill=colour)
        elif group.kind == 'ring':
            draw.ellipse([cx - r, cy - r, cx + r, cy + r],
                         outline=colour,
                         width=max(1, int(round(r * 0.35))))
        elif group.kind == 'cross':
            w = r * 0.35
            for ang in (a, a + math.pi / 2):
                c, s = math.cos(ang), math.sin(ang)
                draw.polygon([(cx + r * c - w * s, cy + r * s + w * c),
                              (cx - r * c - w * s, cy - r * s + w * c),
                              (cx - r * c + w * s, cy - r * s - w * c),
                              (cx + r * c + w * s, cy + r * s - w * c)],
                             fill=colour)
        else:
            raise ValueError(f'unknown pretraining kind {group.kind!r}')


def render_testbed_scene(scene: Scene, image_size: int, domain: str,
                         rng: np.random.Generator) -> np.ndarray:
    """Draw a testbed scene of either domain.

    Args:
        scene (Scene): From :mod:`.testbed_scene`.
        image_size (int): Side in pixels.
        domain (str): ``'target'`` or ``'pretrain'``.
        rng (numpy.random.Generator): Textures and pixel noise.

    Returns:
        numpy.ndarray: uint8 (image_size, image_size, 3) RGB.
    """
    s = int(image_size)
    if domain == 'target':
        arr = render_scene_ground(scene, s, rng)
    else:
        arr = _pattern_floor(scene.background, s, rng)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), 'RGB')
    ss = 2 if s <= 192 else 1
    if ss > 1:
        img = img.resize((s * ss, s * ss), Image.BILINEAR)
    draw = ImageDraw.Draw(img)
    side = float(s * ss)
    if domain == 'target':
        _draw_clutter(draw, scene, side, _CLUTTER_TARGET)
        for line in scene.lines:
            _draw_line(draw, line, side)
        for group in scene.groups:
            _draw_group(draw, group, side)
    else:
        _draw_clutter(draw, scene, side, _CLUTTER_PRETRAIN)
        for line in scene.lines:
            pts = [(x * side, y * side) for x, y in line.points]
            w = max(1, int(round(line.width * side * 0.6)))
            fill = (110, 70, 40) if line.kind == 'fence' else (245, 240, 225)
            draw.line(pts, fill=fill, width=w, joint='curve')
        for group in scene.groups:
            _draw_shape_group(draw, group, side)
    if ss > 1:
        img = img.resize((s, s), Image.BOX)
    out = np.asarray(img, np.float32)
    out += rng.normal(0.0, 3.0, out.shape).astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def scene_record(scene: Scene) -> dict:
    """json description: the demo's fields plus multipliers and held_out."""
    rec = scene.to_dict()
    rec['multipliers'] = [round(m, 4) for m in scene.multipliers]
    held = set(HELD_OUT_COMBOS)
    rec['held_out'] = any((g.kind, g.colour) in held for g in scene.groups)
    return rec


def make_testbed_image(domain: str, index: int, seed: int, image_size: int,
                       scene_class: str,
                       split: str) -> Tuple[np.ndarray, dict, List[str]]:
    """Sample, draw and describe one testbed image (no disk access).

    Returns:
        tuple: ``(image, scene_record, captions)``.
    """
    if domain not in ('target', 'pretrain'):
        raise ValueError(
            f"domain must be 'target' or 'pretrain', got {domain!r}")
    d = 0 if domain == 'target' else 1
    scene_rng, caption_rng, render_rng = _rngs(seed, d, index)
    if domain == 'target':
        scene = sample_target_scene(scene_class, scene_rng, split)
    else:
        scene = sample_pretrain_scene(scene_class, scene_rng)
    captions = write_testbed_captions(scene, caption_rng, CAPTIONS_PER_IMAGE)
    image = render_testbed_scene(scene, image_size, domain, render_rng)
    return image, scene_record(scene), captions


def _work(task: tuple) -> Tuple[int, dict, list]:
    domain, index, seed, size, cls, split, img_dir = task
    image, rec, caps = make_testbed_image(domain, index, seed, size, cls,
                                          split)
    Image.fromarray(image, 'RGB').save(
        osp.join(img_dir, f'{cls}_{index:05d}.png'), compress_level=1)
    return index, rec, caps


def _write_domain(out_dir: str, domain: str, classes, splits: List[str],
                  seed: int, image_size: int, num_workers: int) -> str:
    img_dir = osp.join(out_dir, 'images')
    os.makedirs(img_dir, exist_ok=True)
    n = len(splits)
    rng = np.random.default_rng(
        np.random.SeedSequence([seed, 8, 0 if domain == 'target' else 1]))
    labels = np.resize(np.arange(len(classes)), n)
    rng.shuffle(labels)
    names = [classes[i] for i in labels]
    tasks = [(domain, i, seed, image_size, names[i], splits[i], img_dir)
             for i in range(n)]
    results = [None] * n
    if num_workers <= 1:
        for t in tasks:
            i, rec, caps = _work(t)
            results[i] = (rec, caps)
    else:
        with mp.get_context().Pool(num_workers) as pool:
            for i, rec, caps in pool.imap_unordered(
                    _work, tasks, chunksize=max(1, n // (num_workers * 8))):
                results[i] = (rec, caps)
    images = []
    for i, (rec, caps) in enumerate(results):
        sids = list(
            range(i * CAPTIONS_PER_IMAGE, (i + 1) * CAPTIONS_PER_IMAGE))
        images.append(
            dict(
                filename=f'{names[i]}_{i:05d}.png',
                imgid=i,
                split=splits[i],
                sentids=sids,
                sentences=[
                    dict(raw=r, tokens=tokenize(r), imgid=i, sentid=sid)
                    for r, sid in zip(caps, sids)
                ],
                scene=rec,
                **{'class': names[i]}))
    ann = osp.join(out_dir, ANN_FILE)
    with open(ann, 'w', encoding='utf-8') as f:
        json.dump(
            dict(
                dataset=f'synthetic_testbed_{domain}',
                classes=list(classes),
                images=images), f)
    with open(osp.join(out_dir, 'classes.txt'), 'w', encoding='utf-8') as f:
        f.write('\n'.join(classes) + '\n')
    return ann


def testbed_params(**overrides) -> dict:
    """Full, json-normalised parameter dict (defaults + ``overrides``)."""
    unknown = set(overrides) - set(DEFAULT_PARAMS)
    if unknown:
        raise ValueError(f'unknown testbed parameters {sorted(unknown)}; '
                         f'expected some of {sorted(DEFAULT_PARAMS)}')
    params = dict(DEFAULT_PARAMS, **overrides)
    params['target_split'] = [int(v) for v in params['target_split']]
    if len(params['target_split']) != 3:
        raise ValueError('target_split must be (train, val, test) counts, '
                         f'got {params["target_split"]!r}')
    for i, v in enumerate(params['target_split']):
        _check_int(f'target_split[{i}]', v, 1)
    _check_int('image_size', params['image_size'], 64, 512)
    _check_int('pretrain_images', params['pretrain_images'], 1)
    _check_int('seed', params['seed'], 0)
    params['version'] = TESTBED_VERSION
    return params


def testbed_dir(root: str, **overrides) -> str:
    """Cache folder ``root/v<version>-<hash of params>`` of a parameter set.
    """
    params = testbed_params(**overrides)
    key = hashlib.sha1(json.dumps(params, sort_keys=True).encode())
    return osp.join(root, f'v{TESTBED_VERSION}-{key.hexdigest()[:10]}')


def generate_testbed(root: str = 'data/testbed',
                     num_workers: int = 0,
                     force: bool = False,
                     **overrides) -> str:
    """Write (or reuse) the testbed's two domains.

    Args:
        root (str): Parent folder of the cache folders.
        num_workers (int): Worker processes (output does not depend on it).
        force (bool): Regenerate even if a complete folder exists.
        **overrides: ``image_size``, ``target_split`` (train, val, test),
            ``pretrain_images``, ``seed`` (see :data:`DEFAULT_PARAMS`).

    Returns:
        str: The cache folder (see the module docstring for its layout).
    """
    params = testbed_params(**overrides)
    out = testbed_dir(root, **overrides)
    meta = osp.join(out, 'params.json')
    if not force and osp.isfile(meta):
        with open(meta, encoding='utf-8') as f:
            if json.load(f) == params:
                return out
    os.makedirs(out, exist_ok=True)
    if osp.isfile(meta):
        os.remove(meta)
    seed, size = params['seed'], params['image_size']
    n_train, n_val, n_test = params['target_split']
    splits = ['train'] * n_train + ['val'] * n_val + ['test'] * n_test
    order = np.random.default_rng(np.random.SeedSequence([seed,
                                                          9])).permutation(
                                                              len(splits))
    splits = [splits[i] for i in order]
    _write_domain(
        osp.join(out, 'target'), 'target', SCENE_CLASSES, splits, seed, size,
        num_workers)
    _write_domain(
        osp.join(out, 'pretrain'), 'pretrain', PRETRAIN_CLASSES,
        ['train'] * params['pretrain_images'], seed, size, num_workers)
    tmp = meta + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(params, f, sort_keys=True, indent=1)
    os.replace(tmp, meta)
    return out


__all__ = [
    'generate_testbed', 'testbed_dir', 'testbed_params', 'make_testbed_image',
    'render_testbed_scene', 'TESTBED_VERSION', 'DEFAULT_PARAMS'
]
