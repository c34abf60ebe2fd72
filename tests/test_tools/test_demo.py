# Copyright (c) rsitr_mm contributors. All rights reserved.
"""``tools/demo.py`` (``make demo``) end to end, shrunk: the header tells
CPU from GPU, the thread choice is logged once, the PNG is written."""
import os
import os.path as osp
import subprocess
import sys

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_demo_runs_and_says_what_it_runs_on(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE='1')
    env.pop('OMP_NUM_THREADS', None)
    env.pop('RSITR_MM_THREADS', None)
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'demo.py'),
         '--num-images', '80', '--image-size', '32', '--epochs', '1',
         '--data-root', 'data', '--work-dir', 'work'],
        cwd=str(tmp_path), env=env, capture_output=True, text=True,
        timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert out.count('intra-op threads: ') == 1
    assert 'auto: ' in out.split('intra-op threads: ')[1].splitlines()[0]
    if torch.cuda.is_available():
        assert '[2/4] Training (GPU)' in out
    else:
        assert '[2/4] Training (CPU)' in out
        assert 'Processes: 1 (CPU)' in out and 'GPU number' not in out
    assert 'ranks #' in out
    assert (tmp_path / 'work' / 'retrieval_example.png').is_file()
