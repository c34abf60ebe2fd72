# Copyright (c) rsitr_mm contributors. All rights reserved.
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmpretrain.registry import MODELS
from rsitr_mm.models.necks import BidirectionalScaleDecoupling

DIRECTIONS = [('f2c', ), ('c2f', ), ('f2c', 'c2f')]


def _pyramid(num_scales, batch=2, base=16, channels=(4, 6, 8, 10)):
    """Fine-to-coarse maps: 16x16, 8x8, 4x4, 2x2."""
    return tuple(
        torch.randn(batch, channels[s], base >> s, base >> s)
        for s in range(num_scales))


@pytest.mark.parametrize('num_scales', [1, 2, 3, 4])
@pytest.mark.parametrize('directions', DIRECTIONS)
@pytest.mark.parametrize('fusion', ['concat', 'weighted'])
def test_output_shape(num_scales, directions, fusion):
    in_ch = [4, 6, 8, 10][:num_scales]
    neck = MODELS.build(
        dict(
            type='BidirectionalScaleDecoupling',
            in_channels=in_ch,
            channels=5,
            directions=directions,
            fusion=fusion))
    x = _pyramid(num_scales, batch=3)
    out = neck(x)[0]
    assert out.shape == (3, in_ch[-1])
    feat, maps = neck.forward_with_maps(x)
    torch.testing.assert_close(feat, out)
    assert set(maps['salience']) == set(directions)
    assert set(maps['suppression']) == set(directions)
    for d in directions:
        for kind in ('salience', 'suppression'):
            assert len(maps[kind][d]) == num_scales
            for s, m in enumerate(maps[kind][d]):
                assert m.shape == (3, 1) + tuple(x[s].shape[-2:])
                assert m.min() >= 0 and m.max() <= 1


@pytest.mark.parametrize('salience', ['conv', 'softmax'])
@pytest.mark.parametrize('suppression', ['soft', 'topk'])
def test_gradients_reach_every_scale(salience, suppression):
    neck = BidirectionalScaleDecoupling([4, 6, 8],
                                        channels=5,
                                        salience=salience,
                                        suppression=suppression)
    nn.init.normal_(neck.fuse.weight)  # as after some training
    x = tuple(t.requires_grad_() for t in _pyramid(3))
    neck(x)[0].pow(2).sum().backward()
    for t in x:
        assert t.grad is not None and t.grad.abs().sum() > 0
    for i in range(3):
        assert neck.salience_convs[f'f2c_{i}'].weight.grad.abs().sum() > 0


def test_softmax_salience_peaks_at_one():
    neck = BidirectionalScaleDecoupling([4, 6],
                                        salience='softmax')
    _, maps = neck.forward_with_maps(_pyramid(2))
    for d in ('f2c', 'c2f'):
        for m in maps['salience'][d]:
            peak = m.flatten(1).max(dim=1).values
            torch.testing.assert_close(peak, torch.ones_like(peak))


def _identity_neck(**kwargs):
    """2 scales of 3 channels, identity laterals, scale-0 salience driven
    by channel 0: M_0 = sigmoid(20 * x0 - 10)."""
    neck = BidirectionalScaleDecoupling([3, 3],
                                        channels=3,
                                        directions=('f2c', ),
                                        **kwargs)
    with torch.no_grad():
        for conv in neck.lateral_convs:
            conv.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            conv.bias.zero_()
        sal0 = neck.salience_convs['f2c_0']
        sal0.weight.zero_()
        sal0.weight[0, 0] = 20.0
        sal0.bias.fill_(-10.0)
    return neck


def _capture_suppressed(neck, x, scale=1, direction='f2c'):
    """Input of the SFE conv of ``scale``: the suppressed features F'."""
    seen = {}
    conv = neck.salience_convs[f'{direction}_{scale}']
    handle = conv.register_forward_hook(
        lambda mod, inp, out: seen.setdefault('feat', inp[0].detach()))
    _, maps = neck.forward_with_maps(x)
    handle.remove()
    return seen['feat'], maps


