# Copyright (c) rsitr_mm contributors. All rights reserved.
"""tools/train.py then tools/test.py on OSDPM + LoRA (tiny CLIP, generated
scenes): the adapters learn, the frozen tower weights stay those of the
CLIP directory, and the checkpoint evaluates."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from rsitr_mm.datasets.synthetic import generate_synthetic_dataset
from rsitr_mm.models.utils import make_tiny_clip_dir

REPO = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

CONFIG = """
_base_ = [r'{repo}/configs/demo_osdpm_synthetic.py']
custom_imports = dict(imports=['rsitr_mm'], allow_failed_imports=False)
data_root = r'{data_root}'
clip_path = r'{clip_dir}'
lora = dict(alpha=16, rank=4, drop_rate=0.0,
            targets=[dict(type='q_proj'), dict(type='v_proj')])
model = dict(
    image_encoder=dict(
        _delete_=True, type='LoRATower',
        module=dict(type='CLIPVisionBackbone', pretrained=clip_path,
                    out_indices=(-1, )),
        **lora),
    text_encoder=dict(
        _delete_=True, type='LoRATower',
        module=dict(type='CLIPTextEncoder', pretrained=clip_path,
                    max_length=40),
        **lora),
    image_neck=dict(in_channels=32, embed_dim=32),
    embed_dim=32,
    heads=[dict(type='ObjectSemanticClusterHead', embed_dim=32,
                ann_file=data_root + '/dataset_synthetic.json',
                split='train', top_k=30, prototype='learnable',
                temperature=0.1, loss_weight=1.0, text_weight=0.5)])
train_dataloader = dict(batch_size=8, dataset=dict(data_root=data_root))
val_dataloader = dict(batch_size=8, dataset=dict(data_root=data_root))
test_dataloader = dict(batch_size=8, dataset=dict(data_root=data_root))
train_cfg = dict(max_epochs=1, val_interval=1)
param_scheduler = []
default_hooks = dict(logger=dict(interval=1))
"""


def _run(args, cwd):
    # import rsitr_mm from this checkout, whatever copy is installed
    env = dict(
        os.environ, HF_HUB_OFFLINE='1', PYTHONUNBUFFERED='1', PYTHONPATH=REPO)
    proc = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp('peft_cli')
    data_root = str(root / 'data')
    generate_synthetic_dataset(
        data_root,
        num_images=24,
        image_size=32,
        seed=1,
        split=(16, 4, 4),
        progress=False)
    clip_dir = make_tiny_clip_dir(str(root / 'clip'))
    cfg = root / 'osdpm_lora_tiny.py'
    cfg.write_text(
        CONFIG.format(repo=REPO, data_root=data_root, clip_dir=clip_dir))
    return root, str(cfg), clip_dir


def test_train_then_test_with_lora(setup):
    root, cfg, clip_dir = setup
    work = str(root / 'work')
    _run([sys.executable, f'{REPO}/tools/train.py', cfg, '--work-dir', work],
         cwd=str(root))
    ckpt = osp.join(work, 'epoch_1.pth')
    sd = torch.load(ckpt, map_location='cpu', weights_only=False)['state_dict']

    # the adapters learnt (B starts at 0) ...
    ups = [k for k in sd if '.lora_up.' in k]
    assert len(ups) == 8  # 2 towers x 2 layers x (q, v)
    assert all(sd[k].abs().sum() > 0 for k in ups)
    # ... the new modules too, and the frozen weights are the directory's
    assert sd['image_neck.fuse_proj.weight'].abs().sum() > 0
    from transformers import CLIPModel
    ref = CLIPModel.from_pretrained(clip_dir, local_files_only=True)
    ref = ref.state_dict()
    q = 'vision_model.encoder.layers.0.self_attn.q_proj.weight'
    assert torch.equal(
        sd['image_encoder.module.model.' +
           q.replace('q_proj.', 'q_proj.original_layer.')], ref[q])
    k = 'text_model.encoder.layers.1.mlp.fc1.weight'
    assert torch.equal(sd['text_encoder.module.model.' + k], ref[k])

    out = _run([
        sys.executable, f'{REPO}/tools/test.py', cfg, ckpt, '--work-dir',
        str(root / 'test')
    ],
               cwd=str(root))
    assert '| i2t_R@1 | i2t_R@5 |' in out
