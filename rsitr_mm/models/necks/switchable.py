# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Runtime switches of the added modules (DAPN, BSD, LSD, OSFCM).

Every module that SSJDN / OSDPM add on top of a plain dual encoder is built
as ``base + branch``: with its branch switched off it returns exactly what
the base model (plain CLIP, plain pooled backbone, identity head) returns,
on the same weights. :class:`SwitchableMixin` gives those modules one
uniform runtime switch::

    with neck.disable('clues'):          # BSD without its clues
        feats = model.image_features(images)
    neck.enabled('clues')                # -> True again

``SWITCHES`` lists the part names a module accepts; the analysis tool
(``tools/analysis_tools/module_contribution.py``) maps user-facing names
(``'dapn'``, ``'bsd_clues'``, ...) onto them. Switches are not saved in
checkpoints and are meant for evaluation; they work in training too.
"""
from contextlib import contextmanager
from typing import Iterator, Tuple


class SwitchableMixin:
    """Mixin adding ``disable(*parts)`` / ``enabled(part)`` to a module.

    Subclasses set the class attribute ``SWITCHES`` (tuple of part names).
    """

    SWITCHES: Tuple[str, ...] = ()

    def _disabled_parts(self) -> set:
        # created lazily so that subclasses need no __init__ call
        if '_switch_off' not in self.__dict__:
            self.__dict__['_switch_off'] = set()
        return self.__dict__['_switch_off']

    def enabled(self, part: str) -> bool:
        """Whether ``part`` is currently switched on."""
        return part not in self._disabled_parts()

    @property
    def enabled_parts(self) -> Tuple[str, ...]:
        """The parts of ``SWITCHES`` currently switched on."""
        return tuple(p for p in self.SWITCHES if self.enabled(p))

    @contextmanager
    def disable(self, *parts: str) -> Iterator[None]:
        """Switch ``parts`` off inside the ``with`` block.

        Raises:
            ValueError: if a part is not one of ``SWITCHES``.
        """
        bad = [p for p in parts if p not in self.SWITCHES]
        if bad:
            raise ValueError(f'{type(self).__name__}.disable: unknown part(s) '
                             f'{bad}; expected any of {self.SWITCHES}.')
        off = self._disabled_parts()
        before = set(off)
        off.update(parts)
        try:
            yield
        finally:
            off.clear()
            off.update(before)
