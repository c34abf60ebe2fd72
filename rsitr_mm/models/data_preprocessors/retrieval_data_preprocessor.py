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
from mmpretrain.models.utils import MultiModalDataPreprocessor
from mmpretrain.registry import MODELS


@MODELS.register_module()
class RetrievalDataPreprocessor(MultiModalDataPreprocessor):
    """``MultiModalDataPreprocessor`` that moves only the images (and the
    prepared batch tensors).

    Same arguments and outputs (``dict(images=(B, 3, H, W) float,
    data_samples=...)``, plus ``text_data`` when the batch has it); the
    ``data_samples`` are returned as given (on the host) instead of being
    copied to the device one by one.
    """

    #: ``text_data`` entries kept on the host
    HOST_KEYS = ('lengths', )

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
