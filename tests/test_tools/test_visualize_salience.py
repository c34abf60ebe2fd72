# Copyright (c) rsitr_mm contributors. All rights reserved.
import importlib.util
import os.path as osp
import runpy
import sys

import mmcv
import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModule

import rsitr_mm  # noqa: F401  (registers the modules)
from mmpretrain.registry import MODELS
from rsitr_mm.apis import init_retriever

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'visualization', 'visualize_salience.py')
OLD_TOOL = osp.join(REPO, 'tools', 'visualize_salience.py')


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
        type='RetrievalDataPreprocessor', mean=[127.5] * 3,
        std=[64.0] * 3, to_rgb=True))
"""


def _load_tool():
    spec = importlib.util.spec_from_file_location('visualize_salience', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _files(tmp_path):
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text(CONFIG)
    img_file = tmp_path / 'scene.png'
    mmcv.imwrite((np.random.rand(48, 40, 3) * 255).astype(np.uint8),
                 str(img_file))
    return str(cfg_file), str(img_file)


def test_tool_writes_png(tmp_path, capsys):
    tool = _load_tool()
    cfg_file, img_file = _files(tmp_path)
    # a checkpoint of the same model: CONFIG CHECKPOINT IMAGE
    model = init_retriever(cfg_file)
    ckpt = tmp_path / 'model.pth'
    torch.save(dict(state_dict=model.state_dict()), str(ckpt))
    out = tmp_path / 'maps.png'
    assert tool.main([cfg_file, str(ckpt), img_file, '--out', str(out),
                      '--img-size', '32']) == 0
    assert out.is_file() and out.stat().st_size > 0
    # 2 directions x (salience, suppression) rows x (image + 3 scales)
    assert '(16 panels)' in capsys.readouterr().out
    image = mmcv.imread(img_file)
    _, maps = tool.compute_maps(model.eval(), image)
    assert [m.shape[-1] for m in maps['salience']['f2c']] == [10, 5, 3]


def test_tool_refuses_a_missing_checkpoint(tmp_path, capsys):
    tool = _load_tool()
    cfg_file, img_file = _files(tmp_path)
    out = str(tmp_path / 'maps.png')
    for argv, message in (
        ([cfg_file, img_file], 'CHECKPOINT is missing'),
        ([cfg_file, str(tmp_path / 'no.pth'), img_file], 'does not exist'),
        ([cfg_file, img_file, img_file, '--random-init'], 'not both'),
    ):
        with pytest.raises(SystemExit) as exc:
            tool.main(argv + ['--out', out])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert message in err and '--random-init' in err
    assert not osp.exists(out)
    # an untrained model on purpose
    assert tool.main([cfg_file, img_file, '--random-init', '--out', out,
                      '--img-size', '32']) == 0
    assert osp.isfile(out)


def test_old_path_and_order_forward(tmp_path, monkeypatch, capsys):
    """``tools/visualize_salience.py IMAGE CONFIG`` (no checkpoint: an
    untrained model, as it always did) still works."""
    cfg_file, img_file = _files(tmp_path)
    out = tmp_path / 'old.png'
    monkeypatch.setattr(sys, 'argv', [
        OLD_TOOL, img_file, cfg_file, '--out', str(out), '--img-size', '32'
    ])
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(OLD_TOOL, run_name='__main__')
    assert exc.value.code == 0
    captured = capsys.readouterr()
    assert 'moved to tools/visualization/visualize_salience.py' in \
        captured.err
    assert out.is_file() and 'panels' in captured.out


def test_tool_rejects_neck_without_maps(tmp_path):
    tool = _load_tool()

    class Fake(nn.Module):
        def __init__(self):
            super().__init__()
            self.image_encoder = nn.Identity()
            self.image_neck = nn.Identity()

    with pytest.raises(ValueError, match='forward_with_maps'):
        tool.compute_maps(Fake(), np.zeros((8, 8, 3), np.uint8))
