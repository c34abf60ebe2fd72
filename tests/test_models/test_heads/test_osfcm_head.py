# Copyright (c) rsitr_mm contributors. All rights reserved.
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmpretrain.structures import DataSample

from rsitr_mm.models.heads.osfcm_head import ObjectSemanticClusterHead

D = 8


@pytest.fixture
def ann_file(tmp_path):
    images = [
        ('1.tif', ['ships in a harbor', 'two ships', 'a ship', 'ships',
                   'boats']),
        ('2.tif', ['a road with cars', 'a road', 'roads', 'a car', 'cars']),
        ('3.tif', ['a river', 'a river and trees', 'trees', 'river', 'tree']),
        ('4.tif', ['nothing', 'nothing', 'nothing', 'nothing', 'nothing']),
        ('5.tif', ['ship', 'a road', 'a tree', 'a river', 'a car']),
    ]
    data = dict(images=[
        dict(filename=f, split='train',
             sentences=[dict(raw=c) for c in caps]) for f, caps in images
    ])
    path = tmp_path / 'ann.json'
    path.write_text(json.dumps(data))
    return str(path)


def _samples(names, root='data/imgs'):
    return [DataSample(metainfo=dict(img_path=f'{root}/{n}')) for n in names]


def _head(ann_file, **kw):
    torch.manual_seed(0)
    kw.setdefault('top_k', 10)
    # the plain equations; idf, caption targets and warm-up: tests below
    kw.setdefault('idf', False)
    kw.setdefault('caption_targets', False)
    kw.setdefault('warmup_iters', 0)
    return ObjectSemanticClusterHead(embed_dim=D, ann_file=ann_file, **kw)


def test_priors_lookup_and_identity_embed_at_init(ann_file):
    head = _head(ann_file)
    assert head.prototypes.shape == (head.num_prototypes, D)
    pri = head.get_priors(_samples(['1.tif', '4.tif', 'unknown.tif']) +
                          [dict(img_path='x/2.tif'), None])
    assert pri.shape == (5, head.num_prototypes)
    k_ship = head.vocab.index('ship')
    k_harbor = head.vocab.index('harbor')
    # 1.tif: ship in 4 captions, harbor in 1, boat in 1
    assert pri[0, k_ship] == pytest.approx(4 / 6)
    assert pri[0, k_harbor] == pytest.approx(1 / 6)
    assert pri[1].sum() == 0 and pri[2].sum() == 0 and pri[4].sum() == 0
    assert pri[3].sum() == pytest.approx(1.0)
    x, t = torch.randn(3, D), torch.randn(3, D)
    # default: the paper's loss-only head, nothing added to the embedding
    assert head.refine is False and not hasattr(head, 'refine_proj')
    x2, t2 = head.embed(x, t)
    assert x2 is x and t2 is t
    # our opt-in refinement is zero-initialised: identity at the start
    x2, t2 = _head(ann_file, refine=True).embed(x, t)
    assert torch.equal(x2, x) and torch.equal(t2, t)


def test_defaults_are_the_papers_image_side_objective(ann_file):
    """Without options the head clusters image embeddings only: no
    caption-side term (``text_weight=0``) and no refinement (our opt-in
    extensions, configs/osdpm-refine_*.py)."""
    head = ObjectSemanticClusterHead(embed_dim=D, ann_file=ann_file,
                                     top_k=10, warmup_iters=0)
    assert head.text_weight == 0 and head.refine is False
    img, txt = torch.randn(3, D), torch.randn(3, D)
    out = head.loss(img, txt, _samples(['1.tif', '2.tif', '3.tif']))
    assert set(out) == {'loss_osfcm'} and out['loss_osfcm'] > 0
    x2, t2 = head.embed(img, txt)
    assert x2 is img and t2 is txt


def test_loss_matches_hand_computation(ann_file):
    head = _head(ann_file, temperature=0.5, loss_weight=2.0, text_weight=0.25)
    img, txt = torch.randn(3, D), torch.randn(3, D)
    samples = _samples(['1.tif', '4.tif', '3.tif'])
    out = head.loss(img, txt, samples)
    protos = F.normalize(head.prototypes.detach(), dim=1)
    prior = head.get_priors(samples)

    def ref(emb):
        total = []
        for i in (0, 2):  # 4.tif has an empty prior
            logits = F.normalize(emb[i], dim=0) @ protos.t() / 0.5
            logp = logits - torch.logsumexp(logits, 0)
            total.append(-(prior[i] * logp).sum())
        return sum(total) / 2

    torch.testing.assert_close(out['loss_osfcm'], 2.0 * ref(img))
    torch.testing.assert_close(out['loss_osfcm_txt'], 2.0 * 0.25 * ref(txt))
    assert 'loss_osfcm_txt' not in _head(
        ann_file, text_weight=0).loss(img, txt, samples)


