# Copyright (c) rsitr_mm contributors. All rights reserved.
"""A CLIP model runs from a checkpoint with only the config and tokenizer
files of its towers: ``init_retriever``, mmpretrain's inferencers and
``tools/test.py`` (no weight download; the checkpoint holds every tower
weight)."""
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from rsitr_mm.apis import init_retriever
from rsitr_mm.models.utils import make_tiny_clip_dir
from rsitr_mm.models.utils.hf_utils import WEIGHT_FILES, has_weight_files

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs', 'clip_vit-b32_zeroshot_rsicd.py')


def _options(clip_dir):
    return {'model.image_encoder.pretrained': clip_dir,
            'model.text_encoder.pretrained': clip_dir,
            'model.embed_dim': 32}


@pytest.fixture(scope='module')
def towers(tmp_path_factory):
    """A tiny CLIP folder, a checkpoint of the model built on it, and the
    folder without its weights."""
    root = tmp_path_factory.mktemp('config_only')
    clip_dir = make_tiny_clip_dir(str(root / 'clip'))
    model = init_retriever(CONFIG, cfg_options=_options(clip_dir))
    ckpt = str(root / 'model.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    bare = str(root / 'clip_config_only')
    shutil.copytree(clip_dir, bare)
    for name in WEIGHT_FILES:
        if osp.exists(osp.join(bare, name)):
            os.remove(osp.join(bare, name))
    assert has_weight_files(clip_dir) and not has_weight_files(bare)
    return model.state_dict(), ckpt, bare


def test_init_retriever_takes_tower_weights_from_checkpoint(towers):
    state, ckpt, bare = towers
    model = init_retriever(CONFIG, ckpt, cfg_options=_options(bare))
    for name, value in model.state_dict().items():
        assert torch.equal(value, state[name]), name
    # without the checkpoint the towers are random, not the saved ones
    fresh = init_retriever(CONFIG, cfg_options=_options(bare)).state_dict()
    assert any(not torch.equal(fresh[n], state[n]) for n in state
               if 'image_encoder' in n)


def test_inferencer_runs_from_checkpoint(towers, shared_data):
    from mmpretrain.apis import TextToImageRetrievalInferencer
    _, ckpt, bare = towers
    images = sorted(glob.glob(osp.join(shared_data, 'rsicd_sample',
                                       'images', '*.jpg')))[:4]
    if len(images) < 4:
        pytest.skip('rsicd_sample is absent')
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict(_options(bare))
    infer = TextToImageRetrievalInferencer(
        cfg, pretrained=ckpt, prototype=images, device='cpu')
    out = infer(['a green lake'], topk=2)
    assert len(out[0]) == 2


def test_tools_test_runs_from_checkpoint(towers, shared_data, tmp_path):
    _, ckpt, bare = towers
    root = osp.join(shared_data, 'rsicd_sample')
    if not osp.isdir(root):
        pytest.skip('rsicd_sample is absent')
    out = str(tmp_path / 'metrics.json')
    options = dict(_options(bare))
    loader = dict(num_workers=0, batch_size=4)
    dataset = dict(data_root=root, ann_file='dataset_rsicd_sample.json',
                   class_map=None)
    options.update({f'test_dataloader.{k}': v for k, v in loader.items()})
    options.update(
        {f'test_dataloader.dataset.{k}': v for k, v in dataset.items()})
    cmd = [sys.executable, osp.join(REPO, 'tools', 'test.py'), CONFIG, ckpt,
           '--work-dir', str(tmp_path / 'work'), '--out', out,
           '--cfg-options'] + [f'{k}={v}' for k, v in options.items()]
    env = dict(os.environ, HF_HUB_OFFLINE='1')
    proc = subprocess.run(cmd, cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert 'holds no weight file' in proc.stdout + proc.stderr
    assert 0 <= json.load(open(out))['retrieval/rsum'] <= 600
