# Copyright (c) rsitr_mm contributors. All rights reserved.
import importlib.util
import json
import os.path as osp

import mmcv
import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModule

import rsitr_mm  # noqa: F401  (registers the modules)
from mmpretrain.registry import MODELS
from rsitr_mm.models.necks.dapn import DualAttentionPerception
from rsitr_mm.visualization import (draw_attention_maps,
                                    draw_embedding_scatter, pca_2d,
                                    reduce_to_2d, tsne_2d)

TOOLS = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'tools')


def _load_tool(rel_path):
    name = osp.splitext(osp.basename(rel_path))[0]
    spec = importlib.util.spec_from_file_location(name,
                                                  osp.join(TOOLS, rel_path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _is_png(path):
    with open(path, 'rb') as f:
        return f.read(8) == b'\x89PNG\r\n\x1a\n'


# --------------------------------------------------------------------------
# drawing functions, from random tensors
# --------------------------------------------------------------------------
def test_draw_attention_maps_from_random_tensors(tmp_path):
    neck = DualAttentionPerception(in_channels=8, embed_dim=4)
    _, maps = neck.forward_with_maps((torch.randn(2, 8, 7, 7),
                                      torch.randn(2, 4)))
    image = torch.rand(3, 64, 64)  # float (3, H, W) in [0, 1]
    out = draw_attention_maps(image, maps, str(tmp_path / 'a' / 'att.png'),
                              title='random')
    assert osp.isfile(out) and _is_png(out)
    img = mmcv.imread(out)
    # one panel for the image, the spatial map and each of the 3 scales
    assert img.shape[1] > 4 * img.shape[0]


def test_attention_maps_have_one_colour_bar(tmp_path, monkeypatch):
    from matplotlib.figure import Figure
    saved = []
    monkeypatch.setattr(Figure, 'savefig',
                        lambda fig, *a, **k: saved.append(fig))
    neck = DualAttentionPerception(in_channels=8, embed_dim=4,
                                   region_scales=(1, 2))
    _, maps = neck.forward_with_maps((torch.randn(1, 8, 7, 7),
                                      torch.randn(1, 4)))
    draw_attention_maps(torch.rand(3, 32, 32), maps,
                        str(tmp_path / 'att.png'))
    fig, = saved
    # image, spatial, 2 region scales, then the colour bar of the 3 maps
    assert len(fig.axes) == 5
    bar = fig.axes[-1]
    assert bar.get_ylabel() == 'weight (min-max per map)'
    assert bar.get_ylim() == (0.0, 1.0)


def test_pca_and_tsne_separate_clusters(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16)) * 6
    x = np.concatenate([c + rng.normal(size=(40, 16)) for c in centres])
    labels = np.repeat(np.arange(3), 40)
    for pts in (pca_2d(x), tsne_2d(x), reduce_to_2d(x, 'pca')[0]):
        assert pts.shape == (120, 2) and np.isfinite(pts).all()
        cent = np.stack([pts[labels == i].mean(0) for i in range(3)])
        spread = np.mean([
            np.linalg.norm(pts[labels == i] - cent[i], axis=1).mean()
            for i in range(3)
        ])
        gaps = [np.linalg.norm(cent[i] - cent[j])
                for i in range(3) for j in range(i + 1, 3)]
        assert min(gaps) > 2 * spread
    np.testing.assert_allclose(pca_2d(x), pca_2d(x))  # deterministic
    pts, method = reduce_to_2d(torch.from_numpy(x[:20]), 'auto', seed=1)
    assert pts.shape == (20, 2) and method == 'tsne'
    with pytest.raises(ValueError, match='method'):
        reduce_to_2d(x, 'umap')


def test_draw_embedding_scatter(tmp_path):
    pts = torch.randn(50, 2)
    labels = np.r_[np.arange(25) % 15, -np.ones(25, dtype=int)]
    out = draw_embedding_scatter(
        pts, labels, str(tmp_path / 'emb.png'),
        label_names=[f'noun{i}' for i in range(15)], max_legend=5)
    assert _is_png(out)
    with pytest.raises(ValueError, match='N labels'):
        draw_embedding_scatter(pts, labels[:3], str(tmp_path / 'x.png'))


# --------------------------------------------------------------------------
# tools
# --------------------------------------------------------------------------
CAPTIONS = {
    'ship_1.png': ['ships in a harbor', 'two ships', 'a boat'],
    'ship_2.png': ['a ship', 'ships and a boat', 'a harbor'],
    'road_1.png': ['a road with cars', 'cars', 'a road'],
    'road_2.png': ['roads', 'a car on a road', 'a road'],
    'tree_1.png': ['trees', 'a forest', 'trees and a river'],
    'tree_2.png': ['a river', 'trees', 'a forest'],
}


@pytest.fixture
def toy_data(tmp_path):
    root = tmp_path / 'data'
    (root / 'images').mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = []
    for i, (name, caps) in enumerate(CAPTIONS.items()):
        mmcv.imwrite(
            rng.integers(0, 255, size=(40, 40, 3), dtype=np.uint8),
            str(root / 'images' / name))
        images.append(
            dict(filename=name, imgid=i, split='train' if i % 2 else 'test',
                 sentids=[3 * i + j for j in range(3)],
                 sentences=[dict(raw=c, tokens=c.split()) for c in caps]))
    ann = root / 'ann.json'
    ann.write_text(json.dumps(dict(dataset='toy', images=images)))
    return root


@MODELS.register_module(force=True)
class _OSDPMVisTestTextEncoder(BaseModule):
    """Test-only text encoder: caption length through a linear layer."""
    embed_dim = 8

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(1, 8)

    def forward(self, texts):
        return self.fc(torch.tensor([[float(len(t))] for t in texts]))


def _write_config(tmp_path, root):
    cfg = f"""
model = dict(
    type='DualEncoderRetriever',
    image_encoder=dict(
        type='CLIPVisionBackbone',
        config=dict(image_size=32, patch_size=8, hidden_size=16,
                    intermediate_size=32, num_hidden_layers=1,
                    num_attention_heads=2, projection_dim=8)),
    image_neck=dict(type='DualAttentionPerception', in_channels=16,
                    embed_dim=8, region_scales=(1, 2), residual_scale=0.5),
    image_proj='identity',
    text_encoder=dict(type='_OSDPMVisTestTextEncoder'),
    embed_dim=8,
    heads=[dict(type='ObjectSemanticClusterHead', embed_dim=8,
                ann_file='{root}/ann.json', top_k=5)],
    data_preprocessor=dict(
        type='RetrievalDataPreprocessor', mean=[127.5] * 3,
        std=[64.0] * 3, to_rgb=True))
test_dataloader = dict(
    batch_size=2, num_workers=0,
    dataset=dict(
        type='RSRetrievalDataset', data_root='{root}', ann_file='ann.json',
        data_prefix=dict(img_path='images'), split='test', test_mode=True,
        captions_per_image=3,
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=(32, 32)),
            dict(type='PackInputs',
                 algorithm_keys=['text', 'gt_text_id', 'gt_image_id',
                                 'image_id'],
                 meta_keys=['img_path'])]),
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'))
"""
    path = tmp_path / 'osdpm_tiny.py'
    path.write_text(cfg)
    return str(path)


def test_object_vocab_tool(toy_data, tmp_path, capsys):
    tool = _load_tool('analysis_tools/object_vocab.py')
    save = str(tmp_path / 'priors.npz')
    assert tool.main([str(toy_data / 'ann.json'), '--split', 'all',
                      '--top-k', '4', '--save', save]) == 0
    out = capsys.readouterr().out
    assert '6 images' in out and '4 nouns' in out
    assert 'ship (2)' in out and 'road (2)' in out and 'tree (2)' in out
    assert osp.isfile(save)
    assert tool.class_of('airport_12.jpg', {}) == 'airport'
    assert tool.class_of('12.jpg', {'class': 'beach'}) == 'beach'
    assert tool.class_of('12.jpg', {}) == 'all'


def test_visualize_attention_tool(toy_data, tmp_path, capsys):
    tool = _load_tool('visualization/visualize_attention.py')
    config = _write_config(tmp_path, toy_data)
    out = str(tmp_path / 'att.png')
    image = str(toy_data / 'images' / 'ship_1.png')
    with pytest.raises(SystemExit):  # no checkpoint, no --random-init
        tool.main([config, image, '--out', out])
    assert 'CHECKPOINT is missing' in capsys.readouterr().err
    # the test pipeline (Resize 32) sizes the image: no --img-size needed
    assert tool.main([config, image, '--random-init', '--out', out]) == 0
    assert _is_png(out)
    assert 'scale weights 1x1' in capsys.readouterr().out


def test_visualize_embeddings_tool(toy_data, tmp_path, capsys):
    tool = _load_tool('visualization/visualize_embeddings.py')
    config = _write_config(tmp_path, toy_data)
    out = str(tmp_path / 'emb.png')
    assert tool.main([config, '--random-init', '--out', out, '--split',
                      'test', '--max-images', '10', '--method', 'pca']) == 0
    assert _is_png(out)
    text = capsys.readouterr().out
    assert '3 images' in text and '0 without object prior' in text
    labels = np.array([0, 0, 1, 1])
    feats = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]])
    assert tool.knn_agreement(feats, labels, k=1) == 1.0
    assert tool.knn_agreement(feats, np.array([0, 1, 0, 1]), k=1) == 0.0