def test_empty_prior_images_contribute_nothing(ann_file):
    head = _head(ann_file)
    img, txt = torch.randn(2, D), torch.randn(2, D)
    base = head.loss(img, txt, _samples(['1.tif', '2.tif']))
    more = head.loss(
        torch.cat([img, torch.randn(3, D)]), torch.cat([txt,
                                                        torch.randn(3, D)]),
        _samples(['1.tif', '2.tif', '4.tif', 'zzz.tif', '4.tif']))
    for k in base:
        torch.testing.assert_close(more[k], base[k])
    # a batch without any prior: zero loss that still backpropagates
    emb = torch.randn(2, D, requires_grad=True)
    none = head.loss(emb, None, _samples(['4.tif', 'zzz.tif']))
    assert none['loss_osfcm'].item() == 0.0
    none['loss_osfcm'].backward()
    assert emb.grad is not None and head.prototypes.grad is not None
    assert torch.count_nonzero(emb.grad) == 0


@pytest.mark.parametrize('prototype', ['learnable', 'ema'])
def test_loss_falls_when_embeddings_are_optimised(ann_file, prototype):
    head = _head(ann_file, prototype=prototype, temperature=0.2)
    head.train()
    samples = _samples(['1.tif', '2.tif', '3.tif', '5.tif'])
    emb = torch.nn.Parameter(torch.randn(4, D))
    params = [emb] + list(head.parameters())
    opt = torch.optim.SGD(params, lr=0.5)
    losses = []
    for _ in range(60):
        out = head.loss(emb, None, samples)
        opt.zero_grad()
        out['loss_osfcm'].backward()
        opt.step()
        losses.append(out['loss_osfcm'].item())
    # prototypes start at the data (first-seen means), so the loss starts
    # near its floor (the prior's entropy) and can only fall a little
    assert losses[-1] < losses[0]
    # each image ends (up to ties between prototypes of nouns that always
    # co-occur) closest to the prototype of its dominant noun, and far from
    # the nouns it never mentions
    protos = F.normalize(head.prototypes.detach(), dim=1)
    sims = F.normalize(emb.detach(), dim=1) @ protos.t()
    prior = head.get_priors(samples)
    for i in range(3):
        dominant = int(prior[i].argmax())
        assert sims[i, dominant] > sims[i].max() - 0.05
        absent = prior[i] == 0
        assert sims[i, dominant] > sims[i, absent].max() + 0.3


def test_ema_update(ann_file):
    head = _head(ann_file, prototype='ema', ema_momentum=0.5, refine=False)
    assert not any(True for _ in head.parameters())
    before = head.prototypes.clone()
    emb = F.normalize(torch.randn(2, D), dim=1)
    samples = _samples(['2.tif', '4.tif'])  # only 2.tif has a prior
    head.eval()
    head.loss(emb, None, samples)
    assert torch.equal(head.prototypes, before)  # no update in eval mode
    head.train()
    head.loss(emb, None, samples)
    seen = head.get_priors(samples)[0] > 0  # road and car
    assert int(seen.sum()) == 2
    # first sight: prototype set to the (normalised) weighted mean
    for k in torch.nonzero(seen).flatten():
        torch.testing.assert_close(head.prototypes[k], emb[0])
    assert torch.equal(head.prototypes[~seen], before[~seen])
    # second step: momentum 0.5 blend, renormalised
    emb2 = F.normalize(torch.randn(2, D), dim=1)
    head.loss(emb2, None, samples)
    k = int(torch.nonzero(seen)[0])
    torch.testing.assert_close(head.prototypes[k],
                               F.normalize(0.5 * emb[0] + 0.5 * emb2[0],
                                           dim=0))