def _two_region_input():
    # scale 0: 8x8, channel 0 is 1 on the left half (salient), 0 on the right
    x0 = torch.zeros(1, 3, 8, 8)
    x0[:, 0, :, :4] = 1.0
    # scale 1: 8x8 too (ViT-like equal grids), positive features everywhere
    x1 = torch.rand(1, 3, 8, 8) + 0.5
    return x0, x1


def test_soft_suppression_lowers_salient_region_only():
    neck = _identity_neck(suppression='soft', suppress_strength=1.0)
    x0, x1 = _two_region_input()
    feat1, maps = _capture_suppressed(neck, (x0, x1))
    m0 = maps['salience']['f2c'][0]
    assert m0[..., :4].min() > 0.99 and m0[..., 4:].max() < 1e-3
    # the first scale of the chain is never suppressed
    assert maps['suppression']['f2c'][0].abs().max() == 0
    # exact SGS equation F'_1 = F_1 * (1 - alpha * M_0) (same grid size)
    torch.testing.assert_close(feat1, x1 * (1 - m0))
    torch.testing.assert_close(maps['suppression']['f2c'][1], m0)
    left, right = feat1[..., :4], feat1[..., 4:]
    assert (left < 0.02 * x1[..., :4]).all()
    torch.testing.assert_close(right, x1[..., 4:], rtol=1e-3, atol=1e-3)


def test_soft_suppression_strength_and_resize():
    neck = _identity_neck(suppression='soft', suppress_strength=0.5)
    x0, _ = _two_region_input()
    x1 = torch.rand(1, 3, 4, 4) + 0.5  # coarser next scale
    feat1, maps = _capture_suppressed(neck, (x0, x1))
    m0 = maps['salience']['f2c'][0]
    q = F.interpolate(m0, size=(4, 4), mode='bilinear', align_corners=False)
    torch.testing.assert_close(feat1, x1 * (1 - 0.5 * q))
    # left columns were suppressed by half, right ones untouched
    torch.testing.assert_close(
        feat1[..., :2], 0.5 * x1[..., :2], rtol=1e-2, atol=1e-2)
    torch.testing.assert_close(
        feat1[..., 2:], x1[..., 2:], rtol=1e-2, atol=1e-2)


def test_topk_suppression_zeroes_top_positions():
    neck = _identity_neck(suppression='topk', topk_ratio=0.5)
    x0, x1 = _two_region_input()
    feat1, maps = _capture_suppressed(neck, (x0, x1))
    assert torch.equal(feat1[..., :4], torch.zeros_like(feat1[..., :4]))
    assert torch.equal(feat1[..., 4:], x1[..., 4:])
    sup = maps['suppression']['f2c'][1]
    assert sup.sum() == 32  # 50% of 64 positions


def test_c2f_suppresses_the_finer_scale():
    neck = BidirectionalScaleDecoupling([3, 3],
                                        channels=3,
                                        directions=('c2f', ))
    with torch.no_grad():
        for conv in neck.lateral_convs:
            conv.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            conv.bias.zero_()
        sal = neck.salience_convs['c2f_1']  # coarse scale goes first
        sal.weight.zero_()
        sal.weight[0, 0] = 20.0
        sal.bias.fill_(-10.0)
    x0 = torch.rand(1, 3, 8, 8) + 0.5
    x1 = torch.zeros(1, 3, 8, 8)
    x1[:, 0, :4] = 1.0  # top half salient on the coarse scale
    feat0, maps = _capture_suppressed(neck, (x0, x1), scale=0,
                                      direction='c2f')
    assert maps['suppression']['c2f'][1].abs().max() == 0
    assert (feat0[..., :4, :] < 0.02 * x0[..., :4, :]).all()
    torch.testing.assert_close(
        feat0[..., 4:, :], x0[..., 4:, :], rtol=1e-3, atol=1e-3)


