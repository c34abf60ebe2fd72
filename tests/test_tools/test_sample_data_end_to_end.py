# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Train, test and search with the shipped SSJDN and OSDPM configs on the
real RSICD sample, moved with one ``--cfg-options data_root=DIR``.

The sample (55 real RSICD images, official captions, 47 train / 8 test,
``../shared/data``) is laid out as a dataset root of symbolic links with
the layout of docs/datasets.md. Everything else is the user's command line:
``tools/train.py`` and ``tools/test.py`` on ``configs/ssjdn_rsicd.py`` and
``configs/osdpm_rsicd.py``, shrunk with ``--cfg-options`` (tiny towers as
in tests/test_configs.py, 16 training captions, one epoch, no
validation), then text-to-image search through :mod:`rsitr_mm.apis` with
the config and checkpoint alone: no data path in the model config, the
BiGRU vocabulary and OSFCM prototypes come from the checkpoint.
"""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

TRAIN = [
    'train_dataloader.batch_size=8', 'train_dataloader.num_workers=0',
    'train_dataloader.dataset.indices=16', 'train_cfg.max_epochs=1',
    'default_hooks.checkpoint.save_best=None'
]
TEST = ['test_dataloader.batch_size=8', 'test_dataloader.num_workers=0']


def _ssjdn_model():
    """ResNet-50 at base width 8 (random init), small BiGRU, 64 px."""
    return [
        'model.image_encoder.init_cfg=None',
        'model.image_encoder.base_channels=8',
        'model.image_encoder.stem_channels=8',
        'model.image_neck.in_channels=[64,128,256]',
        'model.image_in_channels=256', 'model.text_encoder.word_dim=16',
        'model.text_encoder.hidden_dim=32', 'model.text_in_channels=32'
    ], 64


def _osdpm_model(clip_dir):
    """The tiny random CLIP (width 32, 32 px, 2 layers)."""
    return [
        f'model.image_encoder.pretrained={clip_dir}',
        f'model.text_encoder.pretrained={clip_dir}',
        'model.image_neck.in_channels=32', 'model.image_neck.embed_dim=32',
        'model.embed_dim=32', 'model.heads.0.embed_dim=32'
    ], 32


@pytest.fixture(scope='module')
def rsicd_root(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp('moved') / 'rsicd'
    root.mkdir()
    sample = osp.join(shared_data, 'rsicd_sample')
    os.symlink(osp.join(sample, 'dataset_rsicd_sample.json'),
               root / 'dataset_rsicd.json')
    os.symlink(osp.join(sample, 'images'), root / 'images')
    os.symlink(osp.join(shared_data, 'annotations', 'rsicd_classes'),
               root / 'rsicd_classes')
    return str(root)


def _run(args, cwd):
    env = dict(os.environ, HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1',
               PYTHONPATH=REPO)
    proc = subprocess.run([sys.executable] + args, cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


@pytest.mark.parametrize('method', ['ssjdn', 'osdpm'])
def test_train_test_search_with_one_data_root(method, rsicd_root,
                                              tmp_path):
    from rsitr_mm.apis import ImageIndex, init_retriever, search_by_text
    from rsitr_mm.models.utils import make_tiny_clip_dir
    config = osp.join(REPO, 'configs', f'{method}_rsicd.py')
    if method == 'ssjdn':
        model_opts, size = _ssjdn_model()
    else:
        model_opts, size = _osdpm_model(
            make_tiny_clip_dir(str(tmp_path / 'clip')))
    root = [f'data_root={rsicd_root}']
    train = root + TRAIN + model_opts + [
        f'train_dataloader.dataset.pipeline.1.scale={size}']
    test = root + TEST + model_opts + [
        f'test_dataloader.dataset.pipeline.1.scale=({size},{size})']
    work = str(tmp_path / 'work')
    out = _run([osp.join(REPO, 'tools', 'train.py'), config, '--work-dir',
                work, '--no-validate', '--cfg-options'] + train, REPO)
    assert 'data_root' in out and 'moved' in out  # the re-root message
    assert re.search(r'Epoch\(train\) +\[1\]\[2/2\]', out), out[-3000:]
    ckpt = osp.join(work, 'epoch_1.pth')
    out = _run([osp.join(REPO, 'tools', 'test.py'), config, ckpt,
                '--work-dir', work, '--cfg-options'] + test, REPO)
    rsum = re.findall(r'retrieval/rsum: ([0-9.]+)', out)
    assert rsum, out[-3000:]  # 8 test images x 5 captions evaluated
    # search: config + checkpoint + model overrides, no data path at all
    model = init_retriever(config, ckpt, cfg_options=_as_options(model_opts))
    images = sorted(
        osp.join(rsicd_root, 'images', f)
        for f in os.listdir(osp.join(rsicd_root, 'images')))[:12]
    index = ImageIndex.build(model, images, str(tmp_path / 'index'),
                             batch_size=6, progress=False)
    result = search_by_text(model, index, 'many buildings and green trees',
                            k=3)
    assert len(result.items[0]) == 3
    assert all(item in images for item in result.items[0])


def _as_options(opts):
    """``--cfg-options`` strings as the tools parse them."""
    import argparse

    from mmengine.config import DictAction
    parser = argparse.ArgumentParser()
    parser.add_argument('--o', nargs='+', action=DictAction)
    return parser.parse_args(['--o'] + opts).o
