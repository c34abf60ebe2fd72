# Copyright (c) rsitr_mm contributors. All rights reserved.
"""tools/analysis_tools/rerank_eval.py on a tiny random checkpoint."""
import importlib.util
import json
from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS

from rsitr_mm.datasets.synthetic import generate_synthetic_dataset

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / 'tools' / 'analysis_tools' / 'rerank_eval.py'

CONFIG = """
_base_ = [r'{repo}/configs/demo_tinycnn-bigru_synthetic.py']
data_root = r'{data_root}'
model = dict(
    image_encoder=dict(base_channels=8, num_stages=3, out_indices=(2, )),
    image_in_channels=32,
    text_encoder=dict(ann_files=[data_root + '/dataset_synthetic.json'],
                      word_dim=16, hidden_dim=32),
    text_in_channels=32,
    embed_dim=32)
test_dataloader = dict(batch_size=8, dataset=dict(data_root=data_root))
"""


def test_rerank_eval_rows(tmp_path, capsys):
    data_root = str(tmp_path / 'data')
    generate_synthetic_dataset(
        data_root, num_images=30, image_size=32, seed=0, split=(10, 4, 16),
        progress=False)
    cfg_path = tmp_path / 'cfg.py'
    cfg_path.write_text(CONFIG.format(repo=REPO, data_root=data_root))
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(str(cfg_path)).model)
    ckpt = tmp_path / 'model.pth'
    torch.save(dict(state_dict=model.state_dict()), ckpt)

    spec = importlib.util.spec_from_file_location('rerank_eval', TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / 'rows.json'
    assert tool.main([str(cfg_path), str(ckpt), '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    assert 'test: 16 images, 80 captions' in printed
    rows = json.loads(out.read_text())
    assert [r['rerank'] for r in rows] == ['raw'] + [
        label for label, _ in tool.DEFAULT_RERANKERS]
    for row in rows:
        assert abs(row['rsum'] - sum(
            row[k] for k in ('i2t_R@1', 'i2t_R@5', 'i2t_R@10', 't2i_R@1',
                             't2i_R@5', 't2i_R@10'))) < 1e-9