def test_accumulated_suppression_is_max_of_previous_maps():
    neck = BidirectionalScaleDecoupling([3, 3, 3],
                                        directions=('f2c', ),
                                        accumulate='max')
    x = tuple(torch.randn(2, 3, 6, 6) for _ in range(3))
    _, maps = neck.forward_with_maps(x)
    sal = maps['salience']['f2c']
    sup = maps['suppression']['f2c']
    torch.testing.assert_close(sup[2], torch.maximum(sal[0], sal[1]))

    neck.accumulate = 'last'
    _, maps = neck.forward_with_maps(x)
    torch.testing.assert_close(maps['suppression']['f2c'][2],
                               maps['salience']['f2c'][1])


def test_zero_strength_disables_suppression():
    neck = _identity_neck(suppress_strength=0.0)
    x0, x1 = _two_region_input()
    feat1, _ = _capture_suppressed(neck, (x0, x1))
    torch.testing.assert_close(feat1, x1)


def test_bad_config_and_inputs():
    with pytest.raises(ValueError, match='directions'):
        BidirectionalScaleDecoupling([4], directions=('up', ))
    with pytest.raises(ValueError, match='salience'):
        BidirectionalScaleDecoupling([4], salience='attention')
    with pytest.raises(ValueError, match='topk_ratio'):
        BidirectionalScaleDecoupling([4], topk_ratio=0.0)
    with pytest.raises(ValueError, match='out_channels'):
        BidirectionalScaleDecoupling([4, 6], out_channels=8)
    with pytest.raises(ValueError, match='no gradient'):
        BidirectionalScaleDecoupling([4, 6], pool='avg',
                                     detach_suppression=True)
    with pytest.raises(ValueError, match='no gradient'):
        BidirectionalScaleDecoupling([4, 6], pool='avg', suppression='topk')
    neck = BidirectionalScaleDecoupling([4, 6])
    with pytest.raises(ValueError, match='2 scales'):
        neck(_pyramid(1))[0]
    with pytest.raises(ValueError, match=r'\(B, 6, H, W\)'):
        neck((torch.randn(1, 4, 4, 4), torch.randn(1, 5, 2, 2)))[0]


def test_single_tensor_input_is_accepted():
    neck = BidirectionalScaleDecoupling(4)
    assert isinstance(neck.lateral_convs[0], nn.Conv2d)
    assert neck(torch.randn(2, 4, 5, 5))[0].shape == (2, 4)


def test_bsd_ignores_a_trailing_global_embedding():
    """CLIPVisionBackbone returns (grid_1, ..., grid_k, global (B, D))."""
    import torch

    from rsitr_mm.models.necks import BidirectionalScaleDecoupling
    torch.manual_seed(0)
    neck = BidirectionalScaleDecoupling(in_channels=[8, 8])
    grids = (torch.randn(2, 8, 4, 4), torch.randn(2, 8, 4, 4))
    out_grids = neck(grids)[0]
    out_with_global = neck(grids + (torch.randn(2, 32), ))[0]
    assert torch.equal(out_grids, out_with_global)


def _pooled(x):
    return x[-1].mean(dim=(2, 3))


@pytest.mark.parametrize('kwargs', [
    dict(), dict(fusion='weighted'), dict(pool='avg'),
    dict(suppression='topk'), dict(salience='softmax')
])
def test_starts_as_plain_pooling_and_has_no_dead_parameters(kwargs):
    """Identity of the no-BSD model at init; after the zero-initialised
    projection moves, every parameter receives gradient."""
    torch.manual_seed(0)
    neck = BidirectionalScaleDecoupling([4, 6, 8], channels=5, **kwargs)
    neck.init_weights()
    x = _pyramid(3)
    torch.testing.assert_close(neck(x)[0], _pooled(x))
    neck(x)[0].sum().backward()  # step 1: the projection gets gradient
    assert neck.fuse.weight.grad.abs().sum() > 0
    neck.zero_grad()
    nn.init.normal_(neck.fuse.weight)
    neck(x)[0].pow(2).sum().backward()
    dead = [n for n, p in neck.named_parameters()
            if p.grad is None or p.grad.abs().sum() == 0]
    assert not dead