def test_min_prior_and_priors_file(ann_file, tmp_path):
    head = _head(ann_file, min_prior=0.2)
    row = head.get_priors(_samples(['1.tif']))[0]
    assert row[head.vocab.index('harbor')] == 0  # 1/6 < 0.2
    assert row.sum() == pytest.approx(1.0)
    cache = str(tmp_path / 'priors.npz')
    h1 = _head(ann_file, priors_file=cache)
    assert not h1.priors.from_cache
    h2 = _head(ann_file, priors_file=cache)
    assert h2.priors.from_cache and h2.vocab == h1.vocab
    h3 = ObjectSemanticClusterHead(embed_dim=D, priors_file=cache, idf=False)
    assert h3.vocab == h1.vocab
    np.testing.assert_array_equal(h3.prior_table.numpy(),
                                  h1.prior_table.numpy())
    # no path: builds (priors come from the training dataset or a
    # checkpoint later); training it before that names the way out
    bare = ObjectSemanticClusterHead(embed_dim=D, top_k=10).train()
    assert bare.num_prototypes == 10 and bare.priors is None
    with pytest.raises(RuntimeError, match='TrainDataToModelHook'):
        bare.loss(torch.randn(1, D), None, _samples(['1.tif']))
    with pytest.raises(ValueError, match='prototype'):
        _head(ann_file, prototype='kmeans')


def test_registered_in_mmpretrain(ann_file):
    import rsitr_mm  # noqa: F401
    from mmpretrain.registry import MODELS
    head = MODELS.build(
        dict(type='ObjectSemanticClusterHead', embed_dim=D,
             ann_file=ann_file))
    assert isinstance(head, ObjectSemanticClusterHead)
    # prototypes are saved in checkpoints, the prior table is not
    keys = set(head.state_dict())
    assert 'prototypes' in keys and 'prior_table' not in keys


def test_idf_downweights_common_nouns(ann_file):
    plain = _head(ann_file)
    tfidf = _head(ann_file, idf=True)
    row_p = plain.get_priors(_samples(['5.tif']))[0]
    row_t = tfidf.get_priors(_samples(['5.tif']))[0]
    assert row_t.sum() == pytest.approx(1.0)
    df = {n: int(d) for n, d in zip(tfidf.vocab, tfidf.priors.doc_freq)}
    common = max(df, key=df.get)
    rare = min((n for n in df if row_p[tfidf.vocab.index(n)] > 0),
               key=df.get)
    k_c, k_r = tfidf.vocab.index(common), tfidf.vocab.index(rare)
    if df[common] > df[rare]:
        assert row_t[k_c] / row_t[k_r] < row_p[k_c] / row_p[k_r]


def test_caption_targets_use_the_captions_own_nouns(ann_file):
    head = _head(ann_file, caption_targets=True, text_weight=1.0)
    samples = _samples(['5.tif', '5.tif'])
    samples[0].set_metainfo(dict(text='a ship near a ship'))
    samples[1].set_metainfo(dict(text='nothing at all'))
    target = head.caption_nouns([s.text for s in samples],
                                torch.device('cpu'))
    k_ship = head.vocab.index('ship')
    assert target[0, k_ship] == pytest.approx(1.0)  # not the image prior
    assert target[1].sum() == 0  # no noun: no pull at all
    emb = torch.randn(2, D)
    out = head.loss(emb, emb.clone(), samples)
    protos = F.normalize(head.prototypes.detach(), dim=1)
    logits = F.normalize(emb[0], dim=0) @ protos.t() / head.temperature
    ref = -(logits.log_softmax(0)[k_ship])
    torch.testing.assert_close(out['loss_osfcm_txt'],
                               head.loss_weight * ref)


def test_warmup_ramps_the_weight(ann_file):
    head = _head(ann_file, warmup_iters=4, loss_weight=1.0).train()
    emb = torch.randn(2, D)
    samples = _samples(['1.tif', '2.tif'])
    first = head.loss(emb, None, samples)['loss_osfcm']
    head.eval()
    full = _head(ann_file, loss_weight=1.0)
    full.prototypes.data.copy_(head.prototypes.data)
    full.eval()
    ref = full.loss(emb, None, samples)['loss_osfcm']
    torch.testing.assert_close(first, 0.25 * ref)


