# Copyright (c) rsitr_mm contributors. All rights reserved.
import pytest
import torch
import torch.nn.functional as F

from rsitr_mm.models.necks.dapn import (DualAttentionPerception,
                                        _region_pool_matrix)

C, D = 16, 8


def _inputs(b=2, h=7, w=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    grid = torch.randn(b, C, h, w, generator=g)
    glob = torch.randn(b, D, generator=g)
    return grid, glob


@pytest.mark.parametrize('hw', [(7, 7), (8, 8), (4, 4), (5, 3)])
def test_shapes_for_several_grids(hw):
    h, w = hw
    neck = DualAttentionPerception(in_channels=C, embed_dim=D)
    grid, glob = _inputs(3, h, w)
    feat, maps = neck.forward_with_maps((grid, torch.zeros(3, 4), glob))
    assert feat.shape == (3, D)
    assert maps['spatial'].shape == (3, 1, h, w)
    assert maps['channel'].shape == (3, C)
    assert sorted(maps['regions']) == [1, 2, 4]
    for m in maps['regions'].values():
        assert m.shape == (3, 1, h, w)
    assert maps['scale_weights'].shape == (3, 3)
    assert neck((grid, glob))[0].shape == (3, D)


@pytest.mark.parametrize('scale', [1, 2, 3, 4])
@pytest.mark.parametrize('hw', [(7, 7), (8, 8), (4, 4), (2, 2)])
def test_pool_matrix_equals_adaptive_avg_pool(hw, scale):
    grid, _ = _inputs(2, *hw)
    pool = _region_pool_matrix(hw[0], hw[1], scale)
    ours = torch.einsum('rn,bcn->brc', pool, grid.flatten(2))
    ref = F.adaptive_avg_pool2d(grid, scale).flatten(2).transpose(1, 2)
    torch.testing.assert_close(ours, ref)


def test_identity_on_global_embedding_at_init():
    neck = DualAttentionPerception(in_channels=C, embed_dim=D)
    grid, glob = _inputs()
    out = neck((grid, glob))[0]
    assert torch.equal(out, glob)
    # the gate is a fixed constant, not a parameter (no decay can close it)
    assert 'gate' not in dict(neck.named_parameters())
    neck.init_weights()
    assert torch.equal(neck((grid, glob))[0], glob)
    # ...but not once the zero-initialised projection has moved
    with torch.no_grad():
        neck.fuse_proj.weight.normal_()
    assert not torch.allclose(neck((grid, glob))[0], glob)


def test_attention_weights_are_distributions_and_depend_on_input():
    neck = DualAttentionPerception(in_channels=C, embed_dim=D)
    grid, glob = _inputs(2, 8, 8)
    _, maps = neck.forward_with_maps((grid, glob))
    ones = torch.ones(2)
    torch.testing.assert_close(maps['spatial'].sum(dim=(1, 2, 3)), ones)
    torch.testing.assert_close(maps['scale_weights'].sum(dim=1), ones)
    assert (maps['scale_weights'] > 0).all()
    for m in maps['regions'].values():
        torch.testing.assert_close(m.sum(dim=(1, 2, 3)), ones)
    assert ((maps['channel'] > 0) & (maps['channel'] < 1)).all()
    # the 1x1 scale covers the grid uniformly
    torch.testing.assert_close(maps['regions'][1],
                               torch.full_like(maps['regions'][1], 1 / 64))
    # content-dependent: another input gives other weights
    grid2, _ = _inputs(2, 8, 8, seed=1)
    _, maps2 = neck.forward_with_maps((grid2, glob))
    assert not torch.allclose(maps['scale_weights'], maps2['scale_weights'])
    assert not torch.allclose(maps['regions'][4], maps2['regions'][4])
    assert not torch.allclose(maps['spatial'], maps2['spatial'])
    # and the two samples of one batch differ as well
    assert not torch.allclose(maps['regions'][2][0], maps['regions'][2][1])


def test_projection_learns_from_step_one_then_everything_does():
    neck = DualAttentionPerception(in_channels=C, embed_dim=D)
    grid, glob = _inputs()
    grid.requires_grad_(True)
    out = neck((grid, glob))[0]
    out.pow(2).sum().backward()
    # zero projection: no gradient to the grid yet, but the projection
    # gets a full-sized one (gate 1 times LayerNormed features)
    assert grid.grad is None or torch.count_nonzero(grid.grad) == 0
    assert neck.fuse_proj.weight.grad.abs().mean() > 1e-2

    with torch.no_grad():
        neck.fuse_proj.weight.normal_(std=0.3)
    grid.grad = None
    neck.zero_grad()
    neck((grid, glob))[0].pow(2).sum().backward()
    assert grid.grad.abs().sum() > 0
    for name in ('spatial_conv.0.weight', 'channel_mlp.0.weight',
                 'region_scorers.2.0.weight', 'scale_gate.0.weight',
                 'fuse_proj.weight'):
        param = dict(neck.named_parameters())[name]
        assert param.grad is not None and param.grad.abs().sum() > 0, name


@pytest.mark.parametrize('fusion', ['sum', 'replace'])
def test_other_fusions_and_branch_switches(fusion):
    neck = DualAttentionPerception(
        in_channels=C, embed_dim=D, fusion=fusion, branches=('region', ),
        region_scales=(2, ), collaborative=False)
    grid, glob = _inputs()
    out = neck((grid, glob))[0]
    assert out.shape == (2, D)
    z = neck.fuse_proj(
        neck.fuse_norms['region'](neck._attend(grid)['region']))
    expected = z if fusion == 'replace' else glob + z
    torch.testing.assert_close(out, expected)
    if fusion == 'replace':
        assert neck(grid)[0].shape == (2, D)  # no global embedding needed


def test_bad_inputs_give_clear_errors():
    neck = DualAttentionPerception(in_channels=C, embed_dim=D)
    grid, glob = _inputs()
    with pytest.raises(ValueError, match='in_channels=16'):
        neck((torch.randn(2, C + 1, 7, 7), glob))[0]
    with pytest.raises(ValueError, match='embed_dim=8'):
        neck((grid, torch.randn(2, D + 1)))[0]
    ctx_only = DualAttentionPerception(
        in_channels=C, embed_dim=D, branches=('context', ))
    assert ctx_only.region_scorers is None and ctx_only.scale_gate is None
    feat, maps = ctx_only.forward_with_maps((grid, glob))
    assert feat.shape == (2, D) and maps['regions'] == {}
    feat.sum().backward()
    assert all(p.grad is not None for p in ctx_only.parameters())
    with pytest.raises(ValueError, match='fusion'):
        DualAttentionPerception(fusion='concat')
    with pytest.raises(ValueError, match='branches'):
        DualAttentionPerception(branches=('global', ))


def test_registered_in_mmpretrain():
    import rsitr_mm  # noqa: F401
    from mmpretrain.registry import MODELS
    neck = MODELS.build(
        dict(type='DualAttentionPerception', in_channels=C, embed_dim=D))
    assert isinstance(neck, DualAttentionPerception)


def test_switches_on_the_same_weights():
    torch.manual_seed(0)
    neck = DualAttentionPerception(in_channels=C, embed_dim=D)
    with torch.no_grad():
        neck.fuse_proj.weight.normal_()
    grid, glob = _inputs()
    full = neck((grid, glob))[0]
    with neck.disable('dapn'):
        assert torch.equal(neck((grid, glob))[0], glob)
    with neck.disable('region'):
        ctx = neck((grid, glob))[0]
    with neck.disable('context'):
        reg = neck((grid, glob))[0]
    bias = neck.fuse_proj.bias
    # the branch terms add up: full = glob + (ctx - glob) + (reg - glob) + b
    torch.testing.assert_close(full, ctx + reg - glob - bias)
    torch.testing.assert_close(neck((grid, glob))[0], full)
    replace = DualAttentionPerception(
        in_channels=C, embed_dim=D, fusion='replace')
    with pytest.raises(RuntimeError, match='replace'):
        with replace.disable('dapn'):
            replace((grid, glob))


def test_pool_matrices_are_cached_per_dtype():
    neck = DualAttentionPerception(in_channels=C, embed_dim=D)
    grid, glob = _inputs()
    neck((grid, glob))[0]
    n = len(neck._pool_cache)
    assert n == 1  # all scales' constants in one entry
    neck((grid, glob))[0]
    assert len(neck._pool_cache) == n  # reused, not rebuilt
    neck.double()((grid.double(), glob.double()))
    assert len(neck._pool_cache) == 2 * n
    assert not any('pool' in k for k in neck.state_dict())


def _loop_attend(neck, grid):
    """The region attention as first written (one pass per scale), for the
    batched implementation to be checked against."""
    from rsitr_mm.models.necks.region_pooling import _region_pool_matrix
    B, C, H, W = grid.shape
    N = H * W
    x = grid.flatten(2)
    ac0 = torch.sigmoid(neck.channel_mlp(x.mean(dim=2)))
    spatial_in = grid * ac0[:, :, None, None] if neck.collaborative else grid
    a_s = neck.spatial_conv(spatial_in).flatten(1).softmax(dim=1)
    c1 = torch.bmm(x, a_s.unsqueeze(2)).squeeze(2)
    a_c = torch.sigmoid(neck.channel_mlp(c1)) if neck.collaborative else ac0
    context = a_c * c1
    x_att = x * a_c.unsqueeze(2) * (a_s * N).unsqueeze(1)
    feats, maps = [], {}
    for scale, scorer in zip(neck.region_scales, neck.region_scorers):
        pool = _region_pool_matrix(H, W, scale).to(x_att)
        regions = torch.einsum('rn,bcn->brc', pool, x_att)
        w = scorer(regions).squeeze(2).softmax(dim=1)
        feats.append(torch.einsum('br,brc->bc', w, regions))
        maps[scale] = (w @ pool).view(B, 1, H, W)
    scale_w = neck.scale_gate(context).softmax(dim=1)
    region = torch.einsum('bs,bsc->bc', scale_w, torch.stack(feats, dim=1))
    return dict(context=context, region=region, regions=maps,
                scale_weights=scale_w)


@pytest.mark.parametrize('hw,scales', [((7, 7), (1, 2, 4)),
                                       ((5, 3), (1, 3)), ((8, 8), (2, ))])
def test_batched_region_attention_matches_the_per_scale_loop(hw, scales):
    torch.manual_seed(1)
    neck = DualAttentionPerception(in_channels=C, embed_dim=D,
                                   region_scales=scales).double()
    with torch.no_grad():  # a non-zero fusion, so every branch counts
        neck.fuse_proj.weight.normal_()
    grid, glob = (t.double().requires_grad_() for t in _inputs(3, *hw))
    feat, maps = neck.forward_with_maps((grid, glob))
    ref = _loop_attend(neck, grid)
    ref_feat = neck._fuse(ref, glob)
    torch.testing.assert_close(feat, ref_feat, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(maps['scale_weights'], ref['scale_weights'])
    for scale in scales:
        torch.testing.assert_close(maps['regions'][scale],
                                   ref['regions'][scale])
    # the same gradients for the input and every parameter
    g = torch.randn_like(feat)
    params = [grid] + list(neck.parameters())
    new = torch.autograd.grad(feat, params, g, allow_unused=True)
    old = torch.autograd.grad(ref_feat, params, g, allow_unused=True)
    for a, b in zip(new, old):
        if a is None or b is None:
            assert a is None and b is None
            continue
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
