# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Range checks for config values, called at the top of constructors.

``embed_dim=0`` or a negative margin train with zero gradient and exit 0,
``temperature=nan`` trains NaNs: such values are refused when the module is
built, with the class, the config key, the value and what was expected::

    check_values('TripletRankingLoss', margin=(margin, '>=0'),
                 loss_weight=(loss_weight, '>=0'))

Specs (every spec also requires a finite real number; ``None`` values are
skipped, so optional arguments need no special case):

==========  ===================================
``int>=1``  an integer >= 1 (``bool`` refused)
``int>=0``  an integer >= 0
``>0``      a number > 0
``>=0``     a number >= 0
``(0,1)``   a number strictly between 0 and 1
``[0,1]``   a number in [0, 1]
``[0,1)``   a number in [0, 1)
``(0,1]``   a number in (0, 1]
``finite``  any finite number
==========  ===================================
"""
import math
import numbers
from typing import Any, Tuple

__all__ = ['check_value', 'check_values']

_INTERVALS = {
    '(0,1)': (0, 1, False, False),
    '[0,1]': (0, 1, True, True),
    '[0,1)': (0, 1, True, False),
    '(0,1]': (0, 1, False, True),
}

_WORDS = {
    'int>=1': 'an integer >= 1',
    'int>=0': 'an integer >= 0',
    '>0': 'a finite number > 0',
    '>=0': 'a finite number >= 0',
    'finite': 'a finite number',
}


def _expected(spec: str) -> str:
    if spec in _WORDS:
        return _WORDS[spec]
    if spec in _INTERVALS:
        return f'a number in {spec}'
    raise KeyError(f'unknown range spec {spec!r}')


def _ok(value: Any, spec: str) -> bool:
    if spec.startswith('int'):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            return False
        return value >= int(spec[-1])
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    value = float(value)
    if not math.isfinite(value):
        return False
    if spec == 'finite':
        return True
    if spec == '>0':
        return value > 0
    if spec == '>=0':
        return value >= 0
    low, high, low_in, high_in = _INTERVALS[spec]
    return ((value >= low if low_in else value > low)
            and (value <= high if high_in else value < high))


def check_value(owner: str, key: str, value: Any, spec: str) -> None:
    """Raise ``ValueError`` unless ``value`` satisfies ``spec``.

    Args:
        owner (str): the module (class name) whose config holds ``key``.
        key (str): the config key.
        value: its value (``None`` passes: optional arguments).
        spec (str): the range, see the module doc.
    """
    if value is None:
        return
    expected = _expected(spec)
    if not _ok(value, spec):
        raise ValueError(
            f'{owner}: config key {key!r} must be {expected}, got '
            f'{value!r}')


def check_values(owner: str, **checks: Tuple[Any, str]) -> None:
    """:func:`check_value` for several ``key=(value, spec)`` pairs."""
    for key, (value, spec) in checks.items():
        check_value(owner, key, value, spec)
