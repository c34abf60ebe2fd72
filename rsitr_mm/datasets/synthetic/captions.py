# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Caption writing for synthetic aerial scenes.

Every caption is derived from the :class:`~.scene.Scene`, so it only names
what is drawn: object counts in words (``three white storage tanks``),
colours, sizes, grid positions (``in the top left``), line features
(``next to a river``, ``beside a road``) and the background. Five different
sentence templates are chosen per image, with synonyms drawn at random, and
:func:`write_captions` guarantees the five sentences are distinct. At least
one caption names the scene class, at least one names the background, every
caption names the main object group with its count, and every extra object
group is named in at least one caption.
"""
import re
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from .scene import ObjectGroup, Scene

#: Count words used in captions.
COUNT_WORDS: Dict[int, str] = {
    1: 'one',
    2: 'two',
    3: 'three',
    4: 'four',
    5: 'five',
    6: 'six',
    7: 'seven',
    8: 'eight',
    9: 'nine',
    10: 'ten'
}

#: Words that can express a count of one.
SINGULAR_WORDS = ('a', 'an', 'one', 'single')

#: ``(singular, plural)`` nouns per object kind; every caption uses one.
NOUNS: Dict[str, Sequence[tuple]] = {
    'plane':
    (('plane', 'planes'), ('airplane', 'airplanes'), ('aircraft', 'aircraft')),
    'storage_tank': (('storage tank', 'storage tanks'),
                     ('oil tank', 'oil tanks'), ('tank', 'tanks')),
    'ship': (('ship', 'ships'), ('boat', 'boats'), ('vessel', 'vessels')),
    'building': (('building', 'buildings'), ('house', 'houses')),
    'vehicle': (('car', 'cars'), ('vehicle', 'vehicles')),
    'court': (('court', 'courts'), ('tennis court', 'tennis courts'),
              ('sports court', 'sports courts')),
}

_SIZE_WORDS = dict(small=('small', 'little'), large=('large', 'big'))

_VERBS = {
    'plane': (('is parked', 'are parked'), ('stands', 'stand')),
    'storage_tank': (('stands', 'stand'), ('is located', 'are located')),
    'ship':
    (('is moored', 'are moored'), ('sails', 'sail'), ('floats', 'float')),
    'building': (('stands', 'stand'), ('is located', 'are located'),
                 ('is built', 'are built')),
    'vehicle': (('is parked', 'are parked'), ('stands', 'stand')),
    'court': (('is located', 'are located'), ('lies', 'lie')),
}

_POSITIONS = {
    'top left':
    ('in the top left', 'in the upper left corner', 'at the top left'),
    'top': ('at the top', 'in the upper part', 'near the top edge'),
    'top right':
    ('in the top right', 'in the upper right corner', 'at the top right'),
    'left': ('on the left', 'on the left side', 'in the left part'),
    'center': ('in the center', 'in the middle', 'in the central part'),
    'right': ('on the right', 'on the right side', 'in the right part'),
    'bottom left':
    ('in the bottom left', 'in the lower left corner', 'at the bottom left'),
    'bottom': ('at the bottom', 'in the lower part', 'near the bottom edge'),
    'bottom right': ('in the bottom right', 'in the lower right corner',
                     'at the bottom right'),
}

_BG_ON = {
    'water': ('on the blue water', 'on the sea', 'on dark blue water'),
    'forest': ('surrounded by dense forest', 'among green trees',
               'in a dense green forest'),
    'farmland':
    ('among farmland', 'surrounded by fields', 'amid green and yellow fields'),
    'bareland':
    ('on bare land', 'on barren sandy ground', 'on yellow bare soil'),
    'urban': ('in an urban area', 'on grey ground', 'among city blocks'),
    'grassland':
    ('on green grass', 'on a green meadow', 'surrounded by grassland'),
}

_BG_NOUN = {
    'water': ('blue water', 'the sea', 'a large body of water'),
    'forest': ('a dense forest', 'many green trees', 'thick green woodland'),
    'farmland': ('farmland', 'many fields', 'striped farmland fields'),
    'bareland': ('bare land', 'barren ground', 'sandy bare soil'),
    'urban': ('an urban area', 'grey city blocks', 'a built up area'),
    'grassland': ('green grassland', 'a green meadow', 'green grass'),
}

_CLASS_NOUN = {
    'airport': ('an airport', 'an airfield'),
    'bareland': ('bare land', 'a barren area'),
    'farmland': ('farmland', 'an agricultural area'),
    'forest': ('a forest', 'a woodland'),
    'harbor': ('a harbor', 'a port'),
    'industrial': ('an industrial area', 'a factory area'),
    'parking': ('a parking lot', 'a car park'),
    'residential': ('a residential area', 'a neighborhood'),
    'river': ('a river area', 'a riverside'),
    'sports': ('a sports area', 'a playground'),
}

_LINE_REL = {
    'road': ('beside a road', 'next to a road', 'near a road'),
    'river': ('next to a river', 'beside a winding river', 'near a river'),
    'runway': ('near a runway', 'beside the runway', 'next to a long runway'),
}

_LINE_NOUN = {
    'road': ('a road', 'a grey road', 'a narrow road'),
    'river': ('a river', 'a winding river', 'a blue river'),
    'runway': ('a runway', 'a long runway', 'a wide runway'),
}

_LINE_VERB = {
    'road': ('crosses the image', 'runs through the scene'),
    'river': ('winds through the scene', 'flows across the image'),
    'runway': ('crosses the image', 'stretches across the scene'),
}

_DIRECTION = {
    'horizontal': ('from left to right', 'horizontally'),
    'vertical': ('from top to bottom', 'vertically'),
    'diagonal': ('diagonally', 'from corner to corner'),
}

_PIER = ('next to a pier', 'beside a dock', 'near the wharf')


def tokenize(sentence: str) -> List[str]:
    """Lower-case word tokens of a sentence (punctuation dropped)."""
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", sentence.lower())


class _Writer:
    """Phrase helpers bound to one scene and one generator."""

    def __init__(self, scene: Scene, rng: np.random.Generator) -> None:
        self.scene = scene
        self.rng = rng

    def pick(self, options: Sequence):
        return options[int(self.rng.integers(len(options)))]

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    # -- objects ---------------------------------------------------------
    def objects(self, group: ObjectGroup) -> str:
        """``three large white storage tanks`` style phrase."""
        singular, plural = self.pick(NOUNS[group.kind])
        words = []
        if self.chance(0.4):
            words.append(self.pick(_SIZE_WORDS[group.size]))
        if self.chance(0.85):
            words.append(group.colour)
        words.append(singular if group.count == 1 else plural)
        rest = ' '.join(words)
        if group.count == 1:
            count = self.pick(('a', 'one', 'a single'))
            if count == 'a' and rest[0] in 'aeiou':
                count = 'an'
        else:
            count = COUNT_WORDS.get(group.count, str(group.count))
        return f'{count} {rest}'

    def be(self, group: ObjectGroup) -> str:
        return 'is' if group.count == 1 else 'are'

    def verb(self, group: ObjectGroup) -> str:
        options = _VERBS[group.kind]
        if group.kind == 'ship' and self.scene.pier_side is None:
            options = options[1:]
        return self.pick(options)[0 if group.count == 1 else 1]

    def pos(self, group: ObjectGroup) -> str:
        return self.pick(_POSITIONS[group.position])

    def rel(self, group: Optional[ObjectGroup], p: float = 0.7) -> str:
        """Optional relation to a line feature or the pier, with a space."""
        if group is not None and group.on_line == 'river':
            return ' ' + self.pick(('on the river', 'on a river'))
        options = [ln.kind for ln in self.scene.lines]
        if self.scene.pier_side is not None:
            options.append('pier')
        if not options or not self.chance(p):
            return ''
        kind = self.pick(options)
        return ' ' + self.pick(_PIER if kind == 'pier' else _LINE_REL[kind])

    def extras(self, groups: Sequence[ObjectGroup]) -> str:
        parts = [self.objects(g) for g in groups]
        if len(parts) == 1:
            return parts[0]
        return ', '.join(parts[:-1]) + ' and ' + parts[-1]

    # -- background and scene ---------------------------------------------
    def bg_on(self) -> str:
        return self.pick(_BG_ON[self.scene.background])

    def place(self, group: ObjectGroup) -> str:
        """Where a group sits: the background, or the river it is on."""
        if group.on_line == 'river':
            river = self.pick(
                ('on a river', 'on the blue river', 'on a winding river'))
            verb = self.pick(('flows through', 'crosses'))
            return f'{river} that {verb} {self.bg_noun()}'
        return self.bg_on()

    def bg_noun(self) -> str:
        return self.pick(_BG_NOUN[self.scene.background])

    def class_noun(self) -> str:
        return self.pick(_CLASS_NOUN[self.scene.scene_class])

    def line_clause(self) -> str:
        """``a winding river flows across the image diagonally``."""
        line = self.pick(self.scene.lines)
        text = f'{self.pick(_LINE_NOUN[line.kind])} ' \
               f'{self.pick(_LINE_VERB[line.kind])}'
        if self.chance(0.6):
            text += ' ' + self.pick(_DIRECTION[line.direction])
        return text

    def line_with(self) -> str:
        """Optional ``with a road running through it`` tail (or '')."""
        if not self.scene.lines:
            return ''
        line = self.pick(self.scene.lines)
        noun = self.pick(_LINE_NOUN[line.kind])
        return self.pick(
            (f' with {noun} running through it', f' crossed by {noun}'))


def _cap(text: str) -> str:
    text = ' '.join(text.split())
    text = text[0].upper() + text[1:]
    return text if text.endswith('.') else text + '.'


Template = Callable[[_Writer], str]


def _object_templates(p: ObjectGroup, others: List[ObjectGroup],
                      scene: Scene) -> Dict[str, List[Template]]:
    """Templates of scenes with objects, by role (bg / cls / extra / any)."""
    has_lines = bool(scene.lines)

    def t_pos_rel(w):
        return f'{w.objects(p)} {w.be(p)} {w.pos(p)}{w.rel(p)}'

    def t_there(w):
        return f'there {w.be(p)} {w.objects(p)} {w.pos(p)} {w.place(p)}'

    def t_verb_bg(w):
        rel = '' if p.on_line else w.rel(p, 0.5)
        return f'{w.objects(p)} {w.verb(p)} {w.place(p)}{rel}'

    def t_bg_with(w):
        return f'{w.bg_noun()} with {w.objects(p)} {w.pos(p)}'

    def t_class_with(w):
        return f'{w.class_noun()} with {w.objects(p)} {w.pos(p)}{w.rel(p)}'

    def t_see(w):
        return f'we can see {w.objects(p)} {w.pos(p)} in {w.class_noun()}'

    def t_this_is(w):
        return f'this is {w.class_noun()} where {w.objects(p)} ' \
               f'{w.verb(p)} {w.pos(p)}'

    def t_pos_first(w):
        pos = w.pos(p)
        return f'{pos}, {w.objects(p)} {w.verb(p)}{w.rel(p)}'

    def t_aerial(w):
        return f'an aerial image of {w.objects(p)} {w.place(p)}'

    def t_extra(w):
        if p.on_line or scene.pier_side is not None:
            # not everything stands on the background: stay vague
            return f'{w.extras([p] + others)} can be seen in ' \
                   f'{w.class_noun()}'
        return f'{w.extras([p] + others)} are {w.bg_on()}'

    def t_extra_near(w):
        return f'{w.class_noun()} with {w.objects(p)} {w.pos(p)} and ' \
               f'{w.extras(others)} nearby'

    def t_line(w):
        return f'{w.line_clause()}, and {w.objects(p)} {w.verb(p)} ' \
               f'{w.pos(p)}'

    roles = dict(
        bg=[t_there, t_verb_bg, t_bg_with, t_aerial],
        cls=[t_class_with, t_see, t_this_is],
        extra=[t_extra, t_extra_near] if others else [],
        any=[t_pos_rel, t_pos_first] + ([t_line] if has_lines else []))
    return roles


def _landcover_templates(scene: Scene) -> Dict[str, List[Template]]:
    """Templates of scenes without objects."""

    def t_class(w):
        if scene.lines:
            return f'{w.class_noun()}{w.line_with()}'
        return f'a top down view of {w.class_noun()}'

    def t_this_is(w):
        return f'this is {w.class_noun()} with {w.bg_noun()}{w.line_with()}'

    def t_covers(w):
        tail = f', and {w.line_clause()}' if scene.lines else ''
        return f'the whole image is covered by {w.bg_noun()}{tail}'

    def t_aerial(w):
        return f'an aerial view of {w.bg_noun()}{w.line_with()}'

    def t_see(w):
        return f'we can see {w.bg_noun()} in this image{w.line_with()}'

    def t_most(w):
        return f'most of the scene is covered by {w.bg_noun()}' \
               f'{w.line_with()}'

    def t_line(w):
        return f'{w.line_clause()} in {w.class_noun()}'

    def t_there(w):
        return f'there is {w.pick(_LINE_NOUN[w.scene.lines[0].kind])} ' \
               f'{w.bg_on()}'

    def t_only(w):
        return f'nothing but {w.bg_noun()} can be seen here'

    def t_large(w):
        return f'a large area of {w.bg_noun()}'

    lines = [t_line, t_there] if scene.lines else [t_only, t_large]
    return dict(
        bg=[t_covers, t_aerial, t_see, t_most],
        cls=[t_class, t_this_is],
        extra=[],
        any=lines)


def write_captions(scene: Scene,
                   rng: np.random.Generator,
                   num_captions: int = 5) -> List[str]:
    """Write distinct captions for a scene.

    Args:
        scene (Scene): The scene the captions describe.
        rng (numpy.random.Generator): Source of randomness.
        num_captions (int): How many captions. Defaults to 5.

    Returns:
        list[str]: ``num_captions`` distinct sentences, each capitalised and
        ending with a full stop.
    """
    writer = _Writer(scene, rng)
    primary = scene.groups[0] if scene.groups else None
    if primary is not None:
        roles = _object_templates(primary, scene.groups[1:], scene)
    else:
        roles = _landcover_templates(scene)
    # required roles first, then the rest in random order
    chosen: List[Template] = []
    for role in ('bg', 'cls', 'extra'):
        if roles[role]:
            chosen.append(writer.pick(roles[role]))
    pool = [t for ts in roles.values() for t in ts if t not in chosen]
    order = rng.permutation(len(pool))
    chosen += [pool[i] for i in order]

    captions: List[str] = []
    for attempt in range(20):
        for template in chosen:
            if len(captions) == num_captions:
                return captions
            text = _cap(template(writer))
            if text not in captions:
                captions.append(text)
        if len(captions) == num_captions:
            return captions
    raise RuntimeError(
        f'could not write {num_captions} distinct captions for a '
        f'{scene.scene_class} scene')
