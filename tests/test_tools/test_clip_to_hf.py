# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Exactness of tools/model_converters/clip_to_hf.py against OpenCLIP."""
import os
import os.path as osp

import pytest
import torch

from rsitr_mm.models.backbones import CLIPTextEncoder, CLIPVisionBackbone
from rsitr_mm.models.utils import convert_clip_checkpoint, infer_clip_arch

open_clip = pytest.importorskip('open_clip')
from open_clip.model import CLIP  # noqa: E402

TEXTS = ['a photo of a cat', 'Two planes are parked near the terminal.']


@pytest.fixture(scope='module')
def tool(load_tool):
    return load_tool('model_converters', 'clip_to_hf')


def tiny_open_clip(quick_gelu: bool, seed: int = 0, width: int = 128):
    torch.manual_seed(seed)
    model = CLIP(
        embed_dim=24,
        vision_cfg=dict(
            layers=2, width=width, head_width=64, patch_size=8, image_size=32),
        text_cfg=dict(
            context_length=77,
            vocab_size=49408,
            width=width,
            heads=width // 64,
            layers=2),
        quick_gelu=quick_gelu).eval()
    with torch.no_grad():
        model.logit_scale.fill_(3.21)
    return model


def assert_same(model, out_dir, atol=1e-4):
    from transformers import CLIPModel
    vision = CLIPVisionBackbone(pretrained=out_dir).eval()
    text = CLIPTextEncoder(pretrained=out_dir).eval()
    images = torch.randn(3, 3, 32, 32)
    tokens = open_clip.get_tokenizer('ViT-B-32')(TEXTS)
    with torch.no_grad():
        img_diff = (vision(images)[-1] - model.encode_image(images)).abs()
        txt_diff = (text(TEXTS) - model.encode_text(tokens)).abs()
    assert img_diff.max() < atol and txt_diff.max() < atol
    hf = CLIPModel.from_pretrained(out_dir, local_files_only=True)
    assert abs(hf.logit_scale.item() - model.logit_scale.item()) < 1e-6


@pytest.fixture(scope='module')
def quick_model():
    return tiny_open_clip(quick_gelu=True)


@pytest.mark.parametrize('layout', ['plain', 'wrapped', 'torchscript'])
def test_openai_layouts_are_exact(quick_model, tmp_path, layout):
    src = str(tmp_path / 'clip.pt')
    sd = quick_model.state_dict()
    if layout == 'plain':
        # OpenAI state dicts carry these metadata entries
        sd = dict(
            sd,
            input_resolution=torch.tensor(32),
            context_length=torch.tensor(77),
            vocab_size=torch.tensor(49408))
        torch.save(sd, src)
    elif layout == 'wrapped':
        torch.save(
            dict(
                epoch=3, state_dict={
                    f'module.{k}': v
                    for k, v in sd.items()
                }), src)
    else:
        torch.jit.save(torch.jit.script(quick_model), src)
    out = str(tmp_path / 'hf')
    act = 'quick_gelu' if layout == 'wrapped' else 'auto'
    info = convert_clip_checkpoint(src, out, act=act)
    assert info['hidden_act'] == 'quick_gelu'
    assert info['vision_width'] == 128 and info['patch_size'] == 8
    assert info['image_size'] == 32 and info['embed_dim'] == 24
    assert_same(quick_model, out)
    # written atomically: no temporary folder left next to the output
    assert sorted(os.listdir(tmp_path)) == ['clip.pt', 'hf']


def test_openclip_gelu_model_via_cli(tool, tmp_path):
    model = tiny_open_clip(quick_gelu=False, seed=1)
    src = str(tmp_path / 'open_clip_model.pt')
    torch.save({'model': model.state_dict()}, src)
    out = str(tmp_path / 'hf')
    tool.main([src, out])  # auto -> gelu for an OpenCLIP state dict
    assert_same(model, out)
    # the activation matters: converting with the wrong one differs
    wrong = str(tmp_path / 'hf_wrong')
    tool.main([src, wrong, '--act', 'quick_gelu'])
    enc = CLIPTextEncoder(pretrained=wrong).eval()
    tokens = open_clip.get_tokenizer('ViT-B-32')(TEXTS)
    with torch.no_grad():
        diff = (enc(TEXTS) - model.encode_text(tokens)).abs().max()
    assert diff > 1e-4
    with pytest.raises(FileExistsError):
        tool.main([src, out])
    tool.main([src, out, '--overwrite'])


def test_head_override_and_arch_check(tmp_path):
    model = tiny_open_clip(quick_gelu=True, width=64)
    # head_width 64 gives 1 head; override to show the option works
    src = str(tmp_path / 'm.pt')
    torch.save(model.state_dict(), src)
    with pytest.raises(ValueError, match='does not look like ViT-B-32'):
        convert_clip_checkpoint(src, str(tmp_path / 'x'), arch='ViT-B-32')
    assert not osp.exists(str(tmp_path / 'x'))
    info = convert_clip_checkpoint(
        src,
        str(tmp_path / 'hf'),
        act='quick_gelu',
        vision_heads=1,
        text_heads=1)
    assert info['name'] == 'custom'
    assert_same(model, str(tmp_path / 'hf'))


@pytest.mark.parametrize('name,kwargs', [
    ('ViT-B-32',
     dict(embed_dim=512, patch=32, size=224, vw=768, vl=12, tw=512, th=8)),
    ('ViT-B-16',
     dict(embed_dim=512, patch=16, size=224, vw=768, vl=12, tw=512, th=8)),
    ('ViT-L-14',
     dict(embed_dim=768, patch=14, size=224, vw=1024, vl=24, tw=768, th=12)),
])
def test_infers_real_architectures(name, kwargs):
    with torch.device('meta'):
        model = CLIP(
            embed_dim=kwargs['embed_dim'],
            vision_cfg=dict(
                layers=kwargs['vl'],
                width=kwargs['vw'],
                patch_size=kwargs['patch'],
                image_size=kwargs['size']),
            text_cfg=dict(width=kwargs['tw'], heads=kwargs['th'], layers=12))
    arch = infer_clip_arch(model.state_dict())
    assert arch['name'] == name
    assert arch['vision_width'] == kwargs['vw']
    assert arch['vision_mlp'] == 4 * kwargs['vw']
    assert arch['context_length'] == 77 and arch['vocab_size'] == 49408


def test_rejects_unsupported_checkpoints(quick_model, tmp_path):
    sd = dict(quick_model.state_dict(), logit_bias=torch.tensor(-10.))
    src = str(tmp_path / 'siglip.pt')
    torch.save(sd, src)
    with pytest.raises(ValueError, match='logit_bias'):
        convert_clip_checkpoint(src, str(tmp_path / 'a'))
    sd = {'visual.layer1.0.conv1.weight': torch.zeros(1)}
    torch.save(sd, src)
    with pytest.raises(ValueError, match='ViT'):
        convert_clip_checkpoint(src, str(tmp_path / 'b'))
    with pytest.raises(FileNotFoundError):
        convert_clip_checkpoint(str(tmp_path / 'none.pt'), str(tmp_path / 'c'))
