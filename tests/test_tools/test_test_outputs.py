# Copyright (c) rsitr_mm contributors. All rights reserved.
"""``tools/test.py --out FILE --out-item metrics|pred`` and ``--show-dir``."""
import importlib.util
import json
import os.path as osp
import pickle

import numpy as np
import pytest
import torch

from rsitr_mm.evaluation import retrieval_recall

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _load_tool():
    spec = importlib.util.spec_from_file_location(
        'rsitr_test_tool', osp.join(REPO, 'tools', 'test.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def tool():
    return _load_tool()


def test_out_item_follows_mmpretrain_and_keeps_json_metrics(tool, capsys):
    args = tool.parse_args(['cfg.py', '--out', 'r.pkl'])
    assert args.out_item == 'pred'  # mmpretrain's default
    args = tool.parse_args(['cfg.py', '--out', 'metrics.json'])
    assert args.out_item == 'metrics'  # what --out x.json always wrote
    args = tool.parse_args(['cfg.py', '--out', 'm.pkl', '--out-item',
                            'metrics'])
    assert args.out_item == 'metrics'
    assert tool.parse_args(['cfg.py']).show_num == 10
    for argv, message in ((['--out-item', 'pred'], 'needs --out'),
                          (['--out', 'p.json', '--out-item', 'pred'],
                           '.pkl'),
                          (['--show-dir', 'd', '--show-num', '0'],
                           '--show-num')):
        with pytest.raises(SystemExit):
            tool.parse_args(['cfg.py'] + argv)
        assert message in capsys.readouterr().err


def test_predictions_follow_the_metric_tie_rule(tool):
    # 3 images x 2 captions; image 1 ties its best caption with caption 0
    sim = torch.tensor([[0.9, 0.1, 0.5, 0.2, 0.0, 0.3],
                        [0.7, 0.2, 0.7, 0.6, 0.1, 0.1],
                        [0.2, 0.3, 0.1, 0.4, 0.4, 0.8]])
    pred = tool.build_predictions(sim, 2, topk=4)
    assert pred['similarity'].dtype == np.float32
    np.testing.assert_array_equal(pred['gt_image'], [0, 0, 1, 1, 2, 2])
    # image 1: caption 0 (index 0) wins the tie with its own caption 2
    np.testing.assert_array_equal(pred['i2t_topk'][1], [0, 2, 3, 1])
    np.testing.assert_array_equal(pred['i2t_rank'], [0, 1, 0])
    assert pred['t2i_topk'].shape == (6, 3)  # k capped at 3 images
    # caption 4's scores 0.0 / 0.1 / 0.4: image 2 first
    np.testing.assert_array_equal(pred['t2i_topk'][4], [2, 1, 0])
    for q, rank in enumerate(pred['i2t_rank']):
        assert pred['gt_image'][pred['i2t_topk'][q][rank]] == q
    for q, rank in enumerate(pred['t2i_rank']):
        assert pred['t2i_topk'][q][rank] == pred['gt_image'][q]
    # the ranks reproduce the metric exactly
    metric = retrieval_recall(sim, captions_per_image=2, topk=(1, 2))
    assert metric['i2t_R@1'] == pytest.approx(
        100 * (pred['i2t_rank'] < 1).mean())
    assert metric['t2i_R@2'] == pytest.approx(
        100 * (pred['t2i_rank'] < 2).mean())


# lines after the tiny demo model (tests/conftest.py)
CONFIG = """\
test_dataloader = dict(batch_size=8, num_workers=0,
                       dataset=dict(data_root=data_root))
"""


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory, tiny_demo):
    root = tmp_path_factory.mktemp('test_outputs')
    data_root = tiny_demo.dataset(root, num_images=20, split=(8, 4, 8),
                                  seed=0)
    return root, tiny_demo.config(root / 'cfg.py', data_root, CONFIG)


def test_pred_file_and_grids(tool, run_dir, capsys):
    root, cfg = run_dir
    out, show = str(root / 'pred.pkl'), str(root / 'show')
    tool.main([cfg, '--work-dir', str(root / 'work'), '--out', out,
               '--show-dir', show, '--show-num', '3'])
    printed = capsys.readouterr().out
    assert '| i2t_R@1 |' in printed and 'predictions written' in printed
    with open(out, 'rb') as f:  # plain pickle: no rsitr_mm class inside
        pred = pickle.load(f)
    assert pred['format_version'] == 1
    n, c = 8, pred['captions_per_image']
    assert pred['similarity'].shape == (n, c * n)
    assert len(pred['image_paths']) == n and len(pred['captions']) == c * n
    assert all(osp.isfile(p) for p in pred['image_paths'])
    assert all(isinstance(t, str) and t for t in pred['captions'])
    assert pred['i2t_topk'].shape == (n, 10)
    assert pred['t2i_topk'].shape == (c * n, n)  # k capped at N images
    # the saved ranks give exactly the printed / returned metrics
    recomputed = retrieval_recall(pred['similarity'], c)
    for key, value in recomputed.items():
        assert pred['metrics'][f'retrieval/{key}'] == pytest.approx(value)
    assert pred['metrics']['retrieval/i2t_R@5'] == pytest.approx(
        100 * (pred['i2t_rank'] < 5).mean())
    assert pred['meta'] == dict(config=cfg, checkpoint=None)
    grids = sorted(p.name for p in (root / 'show').iterdir())
    assert grids == ['i2t_00000.png', 'i2t_00001.png', 'i2t_00002.png',
                     't2i_00000.png', 't2i_00001.png', 't2i_00002.png']


def test_json_out_keeps_the_metrics(tool, run_dir, capsys):
    root, cfg = run_dir
    out = root / 'metrics.json'
    tool.main([cfg, '--work-dir', str(root / 'work2'), '--out', str(out)])
    metrics = json.loads(out.read_text())
    assert set(metrics) >= {'retrieval/rsum', 'retrieval/i2t_R@1'}
    assert 'predictions written' not in capsys.readouterr().out
