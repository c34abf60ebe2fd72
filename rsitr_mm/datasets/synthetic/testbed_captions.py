# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Captions of testbed scenes: objects, counts, colours, sizes, relations.

Every caption names at least one object group with its count and colour
(``"two large red storage tanks left of a road"``), so retrieving the right
image needs the objects, how many there are, their colour and size, and
where they are relative to each other; the scene class alone is not enough.
Works for both domains of :mod:`.testbed_scene`.
"""
from typing import List, Sequence

import numpy as np

from .scene import LineFeature, ObjectGroup, Scene

_NUMBERS = ('no', 'one', 'two', 'three', 'four', 'five', 'six', 'seven',
            'eight')

_NOUNS = {
    'plane': ('plane', 'planes'),
    'storage_tank': ('storage tank', 'storage tanks'),
    'ship': ('ship', 'ships'),
    'building': ('building', 'buildings'),
    'vehicle': ('vehicle', 'vehicles'),
    'court': ('court', 'courts'),
    'triangle': ('triangle', 'triangles'),
    'star': ('star', 'stars'),
    'cross': ('cross', 'crosses'),
    'ring': ('ring', 'rings'),
    'diamond': ('diamond', 'diamonds'),
    'hexagon': ('hexagon', 'hexagons'),
}

_BACKGROUND_PHRASES = {
    'bareland': 'bare land',
    'farmland': 'farmland',
    'forest': 'a forest',
    'grassland': 'grassland',
    'urban': 'an urban area',
    'water': 'the water',
    'checker': 'a checkered floor',
    'stripes': 'a striped floor',
    'dots': 'a dotted floor',
    'gradient': 'a shaded floor',
}

_CLASS_PHRASES = {
    'airport': 'an airport',
    'bareland': 'a bare land',
    'farmland': 'a farmland',
    'forest': 'a forest',
    'harbor': 'a harbor',
    'industrial': 'an industrial area',
    'parking': 'a parking lot',
    'residential': 'a residential area',
    'river': 'a river scene',
    'sports': 'a sports ground',
}


def _class_phrase(scene_class: str) -> str:
    if scene_class in _CLASS_PHRASES:
        return _CLASS_PHRASES[scene_class]
    return 'a ' + scene_class.replace('_', ' ')


def group_phrase(group: ObjectGroup,
                 with_size: bool = True,
                 with_colour: bool = True) -> str:
    """``"two large red storage tanks"`` / ``"a white plane"``."""
    singular, plural = _NOUNS[group.kind]
    n = group.count
    words = ['a' if n == 1 else _NUMBERS[min(n, len(_NUMBERS) - 1)]]
    if with_size and group.size:
        words.append(group.size)
    if with_colour:
        words.append(group.colour)
    words.append(singular if n == 1 else plural)
    text = ' '.join(words)
    if text.startswith('a ') and text[2] in 'aeiou':
        text = 'an ' + text[2:]
    return text


def _centre(group: ObjectGroup) -> np.ndarray:
    return np.array([[o.x, o.y] for o in group.instances]).mean(0)


def relation(a: ObjectGroup, b: ObjectGroup) -> str:
    """Where ``a`` lies relative to ``b``: left of / right of / above / below.
    """
    d = _centre(a) - _centre(b)
    if abs(d[0]) >= abs(d[1]):
        return 'left of' if d[0] < 0 else 'right of'
    return 'above' if d[1] < 0 else 'below'


def line_relation(a: ObjectGroup, line: LineFeature) -> str:
    """``"next to a road"`` / ``"on the river"`` / ``"beside a fence"``."""
    if a.on_line == line.kind:
        return f'on the {line.kind}'
    c = _centre(a)
    near = line.distance(float(c[0]), float(c[1])) < 0.2
    return f'{"next to" if near else "away from"} the {line.kind}'


def _position(group: ObjectGroup) -> str:
    pos = group.position
    return 'the center' if pos == 'center' else f'the {pos}'


def write_testbed_captions(scene: Scene,
                           rng: np.random.Generator,
                           num: int = 5) -> List[str]:
    """``num`` distinct captions of a testbed scene.

    Args:
        scene (Scene): A scene from :mod:`.testbed_scene` (needs at least
            one object group).
        rng (numpy.random.Generator): Source of randomness.
        num (int): Number of captions. Defaults to 5.

    Returns:
        list[str]: Lower-case captions without final punctuation.
    """
    groups: Sequence[ObjectGroup] = scene.groups
    bg = _BACKGROUND_PHRASES.get(scene.background, scene.background)
    cls = _class_phrase(scene.scene_class)
    cands: List[str] = []
    if not groups:  # a rare land-cover scene where nothing found room
        cands += [
            f'{cls} without objects', f'an aerial view of {bg}',
            f'{cls} seen from above', f'only {bg} and no objects'
        ]
        cands += [f'{cls} with a {ln.kind}' for ln in scene.lines]
    for i, g in enumerate(groups):
        full = group_phrase(g)
        others = [o for j, o in enumerate(groups) if j != i]
        for o in others:
            cands.append(f'{full} {relation(g, o)} {group_phrase(o)}')
            cands.append(f'{group_phrase(g, with_size=False)} '
                         f'{relation(g, o)} '
                         f'{group_phrase(o, with_size=False)}')
        for line in scene.lines:
            cands.append(f'{full} {line_relation(g, line)}')
        cands.append(f'there {"is" if g.count == 1 else "are"} {full} '
                     f'in {_position(g)}')
        cands.append(f'{full} on {bg}')
    listing = [group_phrase(g, with_size=False) for g in groups]
    listing += [f'a {ln.kind}' for ln in scene.lines]
    if len(listing) > 1:
        listed = ', '.join(listing[:-1]) + ' and ' + listing[-1]
    else:
        listed = listing[0] if listing else ''
    if listed:
        cands.append(f'{cls} with {listed}')
        cands.append(f'an aerial view of {cls} with {listed}')
    cands = list(dict.fromkeys(cands))  # distinct, first-seen order
    order = rng.permutation(len(cands))
    picked = [cands[i] for i in order[:num]]
    k = 0
    while len(picked) < num:  # few groups: vary the wording
        k += 1
        picked.append(f'{picked[(k - 1) % len(cands)]} seen from above' +
                      ' again' * ((k - 1) // len(cands)))
    return picked


__all__ = [
    'write_testbed_captions', 'group_phrase', 'relation', 'line_relation'
]
