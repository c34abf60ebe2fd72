# Copyright (c) rsitr_mm contributors. All rights reserved.
"""The collate function of the shipped dataloaders, in the rsitr_mm scope.

A config that inherits ours from the installed package
(``_base_ = 'rsitr_mm::_base_/datasets/rsitmd.py'``) gets every dict with a
``type`` marked ``_scope_='rsitr_mm'`` by mmengine, the dataloaders'
``collate_fn`` included. mmengine's Runner passes the keys of ``collate_fn``
other than ``type`` to the function as keyword arguments, so
``default_collate`` would fail with ``unexpected keyword argument
'_scope_'``. The shipped configs therefore name
``rsitr_mm.default_collate``: mmengine's ``default_collate``, taking (and
ignoring) that scope mark, which names the files of a batch of mixed image
sizes.
"""
from typing import Any, Optional, Sequence

from ..registry import FUNCTIONS

#: what the shipped dataloaders write: ``collate_fn=dict(type=...)``
COLLATE_TYPE = 'rsitr_mm.default_collate'


@FUNCTIONS.register_module(name='default_collate')
def scoped_default_collate(data_batch: Sequence[Any],
                           _scope_: Optional[str] = None) -> Any:
    """mmengine's ``default_collate`` (stacks the samples' tensors).

    Args:
        data_batch (Sequence): the samples of one batch.
        _scope_ (str, optional): the registry scope mmengine writes into
            configs inherited through ``rsitr_mm::``; not used.

    Returns:
        Any: the collated batch, as ``mmengine.dataset.default_collate``.

    Raises:
        ValueError: images of several sizes in one batch, naming the odd
            files (:func:`rsitr_mm.engine.collate.default_collate`).
    """
    from ..engine.collate import default_collate as _checked_collate
    return _checked_collate(data_batch)
