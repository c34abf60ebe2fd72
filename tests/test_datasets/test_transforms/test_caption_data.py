# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Text work in the data pipeline: PrepareCaptionData + CaptionDataCollate.

The training forward fed the pipeline's tensors gives the losses of the
string path (same weights, same batch), and works with every tokeniser and
OSFCM's caption-noun extraction made unavailable to the model.
"""
import copy
import json
import pickle

import numpy as np
import pytest
import torch
from mmengine.dataset import default_collate
from mmengine.registry import init_default_scope
from mmpretrain.datasets.transforms import PackInputs
from mmpretrain.registry import MODELS

import rsitr_mm  # noqa: F401
from rsitr_mm.datasets.transforms import (CaptionDataCollate,
                                          PrepareCaptionData)
from rsitr_mm.models.utils import make_tiny_clip_dir

CAPTIONS = [
    'two ships in a harbor near a road',
    'a green river with trees',
    'many cars on a road beside buildings',
    'ships',
    'an empty field',
    'a river, a road and a bridge with many cars',
]
FILES = ['1.tif', '2.tif', '3.tif', '1.tif', 'unknown.tif', '2.tif']


@pytest.fixture(scope='module')
def ann_file(tmp_path_factory):
    root = tmp_path_factory.mktemp('ann')
    captions = {'1.tif': 'ships in a harbor|two ships|a ship',
                '2.tif': 'a river and trees|a road|trees',
                '3.tif': 'cars on a road|buildings|a car'}
    images = []
    for name, caps in captions.items():
        sentences = [dict(raw=c) for c in caps.split('|')]
        images.append(dict(filename=name, split='train',
                           sentences=sentences))
    path = root / 'ann.json'
    path.write_text(json.dumps(dict(images=images)))
    return str(path)


@pytest.fixture(scope='module')
def clip_dir(tmp_path_factory):
    return make_tiny_clip_dir(str(tmp_path_factory.mktemp('tiny_clip')))


def _text_encoder(kind, ann_file, clip_dir):
    if kind == 'bigru':
        return dict(type='BiGRUTextEncoder', ann_files=[ann_file],
                    word_dim=8, hidden_dim=16)
    from rsitr_mm.models.utils import tiny_clip_config
    return dict(type='CLIPTextEncoder',
                config=tiny_clip_config().to_dict(), tokenizer=clip_dir)


def _model(kind, ann_file, clip_dir):
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    return MODELS.build(dict(
        type='DualEncoderRetriever',
        image_encoder=dict(type='TinyCNN', base_channels=8, num_stages=2,
                           out_indices=(1, )),
        text_encoder=_text_encoder(kind, ann_file, clip_dir),
        embed_dim=16,
        # the caption-side term (opt-in) so that its targets are covered
        heads=[dict(type='ObjectSemanticClusterHead', embed_dim=16,
                    ann_file=ann_file, top_k=8, warmup_iters=0,
                    text_weight=0.5)]))


def _packed(preparers):
    pack = PackInputs(algorithm_keys=['text', 'image_id'],
                      meta_keys=['img_path'])
    prepare = PrepareCaptionData(preparers)
    rng = np.random.default_rng(0)
    out = []
    for i, (cap, name) in enumerate(zip(CAPTIONS, FILES)):
        results = dict(img=rng.integers(0, 255, (16, 16, 3), np.uint8),
                       text=cap, image_id=i // 2, gt_label=i % 3,
                       img_path=f'data/images/{name}')
        out.append(prepare(pack(results)))
    return CaptionDataCollate(default_collate, prepare)(out)


@pytest.mark.parametrize('kind', ['bigru', 'clip'])
def test_forward_on_pipeline_tensors_matches_strings(kind, ann_file,
                                                     clip_dir, monkeypatch):
    model = _model(kind, ann_file, clip_dir).train()
    reference = copy.deepcopy(model)
    preparers = model.caption_data_preparers()
    # the workers get the preparers by pickling (spawn) or forking
    preparers = pickle.loads(pickle.dumps(preparers))
    batch = _packed(preparers)
    text_data = batch['text_data']
    assert text_data['input_ids'].shape[1] % 8 == 0
    assert text_data['image_ids'].tolist() == [0, 0, 1, 1, 2, 2]
    assert text_data['osfcm_prior_index'][4] == -1  # unknown image
    assert text_data['osfcm_caption_target'].shape == (
        6, model.heads[0].num_prototypes)
    assert all(not hasattr(s, 'caption_data')
               for s in batch['data_samples'])

    # string path (the reference model) on the same batch
    ref_data = reference.data_preprocessor(
        dict(inputs=batch['inputs'], data_samples=batch['data_samples']),
        True)
    expected = reference(**ref_data, mode='loss')

    # no tokenizer, vocabulary or noun extraction left to the model
    def unavailable(*args, **kwargs):
        raise AssertionError('the training forward tokenised a caption')

    from rsitr_mm.models.heads import noun_targets, osfcm_head
    from rsitr_mm.models.utils import caption_tokens
    for module in (caption_tokens, ):
        monkeypatch.setattr(module, 'tokenize_captions', unavailable)
    monkeypatch.setattr(noun_targets.CaptionNounTargets, '__call__',
                        unavailable)
    monkeypatch.setattr(noun_targets, 'extract_object_nouns', unavailable)
    monkeypatch.setattr(osfcm_head.ObjectSemanticClusterHead, 'get_priors',
                        unavailable)
    enc = model.text_encoder
    if kind == 'clip':
        enc.tokenizer = None
    else:
        enc.vocab = None
    monkeypatch.setattr(type(enc), 'tokenize', unavailable, raising=False)
    monkeypatch.setattr(type(enc), 'encode_ids', unavailable, raising=False)

    data = model.data_preprocessor(batch, True)
    assert set(data) == {'images', 'data_samples', 'text_data'}
    # the samples could even lose their captions
    for s in data['data_samples']:
        del s.text
    got = model(**data, mode='loss')
    assert set(got) == set(expected)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-5,
                                   atol=1e-6)


def test_prepare_needs_packinputs_and_skips_test_samples(ann_file):
    from mmpretrain.structures import DataSample
    prepare = PrepareCaptionData([object()])
    with pytest.raises(ValueError, match='after PackInputs'):
        prepare(dict(text='a road'))
    sample = DataSample()
    sample.set_field(['a road', 'a car'], 'text')
    out = prepare(dict(inputs=None, data_samples=sample))
    assert not hasattr(out['data_samples'], 'caption_data')
