# Copyright (c) rsitr_mm contributors. All rights reserved.
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmpretrain.registry import MODELS
from rsitr_mm.models.losses import SemanticGuidedTripletLoss


def vsepp_reference(img, txt, ids, margin=0.2, max_violation=True,
                    margins=None):
    """Plain-loop VSE++ as the project defines it (private reference).

    ``margins`` optionally gives a (B, B) margin per (anchor, negative).
    """
    b = img.shape[0]
    s = (img @ txt.t()).tolist()
    ids = [int(i) for i in ids]
    total = 0.0
    for i in range(b):
        i2t, t2i = [], []
        for j in range(b):
            if ids[i] == ids[j]:
                continue
            m = margin if margins is None else margins[i][j]
            i2t.append(max(0.0, m + s[i][j] - s[i][i]))  # image anchor i
            t2i.append(max(0.0, m + s[j][i] - s[i][i]))  # text anchor i
        agg = max if max_violation else sum
        total += (agg(i2t) if i2t else 0.0) + (agg(t2i) if t2i else 0.0)
    return total / b


def _embeds(b=6, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    img = F.normalize(torch.randn(b, d, generator=g), dim=-1)
    txt = F.normalize(img + 0.7 * torch.randn(b, d, generator=g), dim=-1)
    return img, txt


@pytest.mark.parametrize('max_violation', [True, False])
@pytest.mark.parametrize('ids', [[0, 1, 2, 3, 4, 5], [0, 0, 1, 2, 2, 2]])
@pytest.mark.parametrize('margin,weight', [(0.2, 1.0), (0.35, 2.5)])
def test_semantic_none_equals_vsepp(max_violation, ids, margin, weight):
    img, txt = _embeds()
    loss = MODELS.build(
        dict(
            type='SemanticGuidedTripletLoss',
            semantic='none',
            warmup_iters=0,
            margin=margin,
            max_violation=max_violation,
            loss_weight=weight))
    labels = torch.tensor([0, 0, 1, 1, -1, 2])
    ref = weight * vsepp_reference(img, txt, ids, margin, max_violation)
    out = loss(img, txt, torch.tensor(ids), labels=labels)
    assert out.dim() == 0
    assert out.item() == pytest.approx(ref, abs=1e-6)
    # labels are irrelevant to semantic='none'
    assert loss(img, txt, torch.tensor(ids)).item() == pytest.approx(
        ref, abs=1e-6)


def test_semantic_none_matches_project_vsepp_if_present():
    import rsitr_mm.models.losses as losses
    vsepp_cls = getattr(losses, 'TripletRankingLoss', None)
    if vsepp_cls is None:
        pytest.skip('TripletRankingLoss is not available')
    img, txt = _embeds(b=8, seed=5)
    ids = torch.tensor([0, 0, 1, 2, 2, 3, 4, 5])
    for mv in (True, False):
        ours = SemanticGuidedTripletLoss(
            warmup_iters=0,
            semantic='none', max_violation=mv, loss_weight=1.5)
        theirs = vsepp_cls(max_violation=mv, loss_weight=1.5)
        torch.testing.assert_close(ours(img, txt, ids), theirs(img, txt, ids))


def _scores_as_embeds(scores):
    """image_emb @ I = scores: lets a test set the similarity matrix."""
    s = torch.tensor(scores)
    return s, torch.eye(s.shape[0])


# S = [[.5, .45], [.3, .4]]; m0 = .2
#   m = .2 : i2t = (.15, .10), t2i = (0, .25)   -> (.15 + .10 + .25) / 2 = .25
#   m = .1 : i2t = (.05, 0),   t2i = (0, .15)   -> (.05 + .15) / 2       = .10
#   m = 0  : i2t = (0, 0),     t2i = (0, .05)   -> .05 / 2               = .025
HAND_S = [[0.5, 0.45], [0.3, 0.4]]


@pytest.mark.parametrize('labels,expected', [([3, 3], 0.10), ([3, 4], 0.25),
                                             ([3, -1], 0.25),
                                             ([-1, -1], 0.25)])
def test_label_margin_hand_computed(labels, expected):
    img, txt = _scores_as_embeds(HAND_S)
    loss = SemanticGuidedTripletLoss(
        warmup_iters=0,
        margin=0.2, semantic='label', same_class_scale=0.5)
    out = loss(img, txt, torch.tensor([0, 1]), labels=torch.tensor(labels))
    assert out.item() == pytest.approx(expected, abs=1e-6)


def test_label_margin_matrix_matches_reference():
    img, txt = _embeds(b=6)
    ids = [0, 0, 1, 2, 3, 4]
    labels = [0, 0, 0, 1, -1, 1]
    m0, same, diff = 0.2, 0.3, 1.5
    margins = [[
        m0 if (labels[i] < 0 or labels[j] < 0) else
        m0 * (same if labels[i] == labels[j] else diff) for j in range(6)
    ] for i in range(6)]
    for mv in (True, False):
        loss = SemanticGuidedTripletLoss(
            warmup_iters=0,
            margin=m0,
            max_violation=mv,
            semantic='label',
            same_class_scale=same,
            diff_class_scale=diff)
        out = loss(img, txt, torch.tensor(ids), labels=torch.tensor(labels))
        ref = vsepp_reference(img, txt, ids, m0, mv, margins=margins)
        assert out.item() == pytest.approx(ref, abs=1e-6)
    # a same-class negative gets a smaller margin than a different-class one
    mat = loss.pair_margins(torch.tensor(labels), 6, torch.device('cpu'))
    assert mat[0, 2] < mat[0, 3]


def test_amfmn_margin_hand_computed():
    img, txt = _scores_as_embeds(HAND_S)
    loss = SemanticGuidedTripletLoss(
        warmup_iters=0,
        margin=0.2, semantic='amfmn', amfmn_prior='label', gamma=0.2,
        beta=3.0)
    same = loss(img, txt, torch.tensor([0, 1]), labels=torch.tensor([1, 1]))
    diff = loss(img, txt, torch.tensor([0, 1]), labels=torch.tensor([1, 2]))
    assert same.item() == pytest.approx(0.025, abs=1e-6)  # prior 1 -> a=0
    assert diff.item() == pytest.approx(0.25, abs=1e-6)  # prior 0 -> gamma
    prior = torch.tensor([0.0, 0.25, 0.5, 1.0])
    b = 3.0
    expected = [0.2 * (math.exp(b) - math.exp(b * p)) / (math.exp(b) - 1)
                for p in prior.tolist()]
    torch.testing.assert_close(loss._amfmn(prior), torch.tensor(expected))
    loss.beta = 0.0
    torch.testing.assert_close(loss._amfmn(prior), 0.2 * (1 - prior))


def test_same_image_pairs_are_never_negatives():
    img, txt = _embeds(b=4, seed=3)
    ids = torch.tensor([7, 7, 8, 9])
    labels = torch.tensor([0, 0, 1, 1])
    vsepp = SemanticGuidedTripletLoss(warmup_iters=0, semantic='none')
    assert vsepp(img, txt, ids).item() == \
        pytest.approx(vsepp_reference(img, txt, ids.tolist()), abs=1e-6)
    s = img @ txt.t()
    # rows 0 and 1 show the same image: make their cross pairs score far
    # above the positives; as negatives they would dominate the loss
    s_high = s.clone()
    s_high[0, 1] = 10.0
    s_high[1, 0] = 10.0
    eye = torch.eye(4)
    for semantic in ('none', 'label', 'amfmn'):
        loss = SemanticGuidedTripletLoss(warmup_iters=0, semantic=semantic)
        base = loss(s, eye, ids, labels=labels).item()
        assert loss(s_high, eye, ids, labels=labels).item() == \
            pytest.approx(base, abs=1e-6)
        # ... while with distinct ids those pairs are negatives
        distinct = torch.arange(4)
        assert loss(s_high, eye, distinct, labels=labels).item() > \
            loss(s, eye, distinct, labels=labels).item() + 1.0


def test_prototype_margins_from_ema_and_no_gradient():
    loss = SemanticGuidedTripletLoss(
        warmup_iters=0,
        margin=0.2,
        semantic='prototype',
        num_classes=3,
        embed_dim=2,
        same_class_scale=0.5,
        diff_class_scale=1.0)
    labels = torch.tensor([0, 1, 2, -1])
    # nothing seen yet: base margins everywhere
    m = loss.pair_margins(labels, 4, torch.device('cpu'))
    torch.testing.assert_close(m, torch.full((4, 4), 0.2))
    loss.proto_ema.copy_(torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]))
    loss.proto_seen.fill_(True)
    m = loss.pair_margins(labels, 4, torch.device('cpu'))
    cos01 = 1 / math.sqrt(2)
    assert m[0, 1].item() == pytest.approx(0.2 * (1 - 0.5 * cos01))
    assert m[0, 2].item() == pytest.approx(0.2)  # orthogonal prototypes
    assert m[0, 0].item() == pytest.approx(0.1)  # same class
    assert m[0, 3].item() == pytest.approx(0.2)  # unknown label

    # training updates the EMA without gradients
    fresh = SemanticGuidedTripletLoss(
        warmup_iters=0,
        semantic='prototype', num_classes=3, embed_dim=2).train()
    img = F.normalize(torch.randn(4, 2), dim=-1).requires_grad_()
    txt = F.normalize(torch.randn(4, 2), dim=-1)
    fresh(img, txt, torch.arange(4), labels=labels).backward()
    assert fresh.proto_seen.tolist() == [True, True, True]
    assert not fresh.proto_ema.requires_grad
    expected0 = (F.normalize(img[0:1], dim=-1) +
                 F.normalize(txt[0:1], dim=-1)).detach() / 2
    torch.testing.assert_close(fresh.proto_ema[0], expected0[0])


