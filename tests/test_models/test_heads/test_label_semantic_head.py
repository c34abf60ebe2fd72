# Copyright (c) rsitr_mm contributors. All rights reserved.
import pytest
import torch
import torch.nn.functional as F

from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from rsitr_mm.models.heads import LabelSemanticHead


def _samples(labels):
    out = []
    for lab in labels:
        ds = DataSample()
        if lab is not None:
            ds.set_gt_label(lab)
        out.append(ds)
    return out


def _head(**kwargs):
    cfg = dict(
        type='LabelSemanticHead', in_channels=16, num_classes=5,
        semantic_dim=6)
    cfg.update(kwargs)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def test_unknown_labels_are_ignored():
    torch.manual_seed(0)
    head = _head(semantic_dim=6, decouple_weight=0.0, loss_weight_image=1.0,
                 loss_weight_text=1.0)
    img, txt = torch.randn(6, 16), torch.randn(6, 16)
    labels = [2, -1, 0, None, 4, 2]  # None: no gt_label at all
    losses = head.loss(img, txt, _samples(labels))
    known = torch.tensor([0, 2, 4, 5])
    target = torch.tensor([2, 0, 4, 2])
    exp_img = F.cross_entropy(head(img[known], 'image'), target)
    exp_txt = F.cross_entropy(head(txt[known], 'text'), target)
    torch.testing.assert_close(losses['loss_lsd_img'], exp_img)
    torch.testing.assert_close(losses['loss_lsd_txt'], exp_txt)
    assert losses['loss_lsd_orth'].item() == 0.0


def test_loss_weights_and_separate_classifiers():
    torch.manual_seed(0)
    head = _head(share_classifier=False, loss_weight_image=2.0,
                 loss_weight_text=0.5)
    assert head.cls_image is not head.cls_text
    img, txt = torch.randn(4, 16), torch.randn(4, 16)
    samples = _samples([0, 1, 2, 3])
    target = torch.tensor([0, 1, 2, 3])
    losses = head.loss(img, txt, samples)
    sem_i, _ = head.decompose(img)
    sem_t, _ = head.decompose(txt)
    torch.testing.assert_close(
        losses['loss_lsd_img'],
        2.0 * F.cross_entropy(head._classify(head.cls_image, sem_i), target))
    torch.testing.assert_close(
        losses['loss_lsd_txt'],
        0.5 * F.cross_entropy(head._classify(head.cls_text, sem_t), target))


def test_all_unknown_labels_give_zero_but_valid_graph():
    head = _head()
    img = torch.randn(3, 16, requires_grad=True)
    txt = torch.randn(3, 16, requires_grad=True)
    losses = head.loss(img, txt, _samples([-1, -1, None]))
    assert losses['loss_lsd_img'].item() == 0.0
    assert losses['loss_lsd_txt'].item() == 0.0
    assert losses['loss_lsd_img'].requires_grad
    sum(losses.values()).backward()
    assert head.cls_image.weight.grad is not None


@pytest.mark.parametrize('semantic_dim', [0, 6])
@pytest.mark.parametrize('share', [True, False])
def test_gradient_reaches_both_modalities(semantic_dim, share):
    head = _head(semantic_dim=semantic_dim, share_classifier=share)
    img = torch.randn(4, 16, requires_grad=True)
    txt = torch.randn(4, 16, requires_grad=True)
    losses = head.loss(img, txt, _samples([0, 1, 1, 3]))
    assert set(losses) == {'loss_lsd_img', 'loss_lsd_txt', 'loss_lsd_orth'}
    sum(losses.values()).backward()
    assert img.grad.abs().sum() > 0 and txt.grad.abs().sum() > 0


