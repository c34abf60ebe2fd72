# Copyright (c) rsitr_mm contributors. All rights reserved.
"""mmpretrain's multimodal data preprocessor, data samples left on the host.

``MultiModalDataPreprocessor`` moves the whole batch to the device through
mmengine's ``cast_data``, one ``DataSample.to(device)`` per sample: for a
batch of 128 that is 128 new sample objects and 128 separate host-to-device
copies of one-element ``gt_label`` tensors from pageable memory, about 15
copies per millisecond of host time on an H200 machine
(docs/benchmarks.md). The retrievers read what they need from the samples
(``image_id``, ``gt_label``, captions) into one tensor per field and copy
that once, so the samples can stay where the dataloader put them.

The batch tensors the data pipeline prepared (``data['text_data']``: token
ids, masks, ids, labels, OSFCM targets; see
:mod:`rsitr_mm.datasets.transforms.caption_data`) are pinned by the data
loader and copied here with ``non_blocking=True``; ``lengths`` stays on
the host (``pack_padded_sequence`` reads it there).
"""
import math
import numbers
from typing import Any, Optional, Sequence

from mmpretrain.models.utils import MultiModalDataPreprocessor
from mmpretrain.registry import MODELS


def check_mean_std(mean: Any, std: Any, owner: str) -> None:
    """Refuse normalisation values that give NaN or wrong shapes.

    Args:
        mean, std: the ``mean`` / ``std`` of a data preprocessor (``None``
            when it does not normalise).
        owner (str): who holds them, for the message.

    Raises:
        ValueError: not 1 or 3 values, different lengths, a non-finite
            value, or a ``std`` that is not > 0.
    """
    if mean is None and std is None:
        return
    values = {}
    for name, value in (('mean', mean), ('std', std)):
        if value is None:
            raise ValueError(
                f'{owner}: config key {name!r} is None but the other is '
                'set; give both (1 or 3 values) or neither')
        seq = list(value) if isinstance(value, (list, tuple)) else [value]
        if len(seq) not in (1, 3) or not all(
                isinstance(v, numbers.Real) and not isinstance(v, bool)
                and math.isfinite(float(v)) for v in seq):
            raise ValueError(
                f'{owner}: config key {name!r} must be 1 or 3 finite '
                f'numbers (one per image channel), got {value!r}')
        values[name] = seq
    if len(values['mean']) != len(values['std']):
        raise ValueError(
            f'{owner}: config key \'mean\' has {len(values["mean"])} '
            f'values and \'std\' {len(values["std"])}; give the same '
            'number (1 or 3)')
    if any(float(v) <= 0 for v in values['std']):
        raise ValueError(
            f'{owner}: config key \'std\' must be > 0 for every channel, '
            f'got {std!r} (a zero std divides by zero and trains NaN)')


@MODELS.register_module()
class RetrievalDataPreprocessor(MultiModalDataPreprocessor):
    """``MultiModalDataPreprocessor`` that moves only the images (and the
    prepared batch tensors).

    Same arguments and outputs (``dict(images=(B, 3, H, W) float,
    data_samples=...)``, plus ``text_data`` when the batch has it); the
    ``data_samples`` are returned as given (on the host) instead of being
    copied to the device one by one. ``mean`` and ``std`` are checked when
    it is built (see :func:`check_mean_std`).
    """

    #: ``text_data`` entries kept on the host: the caption lengths (for
    #: packing) and OSFCM's prior-row indices (the head reads them on the
    #: host to skip a prototype update that would change nothing, and
    #: moves them itself, without blocking)
    HOST_KEYS = ('lengths', 'osfcm_prior_index')

    def __init__(self,
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 pad_size_divisor: int = 1,
                 pad_value: float = 0,
                 to_rgb: bool = False) -> None:
        check_mean_std(mean, std, type(self).__name__)
        super().__init__(mean, std, pad_size_divisor, pad_value, to_rgb)

    def forward(self, data: dict, training: bool = False) -> dict:
        """Images as mmpretrain does; ``text_data`` moved without
        blocking (see the module doc)."""
        if not (isinstance(data, dict) and 'text_data' in data):
            return super().forward(data, training)
        data = dict(data)
        text_data = data.pop('text_data')
        out = super().forward(data, training)
        out['text_data'] = {
            k: v if k in self.HOST_KEYS else v.to(
                self.device, non_blocking=True)
            for k, v in text_data.items()
        }
        return out

    def cast_data(self, data):
        """Move everything but ``data_samples`` to the device."""
        if isinstance(data, dict) and 'data_samples' in data:
            samples = data['data_samples']
            moved = super().cast_data(
                {k: v for k, v in data.items() if k != 'data_samples'})
            moved['data_samples'] = samples
            return moved
        return super().cast_data(data)
