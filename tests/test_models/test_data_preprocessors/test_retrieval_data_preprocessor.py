# Copyright (c) rsitr_mm contributors. All rights reserved.
"""RetrievalDataPreprocessor: mmpretrain's output, samples left as given."""
import torch
from mmpretrain.models.utils import MultiModalDataPreprocessor
from mmpretrain.structures import DataSample

from rsitr_mm.models.data_preprocessors import RetrievalDataPreprocessor
from rsitr_mm.models.retrievers.dual_encoder import _first_values

ARGS = dict(mean=[122.8, 116.7, 104.1], std=[68.5, 66.6, 70.3],
            to_rgb=True)


def _batch():
    samples = [DataSample().set_gt_label(i % 3) for i in range(4)]
    for i, s in enumerate(samples):
        s.set_field(i // 2, 'image_id')
        s.set_field(f'caption {i}', 'text')
    imgs = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    return dict(inputs=imgs, data_samples=samples)


def test_same_images_and_untouched_samples(monkeypatch):
    batch = _batch()
    ref = MultiModalDataPreprocessor(**ARGS)(_batch() | dict(
        inputs=batch['inputs'].clone()), False)

    def no_copy(self, *args, **kwargs):
        raise AssertionError('a data sample was copied')

    monkeypatch.setattr(DataSample, 'to', no_copy)
    out = RetrievalDataPreprocessor(**ARGS)(batch, True)
    assert torch.equal(out['images'], ref['images'])
    assert out['images'].dtype == torch.float32
    assert all(a is b for a, b in zip(out['data_samples'],
                                      batch['data_samples']))


def test_without_samples():
    out = RetrievalDataPreprocessor(**ARGS)(
        dict(inputs=_batch()['inputs'], data_samples=None), False)
    assert out['data_samples'] is None
    assert out['images'].shape == (4, 3, 8, 8)


def test_labels_of_host_samples_gathered_once():
    samples = _batch()['data_samples']
    labels = _first_values([s.gt_label for s in samples], [-1] * 4,
                           torch.device('cpu'))
    assert labels.dtype == torch.long
    assert labels.tolist() == [0, 1, 2, 0]
    ids = _first_values([s.image_id for s in samples], range(4),
                        torch.device('cpu'))
    assert ids.tolist() == [0, 0, 1, 1]
