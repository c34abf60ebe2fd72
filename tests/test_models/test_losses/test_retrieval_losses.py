# Copyright (c) rsitr_mm contributors. All rights reserved.
import math

import pytest
import torch
import torch.nn.functional as F

from mmpretrain.registry import MODELS

import rsitr_mm  # noqa: F401


def _pair(b=4, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    img = F.normalize(torch.randn(b, d, generator=g), dim=-1)
    txt = F.normalize(torch.randn(b, d, generator=g), dim=-1)
    return img, txt


def test_infonce_distinct_images_equals_clip_loss():
    img, txt = _pair()
    loss = MODELS.build(dict(type='MultiPositiveInfoNCELoss',
                             temperature=0.1))
    logits = img @ txt.t() / 0.1
    target = torch.arange(4)
    ref = (F.cross_entropy(logits, target) +
           F.cross_entropy(logits.t(), target)) / 2
    assert loss(img, txt, torch.arange(4)).item() == pytest.approx(
        ref.item(), rel=1e-5)


def test_infonce_duplicate_image_ids_by_hand():
    # 2 rows of the same image: with unit vectors chosen so the similarity
    # matrix is [[1, 0], [0, 1]] and scale 1, each row's target is uniform
    # over both columns: loss = -0.5*(log p0 + log p1) with p = softmax(1,0)
    img = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    txt = img.clone()
    loss = MODELS.build(dict(type='MultiPositiveInfoNCELoss'))
    value = loss(img, txt, torch.tensor([7, 7]), logit_scale=torch.tensor(1.))
    p_hi = math.exp(1) / (math.exp(1) + 1)
    expected = -0.5 * (math.log(p_hi) + math.log(1 - p_hi))
    assert value.item() == pytest.approx(expected, rel=1e-6)
    # with distinct ids only the diagonal is positive
    value2 = loss(img, txt, torch.tensor([0, 1]),
                  logit_scale=torch.tensor(1.))
    assert value2.item() == pytest.approx(-math.log(p_hi), rel=1e-6)


def test_triplet_hand_computed():
    # S = [[0.9, 0.5], [0.8, 0.3]] built from 2-d unit vectors is awkward;
    # use raw vectors: the loss only needs dot products.
    img = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    txt = torch.tensor([[0.9, 0.8], [0.5, 0.3]])
    # S = img @ txt.T = [[0.9, 0.5], [0.8, 0.3]]
    loss = MODELS.build(dict(type='TripletRankingLoss', margin=0.2))
    # i2t: row0: 0.2 + 0.5 - 0.9 < 0 -> 0 ; row1: 0.2 + 0.8 - 0.3 = 0.7
    # t2i: col0 (text 0): 0.2 + 0.8 - 0.9 = 0.1 ; col1: 0.2 + 0.5 - 0.3 = 0.4
    expected = ((0 + 0.1) + (0.7 + 0.4)) / 2
    assert loss(img, txt, torch.tensor([0, 1])).item() == pytest.approx(
        expected, rel=1e-6)
    # same image id: no negatives at all -> zero loss
    assert loss(img, txt, torch.tensor([3, 3])).item() == 0.0
    summed = MODELS.build(
        dict(type='TripletRankingLoss', margin=0.2, max_violation=False,
             loss_weight=2.0))
    assert summed(img, txt, torch.tensor([0, 1])).item() == pytest.approx(
        2 * expected, rel=1e-6)


@pytest.mark.parametrize('cfg', [
    dict(type='MultiPositiveInfoNCELoss'),
    dict(type='TripletRankingLoss'),
])
def test_losses_fall_when_training(cfg):
    torch.manual_seed(0)
    x = torch.randn(16, 10)
    y = x + 0.5 * torch.randn(16, 10)
    f_img, f_txt = torch.nn.Linear(10, 8), torch.nn.Linear(10, 8)
    loss_fn = MODELS.build(cfg)
    opt = torch.optim.Adam(
        list(f_img.parameters()) + list(f_txt.parameters()), lr=1e-2)
    ids = torch.arange(16) // 2
    first = None
    for _ in range(60):
        loss = loss_fn(F.normalize(f_img(x), dim=-1),
                       F.normalize(f_txt(y), dim=-1), ids)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


def test_shape_mismatch_is_clear():
    loss = MODELS.build(dict(type='MultiPositiveInfoNCELoss'))
    with pytest.raises(ValueError, match='same shape'):
        loss(torch.zeros(2, 4), torch.zeros(3, 4))