def test_learned_prototypes_receive_no_gradient_from_margin():
    loss = SemanticGuidedTripletLoss(
        warmup_iters=0,
        semantic='prototype',
        prototype='learned',
        num_classes=3,
        embed_dim=4,
        prototype_loss_weight=0.0)
    img, txt = _embeds(b=4, d=4)
    img.requires_grad_()
    out = loss(img, txt, torch.arange(4), labels=torch.tensor([0, 1, 2, 0]))
    out.backward()
    grad = loss.prototypes.weight.grad
    assert grad is None or grad.abs().sum() == 0
    assert img.grad.abs().sum() > 0
    # with the prototype term on, prototypes do learn
    loss.prototype_loss_weight = 0.1
    loss.zero_grad()
    loss(img, txt, torch.arange(4), labels=torch.tensor([0, 1, 2,
                                                         0])).backward()
    assert loss.prototypes.weight.grad.abs().sum() > 0


@pytest.mark.parametrize('semantic', ['none', 'label', 'amfmn'])
def test_loss_falls_when_training_linear_layers(semantic):
    torch.manual_seed(0)
    n, d_in, d = 48, 16, 8
    labels = torch.arange(n) % 4
    centers = torch.randn(4, d_in)
    x_img = centers[labels] + 0.5 * torch.randn(n, d_in)
    x_txt = x_img @ torch.randn(d_in, d_in) * 0.3 + 0.3 * torch.randn(
        n, d_in)
    f_img, f_txt = nn.Linear(d_in, d), nn.Linear(d_in, d)
    loss_fn = SemanticGuidedTripletLoss(warmup_iters=0, semantic=semantic)
    opt = torch.optim.Adam(
        list(f_img.parameters()) + list(f_txt.parameters()), lr=1e-2)
    ids = torch.arange(n)

    def step():
        return loss_fn(
            F.normalize(f_img(x_img), dim=-1),
            F.normalize(f_txt(x_txt), dim=-1),
            ids,
            labels=labels)

    first = step().item()
    for _ in range(60):
        opt.zero_grad()
        loss = step()
        loss.backward()
        opt.step()
    assert step().item() < 0.5 * first


