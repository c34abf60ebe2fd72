# Copyright (c) rsitr_mm contributors. All rights reserved.
"""LoRATower: identity at start, only adapters and new modules learn, full
state dict, and the shipped LoRA configs build."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from rsitr_mm.datasets.synthetic import generate_synthetic_dataset
from rsitr_mm.models.backbones import CLIPTextEncoder, CLIPVisionBackbone
from rsitr_mm.models.peft import LoRATower
from rsitr_mm.models.utils import make_tiny_clip_dir

REPO = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
QV = [dict(type='q_proj'), dict(type='v_proj')]


@pytest.fixture(scope='module')
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp('peft')
    ann = generate_synthetic_dataset(
        str(root / 'synth'),
        num_images=8,
        image_size=32,
        seed=0,
        split=(4, 2, 2),
        progress=False)
    return dict(clip_dir=make_tiny_clip_dir(str(root / 'clip')), ann=ann)


def _osdpm_lora(assets):
    """configs/osdpm_lora_rsitmd.py at tiny-CLIP scale."""
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'osdpm_lora_rsitmd.py'))
    m = cfg.model.to_dict()
    for key in ('image_encoder', 'text_encoder'):
        assert m[key]['type'] == 'LoRATower'
        m[key]['module']['pretrained'] = assets['clip_dir']
    m['image_neck'].update(in_channels=32, embed_dim=32)
    m['heads'][0].update(
        embed_dim=32, ann_file=assets['ann'], priors_file=None)
    m['embed_dim'] = 32
    m['image_encoder']['drop_rate'] = 0.0  # deterministic outputs
    m['text_encoder']['drop_rate'] = 0.0
    return MODELS.build(m)


def _batch(model, b=4):
    torch.manual_seed(0)
    images = torch.randint(0, 255, (b, 3, 32, 32), dtype=torch.uint8)
    samples = []
    for i in range(b):
        s = DataSample().set_gt_label(i % 2)
        s.set_field(f'a caption number {i} with two tanks', 'text')
        s.set_field(i // 2, 'image_id')
        samples.append(s)
    return model.data_preprocessor(
        dict(inputs=images, data_samples=samples), True)


def test_lora_starts_as_identity(assets):
    d = assets['clip_dir']
    images = torch.randn(2, 3, 32, 32)
    plain = CLIPVisionBackbone(pretrained=d, out_indices=(0, -1)).eval()
    lora = LoRATower(
        module=dict(
            type='CLIPVisionBackbone', pretrained=d, out_indices=(0, -1)),
        alpha=16,
        rank=4,
        targets=QV + [dict(type='fc1')]).eval()
    assert len(lora.lora_layers) == 6  # 2 layers x (q, v, fc1)
    with torch.no_grad():
        for a, b in zip(plain(images), lora(images)):
            assert torch.equal(a, b)
    texts = ['two tanks near a road', 'a bridge']
    plain_t = CLIPTextEncoder(pretrained=d).eval()
    lora_t = LoRATower(
        module=dict(type='CLIPTextEncoder', pretrained=d), rank=2,
        targets=QV).eval()
    with torch.no_grad():
        assert torch.equal(plain_t(texts), lora_t(texts))
    # what the retriever reads from an encoder is forwarded to the tower
    assert lora.out_channels == 32 and lora.embed_dim == 32
    assert lora_t.out_channels == 32 and lora_t.max_length == 77
    assert lora_t.tokenize(texts)['input_ids'].shape[0] == 2
    assert lora.model is lora.module.model  # a sub-module of the tower


def test_only_adapters_and_new_modules_get_gradients(assets):
    model = _osdpm_lora(assets)
    model.train()
    losses = model(**_batch(model), mode='loss')
    sum(losses.values()).backward()
    lora_up, lora_down = 0, 0
    for name, p in model.named_parameters():
        in_tower = name.startswith(('image_encoder.', 'text_encoder.'))
        if in_tower and '.lora_' not in name:
            assert not p.requires_grad and p.grad is None, name
        elif '.lora_up' in name:
            # B = 0 at start: B gets a gradient, A's is exactly zero
            assert p.grad is not None and p.grad.abs().sum() > 0, name
            lora_up += 1
        elif '.lora_down' in name:
            assert p.grad is not None and not p.grad.any(), name
            lora_down += 1
        else:  # DAPN, OSFCM, logit scale
            assert p.requires_grad and p.grad is not None, name
    assert lora_up == lora_down == 8  # 2 towers x 2 layers x (q, v)
    # DAPN starts as a zero-initialised residual projection: it learns first
    assert model.image_neck.fuse_proj.weight.grad.abs().sum() > 0
    assert model.logit_scale.grad is not None
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    n_lora = sum(p.numel() for t in (model.image_encoder, model.text_encoder)
                 for p in t.lora_parameters())
    n_new = sum(p.numel() for m in (model.image_neck, model.heads)
                for p in m.parameters()) + 1
    assert n_train == n_lora + n_new


def test_state_dict_is_complete_and_round_trips(assets, tmp_path):
    model = _osdpm_lora(assets)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    sd = model.state_dict()
    # mmpretrain's LoRAModel hook would keep only '.lora_' keys of the
    # whole model; the neck, head, logit scale and base weights must stay
    assert 'logit_scale' in sd and 'image_neck.fuse_proj.weight' in sd
    assert any(k.startswith('heads.0.') for k in sd)
    assert ('image_encoder.module.model.vision_model.encoder.layers.0.'
            'self_attn.q_proj.original_layer.weight') in sd
    assert {n for n, _ in model.named_parameters()} <= set(sd)
    from mmengine.runner import load_checkpoint, save_checkpoint
    path = str(tmp_path / 'lora.pth')
    save_checkpoint(model.state_dict(), path)
    fresh = _osdpm_lora(assets)
    load_checkpoint(fresh, path, strict=True)
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, sd[k]), k
    fresh.eval(), model.eval()
    data = _batch(model)
    with torch.no_grad():
        a = model(**data, mode='tensor')
        b = fresh(**data, mode='tensor')
    assert torch.equal(a['image_feat'], b['image_feat'])
    assert torch.equal(a['text_feat'], b['text_feat'])


def test_checkpoint_without_lora_loads_into_wrapped_tower(assets):
    d = assets['clip_dir']
    plain = CLIPVisionBackbone(pretrained=d)
    with torch.no_grad():
        for p in plain.parameters():
            p.add_(1.0)  # differs from the directory's weights
    lora = LoRATower(
        module=dict(type='CLIPVisionBackbone', pretrained=d),
        rank=2,
        targets=QV)
    result = lora.load_state_dict(plain.state_dict(), strict=False)
    assert not result.unexpected_keys
    assert result.missing_keys and all('.lora_' in k
                                       for k in result.missing_keys)
    q = 'model.vision_model.encoder.layers.1.self_attn.q_proj'
    assert torch.equal(
        lora.module.get_submodule(q).original_layer.weight,
        plain.get_submodule(q).weight)
    assert torch.equal(lora.module.model.visual_projection.weight,
                       plain.model.visual_projection.weight)


def test_extra_trainable_and_bad_arguments(assets):
    d = assets['clip_dir']
    module = dict(type='CLIPVisionBackbone', pretrained=d)
    lora = LoRATower(
        module=module,
        rank=2,
        targets=QV,
        extra_trainable=['visual_projection.weight'])
    names = [n for n, p in lora.named_parameters() if p.requires_grad]
    assert 'module.model.visual_projection.weight' in names
    assert all('.lora_' in n or 'visual_projection' in n for n in names)
    with pytest.raises(ValueError, match='rank.*positive'):
        LoRATower(module=module, targets=QV)  # rank defaults to 0
    with pytest.raises(ValueError, match='targets.*empty'):
        LoRATower(module=module, rank=2)
    with pytest.raises(ValueError, match='No lora layer'):
        LoRATower(module=module, rank=2, targets=[dict(type='qkv')])
    with pytest.raises(ValueError, match='extra_trainable.*no_such'):
        LoRATower(
            module=module, rank=2, targets=QV, extra_trainable=['no_such'])
