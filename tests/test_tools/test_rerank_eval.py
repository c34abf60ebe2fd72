# Copyright (c) rsitr_mm contributors. All rights reserved.
"""tools/analysis_tools/rerank_eval.py on a tiny random checkpoint."""
import importlib.util
import json
from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / 'tools' / 'analysis_tools' / 'rerank_eval.py'

# lines after the tiny demo model (tests/conftest.py)
CONFIG = """\
test_dataloader = dict(batch_size=8, dataset=dict(data_root=data_root))
"""


def test_rerank_eval_rows(tmp_path, capsys, tiny_demo):
    data_root = tiny_demo.dataset(tmp_path, num_images=30, split=(10, 4, 16),
                                  seed=0)
    cfg_path = tmp_path / 'cfg.py'
    tiny_demo.config(cfg_path, data_root, CONFIG)
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
