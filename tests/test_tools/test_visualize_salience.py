# Copyright (c) rsitr_mm contributors. All rights reserved.
import importlib.util
import os.path as osp
import sys

import mmcv
import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModule

import rsitr_mm  # noqa: F401  (registers the modules)
from mmpretrain.registry import MODELS

TOOL = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'tools',
    'visualize_salience.py')


@MODELS.register_module(force=True)
class _VisTestTextEncoder(BaseModule):
    """Test-only text encoder: a bag of character codes."""
    embed_dim = 8

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(1, 8)

    def forward(self, texts):
        x = torch.tensor([[float(len(t))] for t in texts])
        return self.fc(x)


CONFIG = """
model = dict(
    type='DualEncoderRetriever',
    image_encoder=dict(
        type='TinyCNN', base_channels=4, num_stages=4, out_indices=(1, 2, 3)),
    image_neck=dict(
        type='BidirectionalScaleDecoupling', in_channels=[8, 16, 32],
        channels=8),
    text_encoder=dict(type='_VisTestTextEncoder'),
    embed_dim=16,
    losses=[dict(type='SemanticGuidedTripletLoss', semantic='label')],
    heads=[dict(type='LabelSemanticHead', in_channels=16, num_classes=3,
                semantic_dim=4)],
    data_preprocessor=dict(
        type='MultiModalDataPreprocessor', mean=[127.5] * 3,
        std=[64.0] * 3, to_rgb=True))
"""


def _load_tool():
    spec = importlib.util.spec_from_file_location('visualize_salience', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tool_writes_png(tmp_path, monkeypatch):
    tool = _load_tool()
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text(CONFIG)
    img_file = tmp_path / 'scene.png'
    mmcv.imwrite((np.random.rand(48, 40, 3) * 255).astype(np.uint8),
                 str(img_file))
    # a checkpoint of the same model, to exercise --checkpoint
    model = tool.build_model(str(cfg_file))
    ckpt = tmp_path / 'model.pth'
    torch.save(dict(state_dict=model.state_dict()), str(ckpt))
    out = tmp_path / 'maps.png'
    monkeypatch.setattr(sys, 'argv', [
        'visualize_salience.py',
        str(img_file),
        str(cfg_file), '--checkpoint',
        str(ckpt), '--out',
        str(out), '--img-size', '32'
    ])
    tool.main()
    assert out.is_file() and out.stat().st_size > 0
    image = mmcv.imread(str(img_file))
    _, maps = tool.compute_maps(model.eval(), image)
    assert [m.shape[-1] for m in maps['salience']['f2c']] == [10, 5, 3]


def test_tool_rejects_neck_without_maps(tmp_path):
    tool = _load_tool()

    class Fake(nn.Module):
        def __init__(self):
            super().__init__()
            self.image_encoder = nn.Identity()
            self.image_neck = nn.Identity()

    with pytest.raises(ValueError, match='forward_with_maps'):
        tool.compute_maps(Fake(), np.zeros((8, 8, 3), np.uint8))