def test_visualize_embeddings_uses_the_test_pipeline_for_train(
        toy_data, tmp_path, capsys):
    """The train split is drawn with the test pipeline: its own pipeline
    (here one that cannot even be built) is never used."""
    tool = _load_tool('visualization/visualize_embeddings.py')
    config = _write_config(tmp_path, toy_data)
    with open(config, 'a') as f:
        f.write("""
train_dataloader = dict(
    batch_size=2, num_workers=0,
    dataset=dict(
        type='RSRetrievalDataset', data_root='{root}', ann_file='ann.json',
        data_prefix=dict(img_path='images'), split='train',
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='NoSuchAugmentation')]),
    sampler=dict(type='DefaultSampler', shuffle=True))
""".format(root=toy_data))
    out = str(tmp_path / 'emb_train.png')
    assert tool.main([config, '--random-init', '--out', out, '--split',
                      'train', '--method', 'pca']) == 0
    assert '3 images' in capsys.readouterr().out


def test_old_tool_paths_forward(toy_data, tmp_path, monkeypatch, capsys):
    """The old command lines (paths and argument order) keep working."""
    import runpy
    import sys
    config = _write_config(tmp_path, toy_data)
    image = str(toy_data / 'images' / 'ship_1.png')
    runs = [
        ('visualize_attention.py',
         [image, config, '--out', str(tmp_path / 'a.png')],
         'visualization/visualize_attention.py'),
        ('visualize_embeddings.py',
         [config, 'none', '--out', str(tmp_path / 'e.png'), '--method',
          'pca'], 'visualization/visualize_embeddings.py'),
        ('analysis/object_vocab.py',
         [str(toy_data / 'ann.json'), '--split', 'all', '--top-k', '4'],
         'analysis_tools/object_vocab.py'),
    ]
    for old, argv, new in runs:
        path = osp.join(TOOLS, old)
        monkeypatch.setattr(sys, 'argv', [path] + argv)
        with pytest.raises(SystemExit) as exc:
            runpy.run_path(path, run_name='__main__')
        assert exc.value.code == 0, old
        captured = capsys.readouterr()
        assert f'moved to tools/{new}' in captured.err, old
        assert captured.out, old
    assert _is_png(str(tmp_path / 'a.png'))
    assert _is_png(str(tmp_path / 'e.png'))
