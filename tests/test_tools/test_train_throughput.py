# Copyright (c) rsitr_mm contributors. All rights reserved.
"""tools/benchmarks/train_throughput.py in its CPU (CI-size) mode, and the
full-size random towers behind ``--random-init``."""
import os.path as osp

import pytest
from mmengine.config import Config

from rsitr_mm.models.utils import localise_random, random_clip_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def script(load_tool):
    return load_tool('benchmarks', 'train_throughput')


def test_cpu_mode_reports_flops_groups_and_profile(script, capsys):
    script.main([
        osp.join(REPO, 'configs', 'osdpm_rsicd.py'), '--tiny', '--iters',
        '4', '--warmup', '1', '--reps', '1', '--mfu', '--profile',
        '--profile-rows', '3'
    ])
    out = capsys.readouterr().out
    # OSDPM's paramwise_cfg resolves into a handful of merged groups
    assert 'Runner optimizer: 4 parameter groups' in out
    flops = float(out.split('torch.utils.flop_counter): ')[1].split()[0])
    assert flops > 0
    assert '| fp32 |' in out and 'n/a (CPU)' in out
    assert '### Profile: Runner, fp32, 3 iterations' in out
    assert 'Python functions by own time' in out


def test_amp_and_tf32_need_a_gpu(script):
    with pytest.raises(SystemExit, match='need --device cuda'):
        script.main([
            osp.join(REPO, 'configs', 'osdpm_rsicd.py'), '--tiny',
            '--precisions', 'tf32'
        ])


def test_random_clip_config_has_the_real_shapes():
    cfg = random_clip_config('ViT-B-32')
    v, t = cfg.vision_config, cfg.text_config
    assert (v.hidden_size, v.num_hidden_layers, v.num_attention_heads,
            v.patch_size, v.image_size, v.intermediate_size) == \
        (768, 12, 12, 32, 224, 3072)
    assert (t.hidden_size, t.num_hidden_layers, t.num_attention_heads,
            t.vocab_size, t.max_position_embeddings) == (512, 12, 8, 49408,
                                                         77)
    assert cfg.projection_dim == 512
    with pytest.raises(ValueError, match='unknown CLIP architecture'):
        random_clip_config('ViT-X-99')


def test_localise_random_keeps_every_width():
    model = Config.fromfile(osp.join(REPO, 'configs',
                                     'osdpm_rsicd.py')).model.to_dict()
    out = localise_random(model, '/clip', '/ann.json')
    assert out['image_encoder']['pretrained'] == '/clip'
    assert out['text_encoder']['pretrained'] == '/clip'
    assert out['embed_dim'] == 512
    assert out['image_neck']['in_channels'] == 768
    assert out['heads'][0]['ann_file'] == '/ann.json'
