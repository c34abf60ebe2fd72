# Copyright (c) rsitr_mm contributors. All rights reserved.
"""mmengine's ``default_collate`` that names the images of a mixed batch.

Without a resize step in the pipeline, one image of another size makes
``torch.stack`` fail inside the data loader with "stack expects each tensor
to be equal size", naming no file (and, in a validation set, only after a
whole training epoch). This module registers, under mmengine's own name
``default_collate`` (the ``collate_fn`` of every shipped config), a function
with the same result that turns that failure into one ``ValueError`` naming
the files whose size differs from the rest of the batch.
"""
from collections import Counter
from typing import Any, List, Optional, Sequence, Tuple

from mmengine.dataset.utils import default_collate as _mmengine_collate
from mmengine.registry import FUNCTIONS


def _image_shapes(batch: Sequence) -> Optional[List[Tuple[str, tuple]]]:
    """``(file, shape)`` of each sample's image, or None if not images."""
    shapes = []
    for i, item in enumerate(batch):
        inputs = item.get('inputs') if isinstance(item, dict) else None
        if not hasattr(inputs, 'shape'):
            return None
        sample = item.get('data_samples')
        meta = getattr(sample, 'metainfo', None) or {}
        name = meta.get('img_path') or meta.get('filename') or \
            f'sample {i} of the batch'
        shapes.append((str(name), tuple(inputs.shape)))
    return shapes


@FUNCTIONS.register_module(name='default_collate', force=True)
def default_collate(data_batch: Sequence) -> Any:
    """``mmengine.dataset.default_collate``; a batch of images of several
    sizes raises ``ValueError`` naming the odd ones (up to 5)."""
    try:
        return _mmengine_collate(data_batch)
    except RuntimeError as err:
        shapes = _image_shapes(data_batch)
        if not shapes or len({s for _, s in shapes}) < 2:
            raise
        common = Counter(s for _, s in shapes).most_common(1)[0][0]
        odd = [(n, s) for n, s in shapes if s != common]
        listed = '; '.join(f'{n!r} is {s}' for n, s in odd[:5])
        more = f' and {len(odd) - 5} more' if len(odd) > 5 else ''
        raise ValueError(
            f'images of different sizes in one batch: {listed}{more}, the '
            f'others {common} (channels, height, width). Add a resize step '
            "to the pipeline (e.g. dict(type='Resize', scale=(224, 224))) "
            'or make the images one size') from err