def test_warmup_count_is_saved_and_resumed(ann_file):
    """A head restored from a state dict continues its warm-up ramp."""
    head = _head(ann_file, warmup_iters=4, loss_weight=1.0).train()
    emb = torch.randn(2, D)
    samples = _samples(['1.tif', '2.tif'])
    head.loss(emb, None, samples)
    head.loss(emb, None, samples)
    resumed = _head(ann_file, warmup_iters=4, loss_weight=1.0)
    resumed.load_state_dict(head.state_dict(), strict=True)
    assert resumed._iter == 2 and int(resumed.warmup_step) == 2
    resumed.eval()  # eval calls do not count: weight = 2/4 of the full one
    full = _head(ann_file, loss_weight=1.0)
    full.load_state_dict(head.state_dict(), strict=False)
    full.eval()
    torch.testing.assert_close(
        resumed.loss(emb, None, samples)['loss_osfcm'],
        0.5 * full.loss(emb, None, samples)['loss_osfcm'])


@pytest.mark.parametrize('prototype', ['learnable', 'ema'])
def test_prototypes_start_from_data(ann_file, prototype):
    head = _head(ann_file, prototype=prototype).train()
    emb = torch.randn(1, D)
    samples = _samples(['2.tif'])
    head.loss(emb, None, samples)
    seen = head.get_priors(samples)[0] > 0
    assert head.proto_seen.tolist() == seen.tolist()
    for k in torch.nonzero(seen).flatten():
        torch.testing.assert_close(head.prototypes[k].detach(),
                                   F.normalize(emb[0], dim=0))


def test_refinement_learns_and_switches_off(ann_file):
    torch.manual_seed(0)
    head = _head(ann_file, refine=True)
    head.init_weights()
    x = torch.randn(3, D)
    out, _ = head.embed(x, None)
    out.pow(2).sum().backward()  # step 1: the zero projection gets gradient
    assert head.refine_proj.weight.grad.abs().sum() > 0
    torch.nn.init.normal_(head.refine_proj.weight)
    refined, _ = head.embed(x, None)
    assert not torch.allclose(refined, x)
    with head.disable('osfcm'):
        assert torch.equal(head.embed(x, None)[0], x)


def test_priors_from_train_data_and_prototype_count_from_checkpoint(
        ann_file):
    """Without paths the head takes its priors from the training dataset's
    annotation files (what TrainDataToModelHook hands it), resizing the
    prototypes in place; an explicit ann_file wins; a bare head (test-only
    run) takes the prototype count from a checkpoint and loads strictly."""
    head = ObjectSemanticClusterHead(embed_dim=D, top_k=50).train()
    param = head.prototypes
    ref = _head(ann_file, top_k=50, idf=False, caption_targets=True)
    assert head.num_prototypes == 50 != ref.num_prototypes
    assert head.setup_from_train_data([ann_file]) is True
    assert head.prototypes is param  # an optimizer built already keeps it
    assert head.vocab == ref.vocab
    assert head.num_prototypes == ref.num_prototypes
    torch.testing.assert_close(head.prior_table, ref.prior_table)
    head.loss(torch.randn(2, D), torch.randn(2, D), _samples(['1.tif',
                                                              '2.tif']))
    explicit = _head(ann_file, top_k=2)
    assert explicit.setup_from_train_data([ann_file]) is False
    assert explicit.num_prototypes == 2
    bare = ObjectSemanticClusterHead(embed_dim=D, top_k=50)
    bare.load_state_dict(head.state_dict(), strict=True)
    torch.testing.assert_close(bare.prototypes, head.prototypes)
    assert bare.proto_seen.tolist() == head.proto_seen.tolist()


# ------------------------------------------------------- centred refinement
def _by_hand(head, x, centred):
    """``x + |x| W (a @ M)`` written out, M = P or P - mean_k P."""
    protos = F.normalize(head.prototypes.detach(), dim=1)
    a = (F.normalize(x, dim=-1) @ protos.t() / head.temperature).softmax(-1)
    mixed = protos - protos.mean(0, keepdim=True) if centred else protos
    return x + x.norm(dim=-1, keepdim=True) * head.refine_proj(a @ mixed)