def test_salience_starts_selective():
    torch.manual_seed(0)
    neck = BidirectionalScaleDecoupling([4, 6, 8], channels=5)
    neck.init_weights()
    _, maps = neck.forward_with_maps(_pyramid(3))
    for d in ('f2c', 'c2f'):
        for m in maps['salience'][d]:
            assert m.mean() < 0.2  # sigmoid(-3) = 0.047, not 0.5
        # later scales are suppressed only where earlier ones were salient
        for q in maps['suppression'][d]:
            assert q.mean() < 0.2


def test_switches_on_the_same_weights():
    torch.manual_seed(0)
    neck = BidirectionalScaleDecoupling([4, 6, 8], channels=5)
    nn.init.normal_(neck.fuse.weight)
    x = _pyramid(3)
    full = neck(x)[0]
    with neck.disable('clues'):
        torch.testing.assert_close(neck(x)[0], _pooled(x))
    with neck.disable('suppression'):
        _, maps = neck.forward_with_maps(x)
        assert all(q.abs().max() == 0 for q in maps['suppression']['f2c'])
        assert not torch.allclose(neck(x)[0], full)
    with neck.disable('salience'):
        assert not torch.allclose(neck(x)[0], full)
    assert neck.enabled_parts == ('clues', 'suppression', 'salience')
    torch.testing.assert_close(neck(x)[0], full)
    with pytest.raises(ValueError, match='unknown part'):
        with neck.disable('dapn'):
            pass


def test_global_main_path_starts_as_the_backbone_embedding():
    neck = BidirectionalScaleDecoupling(
        in_channels=[8, 8], out_channels=6, channels=4, main='global')
    grids = [torch.randn(2, 8, 4, 4), torch.randn(2, 8, 2, 2)]
    glob = torch.randn(2, 6, requires_grad=True)
    out = neck(grids + [glob])[0]
    assert torch.equal(out, glob)  # zero-initialised clue projection
    out.sum().backward()
    assert neck.fuse.weight.grad.abs().sum() > 0  # the clues learn at once
    assert torch.equal(glob.grad, torch.ones_like(glob))
    with neck.disable('clues'):
        assert torch.equal(neck(grids + [glob])[0], glob)
    with pytest.raises(ValueError, match='global embedding'):
        neck(grids)[0]
    with pytest.raises(ValueError, match="main='global' needs `out_channels`"):
        BidirectionalScaleDecoupling(in_channels=[8, 8], main='global')
    with pytest.raises(ValueError, match='`main`'):
        BidirectionalScaleDecoupling(in_channels=[8, 8], main='cls')


def test_decouple_false_is_the_plain_pooling_control():
    """The BSD control keeps lateral convs, clue count and fusion, but its
    clues are plain per-scale averages: no salience conv exists, the output
    equals the fusion of the pooled lateral features, and every parameter
    gets gradient once the fusion has moved."""
    torch.manual_seed(0)
    x = _pyramid(3)
    kwargs = dict(in_channels=[4, 6, 8], channels=5)
    bsd = BidirectionalScaleDecoupling(**kwargs)
    ctrl = BidirectionalScaleDecoupling(decouple=False, **kwargs)
    assert len(ctrl.salience_convs) == 0
    assert ctrl.fuse.weight.shape == bsd.fuse.weight.shape
    torch.testing.assert_close(ctrl(x)[0], x[-1].mean(dim=(2, 3)))
    nn.init.normal_(ctrl.fuse.weight)
    pooled = [conv(f).mean(dim=(2, 3)) for conv, f in zip(
        ctrl.lateral_convs, x)]
    expected = x[-1].mean(dim=(2, 3)) + ctrl.fuse(torch.cat(pooled * 2, 1))
    out, maps = ctrl.forward_with_maps(x)
    torch.testing.assert_close(out, expected)
    assert all(float(m.sum()) == 0 for m in maps['suppression']['f2c'])
    out.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in ctrl.parameters())
    with pytest.raises(ValueError, match='decouple'):
        BidirectionalScaleDecoupling(decouple='no', **kwargs)
