# Copyright (c) rsitr_mm contributors. All rights reserved.
import pytest
import torch
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import rsitr_mm  # noqa: F401
from rsitr_mm.models.retrievers.dual_encoder import DualEncoderRetriever
from rsitr_mm.datasets.vocab import Vocabulary

CAPTIONS = [
    'two white storage tanks beside a road',
    'a green forest next to a river',
    'three planes on a grey runway',
    'many red buildings in a dense residential area',
]


def _model(tmp_path, **kwargs):
    init_default_scope('mmpretrain')
    vocab = str(tmp_path / 'vocab.json')
    Vocabulary.build(CAPTIONS).save(vocab)
    cfg = dict(
        type='DualEncoderRetriever',
        image_encoder=dict(type='TinyCNN', base_channels=8, num_stages=2,
                           out_indices=(1, )),
        text_encoder=dict(type='BiGRUTextEncoder', vocab_file=vocab,
                          word_dim=8, hidden_dim=16),
        embed_dim=12)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def _samples(test_mode=False):
    samples = []
    for i, cap in enumerate(CAPTIONS):
        s = DataSample().set_gt_label(i % 2)
        s.set_field([cap, cap + ' again'] if test_mode else cap, 'text')
        s.set_field(i, 'image_id')
        if test_mode:
            s.set_field([2 * i, 2 * i + 1], 'gt_text_id')
            s.set_field([i, i], 'gt_image_id')
        samples.append(s)
    return samples


def test_extract_feat_is_normalised_and_ordered(tmp_path):
    model = _model(tmp_path).eval()
    images = torch.randn(4, 3, 16, 16)
    feats = model.extract_feat(images, _samples(test_mode=True))
    assert feats['image_feat'].shape == (4, 12)
    assert feats['text_feat'].shape == (8, 12)  # 2 captions each, in order
    assert torch.allclose(feats['text_feat'].norm(dim=-1), torch.ones(8))
    only_text = model.extract_feat(None, _samples())
    assert set(only_text) == {'text_feat'}
    torch.testing.assert_close(only_text['text_feat'][1],
                               feats['text_feat'][2])
    sim = model.compute_similarity(feats['image_feat'], feats['text_feat'])
    assert sim.shape == (4, 8) and sim.abs().max() <= 1 + 1e-5


def test_predict_and_predict_all(tmp_path):
    model = _model(tmp_path).eval()
    images = torch.randn(4, 3, 16, 16)
    samples = model.predict(images, _samples(test_mode=True))
    assert samples[2].image_feat.shape == (12, )
    assert samples[2].text_feat.shape == (2, 12)
    feats = model.extract_feat(images, _samples(test_mode=True))
    i2t, t2i = model.predict_all(feats, _samples(test_mode=True),
                                 num_images=4, num_texts=8)
    full = feats['image_feat'] @ feats['text_feat'].t()
    assert len(i2t) == 4 and len(t2i) == 8
    torch.testing.assert_close(i2t[1].pred_score, full[1])
    torch.testing.assert_close(t2i[3].pred_score, full[:, 3])
    assert int(t2i[3].gt_label) == 1


def test_loss_uses_image_ids_and_labels(tmp_path):
    model = _model(tmp_path,
                   losses=[dict(type='MultiPositiveInfoNCELoss'),
                           dict(type='TripletRankingLoss')])
    losses = model(torch.randn(4, 3, 16, 16), _samples(), mode='loss')
    assert set(losses) == {'loss_infonce', 'loss_triplet'}
    sum(losses.values()).backward()
    assert model.logit_scale.grad is not None
    with pytest.raises(ValueError, match='one caption string'):
        model.loss(torch.randn(4, 3, 16, 16), _samples(test_mode=True))


def test_frozen_encoder_and_bad_projection(tmp_path):
    model = _model(tmp_path, freeze_image_encoder=True).train()
    assert not any(p.requires_grad for p in model.image_encoder.parameters())
    assert not model.image_encoder.training and model.text_encoder.training
    with pytest.raises(ValueError, match='identity'):
        _model(tmp_path, image_proj='identity')
    with pytest.raises(ValueError, match='"linear", "mlp" or "identity"'):
        _model(tmp_path, text_proj='conv')
    with pytest.raises(ValueError, match='temperature'):
        _model(tmp_path, temperature=0)


def _unused(model):
    return [n for n, p in model.named_parameters()
            if p.requires_grad and p.grad is None]


@pytest.mark.parametrize('losses, has_scale', [
    ([dict(type='TripletRankingLoss')], False),
    ([dict(type='MultiPositiveInfoNCELoss', learnable=True)], False),
    ([dict(type='MultiPositiveInfoNCELoss')], True),
    ([dict(type='SemanticGuidedTripletLoss', semantic='label')], False),
])
def test_logit_scale_exists_only_when_a_loss_uses_it(tmp_path, losses,
                                                     has_scale):
    model = _model(tmp_path, losses=losses)
    assert (model.logit_scale is not None) == has_scale
    loss = model(torch.randn(4, 3, 16, 16), _samples(), mode='loss')
    sum(loss.values()).backward()
    assert _unused(model) == []  # strict DDP can train it


def test_old_checkpoint_with_logit_scale_loads(tmp_path):
    old = _model(tmp_path, losses=[dict(type='MultiPositiveInfoNCELoss')])
    state = old.state_dict()
    assert 'logit_scale' in state
    new = _model(tmp_path, losses=[dict(type='TripletRankingLoss')])
    new.load_state_dict(state, strict=True)  # the stale key is dropped
    torch.testing.assert_close(new.text_proj.weight, old.text_proj.weight)


def test_labels_are_built_once_and_given_to_heads(tmp_path):
    seen = {}

    class _Head(torch.nn.Module):

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(()))

        def loss(self, image_emb, text_emb, data_samples, labels=None):
            seen['labels'] = labels
            return dict(loss_head=self.w * image_emb.sum() * 0 + self.w)

    model = _model(tmp_path, heads=[_Head()],
                   losses=[dict(type='TripletRankingLoss')])
    samples = _samples()
    samples[3] = DataSample()  # no label, no image id
    samples[3].set_field(CAPTIONS[3], 'text')
    model.loss(torch.randn(4, 3, 16, 16), samples)
    assert seen['labels'].tolist() == [0, 1, 0, -1]
    assert seen['labels'].dtype == torch.long


def test_parse_losses_matches_mmengine():
    """The total and the log_vars equal mmengine's ``parse_losses``."""
    from mmengine.model import BaseModel
    losses = dict(loss_a=torch.tensor(1.5, requires_grad=True),
                  loss_b=torch.tensor([1.0, 3.0], requires_grad=True),
                  loss_c=[torch.tensor(0.25), torch.tensor([1.0, 2.0])],
                  acc=torch.tensor(0.9))
    mine, mine_vars = DualEncoderRetriever.parse_losses(None, losses)
    ref, ref_vars = BaseModel.parse_losses(None, losses)
    torch.testing.assert_close(mine, ref)
    assert list(mine_vars) == list(ref_vars)
    for key in ref_vars:
        torch.testing.assert_close(mine_vars[key], ref_vars[key])
    assert mine.requires_grad