def test_default_refinement_is_uncentred_and_unchanged(ann_file):
    head = _head(ann_file, refine=True)
    assert head.refine_centered is False
    assert 'refine_centered=False' in repr(head)
    torch.nn.init.normal_(head.refine_proj.weight)
    torch.nn.init.normal_(head.refine_proj.bias)
    x = torch.randn(4, D)
    with torch.no_grad():
        assert torch.equal(head.embed(x, None)[0], _by_hand(head, x, False))
    # the option adds no state: checkpoints load either way
    centred = _head(ann_file, refine=True, refine_centered=True)
    assert centred.state_dict().keys() == head.state_dict().keys()
    centred.load_state_dict(head.state_dict(), strict=True)


def test_centred_refinement_is_identity_at_init(ann_file):
    head = _head(ann_file, refine=True, refine_centered=True)
    head.init_weights()
    assert 'refine_centered=True' in repr(head)
    x, t = torch.randn(3, D), torch.randn(3, D)
    x2, t2 = head.embed(x, t)
    assert torch.equal(x2, x) and torch.equal(t2, t)


def test_centred_refinement_gets_gradient_at_step_one(ann_file):
    head = _head(ann_file, refine=True, refine_centered=True)
    head.init_weights()
    x = torch.randn(3, D)
    out, _ = head.embed(x, None)
    out.pow(2).sum().backward()
    assert head.refine_proj.weight.grad.abs().sum() > 0
    # one SGD step moves the embedding off the identity
    opt = torch.optim.SGD(head.refine_proj.parameters(), lr=0.1)
    opt.step()
    with torch.no_grad():
        assert not torch.allclose(head.embed(x, None)[0], x)
    with head.disable('osfcm'):
        assert torch.equal(head.embed(x, None)[0], x)


def test_centring_removes_the_shared_prototype_component(ann_file):
    plain = _head(ann_file, refine=True)
    centred = _head(ann_file, refine=True, refine_centered=True)
    centred.load_state_dict(plain.state_dict())
    for head in (plain, centred):  # W = identity, no bias: out - x = |x| a@M
        torch.nn.init.eye_(head.refine_proj.weight)
        torch.nn.init.zeros_(head.refine_proj.bias)
    x = torch.randn(5, D)
    scale = x.norm(dim=-1, keepdim=True)
    with torch.no_grad():
        res_plain = plain.embed(x, None)[0] - x
        res_centred = centred.embed(x, None)[0] - x
        torch.testing.assert_close(res_centred, _by_hand(centred, x, True) - x)
        protos = F.normalize(plain.prototypes, dim=1)
        # the centred residual is the plain one minus |x| * mean_k P
        torch.testing.assert_close(res_plain - res_centred,
                                   scale * protos.mean(0).expand(5, D))
        # identical prototypes: nothing but a shared component to mix in
        plain.prototypes.copy_(torch.ones_like(plain.prototypes))
        centred.prototypes.copy_(torch.ones_like(centred.prototypes))
        assert plain.embed(x, None)[0].sub(x).abs().max() > 0.1
        torch.testing.assert_close(centred.embed(x, None)[0], x)


def test_refine_centered_is_validated(ann_file):
    with pytest.raises(ValueError, match='refine_centered=True needs'):
        _head(ann_file, refine=False, refine_centered=True)
    with pytest.raises(ValueError, match='refine_centered must be a bool'):
        _head(ann_file, refine=True, refine_centered='yes')


def _old_refine(head, emb):
    """The refinement as first written (one embedding at a time)."""
    protos = F.normalize(head.prototypes, dim=1).to(emb.dtype)
    assign = (F.normalize(emb, dim=-1) @ protos.t() /
              head.temperature).softmax(dim=-1)
    scale = emb.norm(dim=-1, keepdim=True)
    mixed = protos
    if head.refine_centered:
        mixed = protos - protos.mean(dim=0, keepdim=True)
    return emb + scale * head.refine_proj(assign @ mixed)


def _old_cluster_loss(head, emb, target):
    protos = F.normalize(head.prototypes, dim=1).to(emb.dtype)
    logits = F.normalize(emb, dim=1) @ protos.t() / head.temperature
    valid = (target.sum(dim=1) > 0).to(logits.dtype)
    per_row = -(target * logits.log_softmax(dim=1)).sum(dim=1)
    return (per_row * valid).sum() / valid.sum().clamp_min(1.0)


