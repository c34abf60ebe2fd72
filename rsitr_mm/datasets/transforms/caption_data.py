# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Text work of a training step done in the data pipeline.

:class:`PrepareCaptionData` runs after ``PackInputs`` in the training
pipeline, i.e. in the data-loader workers. It holds *preparers*, small
picklable objects handed out by the model (no weights):

* the text encoder's caption tokenizer (CLIP BPE, BERT WordPiece or the
  BiGRU vocabulary, :mod:`rsitr_mm.models.utils.caption_tokens`):
  ``input_ids``;
* the OSFCM head's targets (:class:`~rsitr_mm.models.heads.noun_targets.
  OSFCMSampleTargets`): the prior row of the image and the caption's
  noun target;
* :class:`SampleIds`: ``image_id`` and the scene label.

Each preparer has ``prepare_sample(sample) -> dict`` (per sample, stored in
the sample's ``caption_data`` field) and ``collate_samples(items) -> dict
of tensors``; :class:`CaptionDataCollate` wraps the loader's collate
function, pads and stacks those fields per batch (in the workers too) and
puts them in ``data['text_data']``, which the data loader pins and
:class:`~rsitr_mm.models.data_preprocessors.RetrievalDataPreprocessor`
copies to the device without blocking.

Who fills the preparers: the BiGRU vocabulary and the OSFCM priors are
built from the training dataset at run start and may be replaced by a
resumed checkpoint, so the preparers cannot be configured in the dataset
config. :class:`~rsitr_mm.engine.hooks.TrainDataToModelHook` asks the
model for them in ``before_train`` (after the vocabulary/priors were built
and a checkpoint was loaded, before the workers start) and appends a
:class:`PrepareCaptionData` to the training pipeline (or fills the one a
config placed there itself) and wraps the collate function. Without the
hook the model tokenises the captions itself (the same function).
"""
from typing import Callable, Dict, List, Sequence

import torch
from mmcv.transforms import BaseTransform
from mmpretrain.registry import TRANSFORMS

FIELD = 'caption_data'


def _first_int(value, default: int) -> int:
    if isinstance(value, torch.Tensor):
        value = value.reshape(-1)[:1].tolist()
    if isinstance(value, (list, tuple)):
        value = value[0] if len(value) else None
    return default if value is None else int(value)


class SampleIds:
    """``image_ids`` (the sample's ``image_id``; its batch position when
    missing) and ``labels`` (``gt_label``; -1 when missing)."""

    def prepare_sample(self, sample) -> Dict[str, int]:
        return dict(image_id=_first_int(getattr(sample, 'image_id', None),
                                        -1),
                    has_image_id=getattr(sample, 'image_id', None)
                    is not None,
                    label=_first_int(getattr(sample, 'gt_label', None), -1))

    def collate_samples(self, items: Sequence[dict]
                        ) -> Dict[str, torch.Tensor]:
        ids = [it['image_id'] if it['has_image_id'] else i
               for i, it in enumerate(items)]
        return dict(image_ids=torch.tensor(ids, dtype=torch.long),
                    labels=torch.tensor([it['label'] for it in items],
                                        dtype=torch.long))


@TRANSFORMS.register_module()
class PrepareCaptionData(BaseTransform):
    """Per-sample text data of a training sample (see the module doc).

    Goes after ``PackInputs``; a sample whose ``text`` is not one caption
    string (test-mode samples carry a list) is left unchanged.

    Args:
        preparers (Sequence): Objects with ``prepare_sample`` and
            ``collate_samples``. Defaults to none (filled by
            :class:`~rsitr_mm.engine.hooks.TrainDataToModelHook`).
    """

    def __init__(self, preparers: Sequence = ()) -> None:
        self.preparers: List = list(preparers)

    def transform(self, results: dict) -> dict:
        sample = results.get('data_samples') if isinstance(results,
                                                           dict) else None
        if sample is None:
            raise ValueError(
                'PrepareCaptionData must come after PackInputs in the '
                'pipeline (it reads results["data_samples"]); got keys '
                f'{sorted(results) if isinstance(results, dict) else results}'
                '.')
        if not self.preparers or not isinstance(
                getattr(sample, 'text', None), str):
            return results
        fields: Dict = {}
        for preparer in self.preparers:
            fields.update(preparer.prepare_sample(sample))
        sample.set_field(fields, FIELD)
        return results

    def collate(self, samples: Sequence) -> Dict[str, torch.Tensor]:
        """Batch tensors of prepared samples (their ``caption_data`` field
        is removed, so it is not sent to the main process twice)."""
        items = [getattr(s, FIELD) for s in samples]
        for s in samples:
            delattr(s, FIELD)
        out: Dict[str, torch.Tensor] = {}
        for preparer in self.preparers:
            out.update(preparer.collate_samples(items))
        return out

    def __repr__(self) -> str:
        names = ', '.join(type(p).__name__ for p in self.preparers)
        return f'{type(self).__name__}(preparers=[{names}])'


class CaptionDataCollate:
    """Wrap a collate function: after it, the prepared fields of the
    samples become ``data['text_data']`` (tensors, host).

    Args:
        collate_fn (Callable): The loader's collate function.
        prepare (PrepareCaptionData): The pipeline's transform.
    """

    def __init__(self, collate_fn: Callable,
                 prepare: PrepareCaptionData) -> None:
        self.collate_fn = collate_fn
        self.prepare = prepare

    def __call__(self, batch):
        data = self.collate_fn(batch)
        samples = data.get('data_samples') if isinstance(data, dict) else None
        if samples and all(hasattr(s, FIELD) for s in samples):
            data['text_data'] = self.prepare.collate(samples)
        return data