def test_bad_arguments():
    with pytest.raises(ValueError, match='semantic'):
        SemanticGuidedTripletLoss(warmup_iters=0, semantic='word')
    with pytest.raises(ValueError, match='num_classes'):
        SemanticGuidedTripletLoss(warmup_iters=0, semantic='prototype')
    loss = SemanticGuidedTripletLoss(warmup_iters=0)
    with pytest.raises(ValueError, match='image_ids'):
        loss(torch.randn(3, 4), torch.randn(3, 4), torch.arange(2))
    with pytest.raises(ValueError, match=r'\(B, D\)'):
        loss(torch.randn(3, 4), torch.randn(2, 4), torch.arange(3))


def test_warmup_sums_negatives_then_keeps_the_hardest():
    img, txt = _embeds(b=6, seed=2)
    ids = torch.arange(6)
    loss = SemanticGuidedTripletLoss(semantic='none', warmup_iters=2).train()
    ref_sum = vsepp_reference(img, txt, ids, max_violation=False)
    ref_max = vsepp_reference(img, txt, ids, max_violation=True)
    assert loss(img, txt, ids).item() == pytest.approx(ref_sum, abs=1e-6)
    assert loss(img, txt, ids).item() == pytest.approx(ref_sum, abs=1e-6)
    assert loss(img, txt, ids).item() == pytest.approx(ref_max, abs=1e-6)
    # evaluation always uses the configured aggregation
    fresh = SemanticGuidedTripletLoss(semantic='none').eval()
    assert fresh(img, txt, ids).item() == pytest.approx(ref_max, abs=1e-6)