@pytest.mark.parametrize('centered', [False, True])
def test_batched_embed_and_loss_match_the_separate_passes(ann_file,
                                                          centered):
    """Image and caption rows refined / scored in one pass give what two
    passes gave: values and gradients (float64, 1e-10)."""
    # both sides and the refinement on, whatever the defaults are
    head = _head(ann_file, caption_targets=True, idf=True, refine=True,
                 text_weight=0.5, refine_centered=centered).double().eval()
    with torch.no_grad():
        head.refine_proj.weight.normal_()
    g = torch.Generator().manual_seed(3)
    img = torch.randn(4, D, generator=g, dtype=torch.double,
                      requires_grad=True)
    txt = torch.randn(4, D, generator=g, dtype=torch.double,
                      requires_grad=True)
    names = ['1.tif', '2.tif', '3.tif', '4.tif']
    samples = _samples(names)
    for s, cap in zip(samples, ['two ships', 'a road', 'nothing', 'cars']):
        s.set_field(cap, 'text', field_type='metainfo')
    losses = head.loss(img, txt, samples)
    prior = head.get_priors(samples).double()
    target = head.caption_nouns([s.text for s in samples],
                                txt.device).double()
    ref = dict(loss_osfcm=head.loss_weight *
               _old_cluster_loss(head, img, prior),
               loss_osfcm_txt=head.loss_weight * head.text_weight *
               _old_cluster_loss(head, txt, target))
    new_i, new_t = head.embed(img, txt)
    old_i, old_t = _old_refine(head, img), _old_refine(head, txt)
    outs = [losses['loss_osfcm'], losses['loss_osfcm_txt'], new_i, new_t]
    refs = [ref['loss_osfcm'], ref['loss_osfcm_txt'], old_i, old_t]
    params = [img, txt] + [p for p in head.parameters() if p.requires_grad]
    for a, b in zip(outs, refs):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
        w = torch.randn(a.shape, generator=g, dtype=torch.double)
        ga = torch.autograd.grad(a, params, w, allow_unused=True,
                                 retain_graph=True)
        gb = torch.autograd.grad(b, params, w, allow_unused=True,
                                 retain_graph=True)
        for x, y, p in zip(ga, gb, params):
            # one pass over both: zero (not None) across image/caption
            x = torch.zeros_like(p) if x is None else x
            y = torch.zeros_like(p) if y is None else y
            torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-12)


def test_skipping_the_idle_prototype_update_changes_nothing(ann_file):
    """Once every noun of a batch has been seen, the 'learnable' update is
    skipped (host-side check): prototypes and losses equal a head that
    updates on every step, and a new noun still initialises."""
    torch.manual_seed(0)
    fast = _head(ann_file).train()
    slow = _head(ann_file).train()
    slow.load_state_dict(fast.state_dict())
    slow._needs_update = lambda rows: True  # the update on every step
    calls = []
    update = fast._update_prototypes
    fast._update_prototypes = lambda *a: calls.append(1) or update(*a)
    batches = [['1.tif', '2.tif'], ['2.tif', '1.tif'], ['1.tif'],
               ['3.tif', '1.tif']]
    for names in batches:
        emb = torch.randn(len(names), D)
        samples = _samples(names)
        torch.testing.assert_close(
            fast.loss(emb, None, samples)['loss_osfcm'],
            slow.loss(emb, None, samples)['loss_osfcm'])
        torch.testing.assert_close(fast.prototypes, slow.prototypes)
        assert fast.proto_seen.tolist() == slow.proto_seen.tolist()
    new_nouns = fast.get_priors(_samples(['3.tif']))[0] > 0
    # steps 1 and 4 bring nouns not seen before (if 3.tif has any new one)
    expected = 1 + int(bool((new_nouns & ~(
        fast.get_priors(_samples(['1.tif', '2.tif'])) > 0).any(0)).any()))
    assert len(calls) == expected


def test_seen_copy_follows_a_loaded_checkpoint(ann_file):
    head = _head(ann_file).train()
    samples = _samples(['1.tif', '2.tif'])
    head.loss(torch.randn(2, D), None, samples)
    fresh = _head(ann_file).train()
    fresh.load_state_dict(head.state_dict())
    assert fresh._seen_host.tolist() == head.proto_seen.tolist()
    # nothing new in the same batch: no update after loading either
    rows = fresh._host_rows(torch.tensor(
        [fresh.priors.index('data/imgs/1.tif'),
         fresh.priors.index('data/imgs/2.tif')]))
    assert not fresh._needs_update(rows)
