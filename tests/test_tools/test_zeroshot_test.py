# Copyright (c) rsitr_mm contributors. All rights reserved.
"""`tools/test.py <zero-shot config>` evaluates pretrained CLIP weights with
no checkpoint and no training (tiny random CLIP, real RSICD images)."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

from rsitr_mm.models.utils import make_tiny_clip_dir

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_zero_shot_config_runs_without_checkpoint(tmp_path, shared_data):
    root = osp.join(shared_data, 'rsicd_sample')
    if not osp.isdir(root):
        pytest.skip('rsicd_sample is absent')
    clip_dir = make_tiny_clip_dir(str(tmp_path / 'clip'))
    out = str(tmp_path / 'metrics.json')
    cmd = [
        sys.executable, osp.join(REPO, 'tools', 'test.py'),
        osp.join(REPO, 'configs', 'clip_vit-b32_zeroshot_rsicd.py'),
        '--work-dir', str(tmp_path / 'work'), '--out', out,
        '--cfg-options', f'model.image_encoder.pretrained={clip_dir}',
        f'model.text_encoder.pretrained={clip_dir}', 'model.embed_dim=32',
        f'test_dataloader.dataset.data_root={root}',
        'test_dataloader.dataset.ann_file=dataset_rsicd_sample.json',
        'test_dataloader.dataset.class_map=None',
        'test_dataloader.num_workers=0', 'test_dataloader.batch_size=4'
    ]
    env = dict(os.environ, HF_HUB_OFFLINE='1')
    proc = subprocess.run(cmd, cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert '| i2t_R@1 |' in proc.stdout
    metrics = json.load(open(out))
    assert 0 <= metrics['retrieval/rsum'] <= 600
    assert not osp.exists(osp.join(str(tmp_path / 'work'), 'epoch_1.pth'))