def test_decoupling_loss_is_the_scaled_cross_correlation():
    torch.manual_seed(1)
    head = _head(semantic_dim=4, decouple_weight=0.5)
    img, txt = torch.randn(8, 16), torch.randn(8, 16)
    losses = head.loss(img, txt, _samples([-1] * 8))
    s = torch.cat([head.sem_proj(img), head.sem_proj(txt)])
    r = torch.cat([head.res_proj(img), head.res_proj(txt)])
    sz = (s - s.mean(0)) / (s.std(0) + 1e-5)
    rz = (r - r.mean(0)) / (r.std(0) + 1e-5)
    corr = sz.t() @ rz / (s.shape[0] - 1)
    torch.testing.assert_close(losses['loss_lsd_orth'],
                               0.5 * corr.pow(2).mean())
    # minimising it decorrelates the two parts
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    first = losses['loss_lsd_orth'].item()
    for _ in range(30):
        opt.zero_grad()
        loss = head.loss(img, txt, _samples([-1] * 8))['loss_lsd_orth']
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first
    weight_head = _head(semantic_dim=4, decouple='weight')
    ws = F.normalize(weight_head.sem_proj.weight, dim=1)
    wr = F.normalize(weight_head.res_proj.weight, dim=1)
    torch.testing.assert_close(
        weight_head.loss(img, txt, _samples([0] * 8))['loss_lsd_orth'],
        0.1 * (ws @ wr.t()).pow(2).mean())


def test_embed_modes():
    img, txt = torch.randn(3, 16), torch.randn(7, 16)
    # residual: shape kept and the identity at initialisation
    head = _head(retrieval_mode='residual')
    out_i, out_t = head.embed(img, txt)
    torch.testing.assert_close(out_i, img)
    torch.testing.assert_close(out_t, txt)
    assert head.embed(None, txt)[0] is None
    # ... but it learns: back_proj receives gradient through embed
    out_i.sum().backward()
    assert head.back_proj.weight.grad.abs().sum() > 0
    # concat: width D, unit norm
    head = _head(retrieval_mode='concat', semantic_dim=6)
    out_i, out_t = head.embed(img, txt)
    assert out_i.shape == img.shape and out_t.shape == txt.shape
    torch.testing.assert_close(out_i.norm(dim=-1), torch.ones(3))
    # full (the default: LSD acts through its losses only, our reading of
    # the paper) and semantic_dim=0: identity, nothing built for embed
    for kwargs in (dict(), dict(retrieval_mode='full'),
                   dict(semantic_dim=0)):
        head = _head(**kwargs)
        assert head.retrieval_mode == kwargs.get('retrieval_mode', 'full')
        assert not hasattr(head, 'back_proj')
        out_i, out_t = head.embed(img, txt)
        assert out_i is img and out_t is txt


def test_bad_arguments():
    with pytest.raises(ValueError, match='semantic_dim'):
        LabelSemanticHead(num_classes=3, in_channels=8, semantic_dim=8)
    with pytest.raises(ValueError, match='retrieval_mode'):
        LabelSemanticHead(num_classes=3, retrieval_mode='sum')
    head = _head()
    with pytest.raises(ValueError, match='num_classes=5'):
        head.loss(torch.randn(2, 16), torch.randn(2, 16), _samples([0, 5]))
    with pytest.raises(ValueError, match='rows'):
        head.loss(torch.randn(3, 16), torch.randn(2, 16), _samples([0, 1]))


def test_cosine_classifier_ignores_the_norm_and_weights_default_low():
    torch.manual_seed(0)
    head = _head(cls_scale=10.0, semantic_dim=0)
    assert head.loss_weight_image == head.loss_weight_text == 0.1
    x = torch.randn(4, 16)
    logits = head(x, 'image')
    # CE cannot fall by growing norms that retrieval discards
    torch.testing.assert_close(head(5.0 * x, 'image'), logits)
    assert logits.abs().max() <= 10.0 + 1e-5
    assert head.cls_image.bias is None


def test_labels_are_masked_without_host_branches():
    head = _head()
    samples = _samples([1, None, 3])
    labels = head.get_labels(samples, torch.device('cpu'))
    assert labels.tolist() == [1, -1, 3]
    assert labels.dtype == torch.long


def test_lsd_switch_makes_embed_the_identity():
    torch.manual_seed(0)
    head = _head(retrieval_mode='residual')
    torch.nn.init.normal_(head.back_proj.weight)
    img, txt = torch.randn(3, 16), torch.randn(2, 16)
    assert not torch.allclose(head.embed(img, txt)[0], img)
    with head.disable('lsd'):
        out_i, out_t = head.embed(img, txt)
    assert out_i is img and out_t is txt