def test_warmup_count_is_saved_and_resumed():
    """The warm-up step count is in the state dict: a loss restored from it
    (what a resumed run does) continues the warm-up instead of restarting
    it; strict loading of the new state dicts works."""
    img, txt = _embeds(b=6, seed=2)
    ids = torch.arange(6)
    ref_sum = vsepp_reference(img, txt, ids, max_violation=False)
    ref_max = vsepp_reference(img, txt, ids, max_violation=True)
    loss = SemanticGuidedTripletLoss(semantic='none', warmup_iters=2).train()
    loss(img, txt, ids)
    state = loss.state_dict()
    assert int(state['warmup_step']) == 1
    resumed = SemanticGuidedTripletLoss(semantic='none',
                                        warmup_iters=2).train()
    resumed.load_state_dict(state, strict=True)
    assert resumed(img, txt, ids).item() == pytest.approx(ref_sum, abs=1e-6)
    # third step overall: the hardest negative, as without the restart
    assert resumed(img, txt, ids).item() == pytest.approx(ref_max, abs=1e-6)
    assert int(resumed.state_dict()['warmup_step']) == 3


def test_default_margin_adapts_to_caption_similarity():
    """Default: AMFMN over 0.5 * [same label] + 0.5 * caption cosine."""
    loss = SemanticGuidedTripletLoss()
    assert loss.semantic == 'amfmn' and loss.amfmn_prior == 'label_text'
    assert not loss.gather_negatives
    labels = torch.tensor([0, 0, 1, -1])
    sim = torch.tensor([[1.0, 0.2, 0.9, 0.5], [0.2, 1.0, -0.3, 0.1],
                        [0.9, -0.3, 1.0, 0.0], [0.5, 0.1, 0.0, 1.0]])
    m = loss.pair_margins(labels, 4, torch.device('cpu'), text_sim=sim)
    prior = torch.tensor([[1.0, 0.6, 0.45, 0.5], [0.6, 1.0, 0.0, 0.1],
                          [0.45, 0.0, 1.0, 0.0], [0.5, 0.1, 0.0, 1.0]])
    e3 = math.exp(3.0)
    torch.testing.assert_close(
        m, 0.2 * (e3 - torch.exp(3.0 * prior)) / (e3 - 1.0))
    # more similar captions -> smaller margin; a pure label gives only two
    assert m[0, 2] < m[1, 2]
    assert len(torch.unique(m)) > 2


def test_ema_prototypes_update_without_host_sync():
    loss = SemanticGuidedTripletLoss(
        warmup_iters=0, semantic='prototype', num_classes=3, embed_dim=2,
        prototype_momentum=0.5).train()
    emb = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
                      dim=-1)
    loss._update_ema(emb, torch.tensor([0, 0, -1]))
    assert loss.proto_seen.tolist() == [True, False, False]
    torch.testing.assert_close(loss.proto_ema[0], emb[:2].mean(0))
    assert loss.proto_ema[1:].abs().sum() == 0
    loss._update_ema(emb[2:], torch.tensor([0]))
    torch.testing.assert_close(loss.proto_ema[0],
                               0.5 * emb[:2].mean(0) + 0.5 * emb[2])
