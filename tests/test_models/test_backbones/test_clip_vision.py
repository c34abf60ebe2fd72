# Copyright (c) rsitr_mm contributors. All rights reserved.
import copy

import pytest
import torch

from rsitr_mm.models.backbones import CLIPVisionBackbone
from rsitr_mm.models.utils import make_tiny_clip_dir, tiny_clip_config
from rsitr_mm.models.utils.hf_utils import clip_features


@pytest.fixture(scope='module')
def clip_dir(tmp_path_factory):
    return make_tiny_clip_dir(str(tmp_path_factory.mktemp('tiny_clip')))


@pytest.fixture(scope='module')
def hf_clip(clip_dir):
    from transformers import CLIPModel
    return CLIPModel.from_pretrained(clip_dir, local_files_only=True).eval()


def test_global_embedding_matches_get_image_features(clip_dir, hf_clip):
    backbone = CLIPVisionBackbone(pretrained=clip_dir).eval()
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        outs = backbone(images)
        ref = clip_features(hf_clip.get_image_features(pixel_values=images))
    assert isinstance(outs, tuple) and len(outs) == 2
    assert outs[0].shape == (3, 32, 4, 4)
    assert outs[-1].shape == (3, 32)
    assert backbone.out_channels == 32 and backbone.embed_dim == 32
    assert torch.allclose(outs[-1], ref, atol=1e-6)


def test_grids_are_the_layer_tokens(clip_dir, hf_clip):
    backbone = CLIPVisionBackbone(
        pretrained=clip_dir, out_indices=(0, -1), with_proj=False).eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        first, last, pooled = backbone(images)
        vm = hf_clip.vision_model
        ref = vm(pixel_values=images, output_hidden_states=True)
    # layer 0: raw tokens of the first block, CLS dropped, (B, C, 4, 4) grid
    tok = ref.hidden_states[1][:, 1:]
    assert torch.allclose(first.flatten(2).transpose(1, 2), tok, atol=1e-6)
    # last layer: post-LayerNormed tokens (final_norm=True)
    tok = vm.post_layernorm(ref.last_hidden_state)[:, 1:]
    assert torch.allclose(last.flatten(2).transpose(1, 2), tok, atol=1e-6)
    # the grid is row-major: token k sits at (k // 4, k % 4)
    assert torch.allclose(last[:, :, 1, 2], tok[:, 6], atol=1e-6)
    assert torch.allclose(pooled, ref.pooler_output, atol=1e-6)
    assert backbone.embed_dim == 32


def test_position_interpolation_for_other_sizes(clip_dir):
    backbone = CLIPVisionBackbone(pretrained=clip_dir).eval()
    with torch.no_grad():
        grid, emb = backbone(torch.randn(2, 3, 64, 48))
    assert grid.shape == (2, 32, 8, 6) and emb.shape == (2, 32)
    with pytest.raises(ValueError, match='multiple of the patch size'):
        backbone(torch.randn(1, 3, 30, 32))


def test_random_init_from_config_and_gradients():
    cfg = tiny_clip_config().to_dict()
    backbone = CLIPVisionBackbone(config=cfg, out_indices=())
    out = backbone(torch.randn(2, 3, 32, 32))
    assert len(out) == 1 and out[0].shape == (2, 32)
    out[0].sum().backward()
    grads = [p.grad for p in backbone.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)
    # a tower config dict alone also works
    vision_only = CLIPVisionBackbone(
        config=dict(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=16,
            patch_size=4,
            projection_dim=8))
    assert vision_only(torch.randn(1, 3, 16, 16))[-1].shape == (1, 8)


def test_freezing(clip_dir):
    backbone = CLIPVisionBackbone(pretrained=clip_dir, frozen_stages=1)
    vm = backbone.model.vision_model
    assert not vm.embeddings.patch_embedding.weight.requires_grad
    assert not any(p.requires_grad for p in vm.encoder.layers[0].parameters())
    assert all(p.requires_grad for p in vm.encoder.layers[1].parameters())
    backbone.train()
    assert not vm.encoder.layers[0].training and vm.encoder.layers[1].training
    frozen = CLIPVisionBackbone(pretrained=clip_dir, freeze=True).train()
    assert not any(p.requires_grad for p in frozen.parameters())
    assert not frozen.model.training


def test_init_weights_keeps_loaded_weights(clip_dir):
    backbone = CLIPVisionBackbone(pretrained=clip_dir)
    before = copy.deepcopy(backbone.state_dict())
    backbone.init_weights()
    after = backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_bad_arguments(clip_dir, tmp_path):
    with pytest.raises(ValueError, match='exactly one'):
        CLIPVisionBackbone()
    with pytest.raises(FileNotFoundError, match='local directory'):
        CLIPVisionBackbone(pretrained=str(tmp_path / 'missing'))
    with pytest.raises(ValueError, match='out of range'):
        CLIPVisionBackbone(pretrained=clip_dir, out_indices=(5, ))


def test_build_from_registry(clip_dir):
    from mmpretrain.registry import MODELS
    import rsitr_mm  # noqa: F401
    backbone = MODELS.build(
        dict(type='CLIPVisionBackbone', pretrained=clip_dir))
    assert isinstance(backbone, CLIPVisionBackbone)


def test_hidden_norm_applies_the_final_layernorm_to_earlier_layers():
    from rsitr_mm.models.backbones import CLIPVisionBackbone
    from rsitr_mm.models.utils.tiny_clip import tiny_clip_config
    cfg = tiny_clip_config().vision_config.to_dict()
    torch.manual_seed(0)
    plain = CLIPVisionBackbone(config=cfg, out_indices=(-2, ))
    normed = CLIPVisionBackbone(config=cfg, out_indices=(-2, ),
                                hidden_norm=True)
    normed.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 32, 32)
    raw, glob = plain(x)
    out, glob2 = normed(x)
    torch.testing.assert_close(glob, glob2)
    ln = plain.model.vision_model.post_layernorm
    ref = ln(raw.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(
        raw.shape)
    torch.testing.assert_close(out, ref)
