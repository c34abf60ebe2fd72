# Copyright (c) rsitr_mm contributors. All rights reserved.
"""The Runner really trains: loss falls, rsum rises; real RSICD images."""
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

import rsitr_mm  # noqa: F401
from rsitr_mm.datasets.synthetic import generate_synthetic_dataset
from rsitr_mm.engine.launch import set_dataloader_defaults

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'demo_tinycnn-bigru_synthetic.py')


def _small_demo_cfg(work_dir, data_root, ann_file, epochs):
    cfg = Config.fromfile(DEMO)
    cfg.work_dir = str(work_dir)
    cfg.model.image_encoder.base_channels = 16
    cfg.model.image_in_channels = 128
    cfg.model.text_encoder.ann_files = [osp.join(data_root, ann_file)]
    cfg.model.text_encoder.hidden_dim = 64
    cfg.model.text_encoder.word_dim = 32
    cfg.model.text_in_channels = 64
    cfg.model.embed_dim = 64
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root
        cfg[loader].dataset.ann_file = ann_file
    cfg.train_dataloader.batch_size = 32
    cfg.train_cfg.max_epochs = epochs
    cfg.train_cfg.val_interval = epochs
    cfg.param_scheduler = [
        dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=epochs)
    ]
    cfg.default_hooks.logger.interval = 1
    cfg.log_level = 'WARNING'
    set_dataloader_defaults(cfg)
    return cfg


def test_two_epochs_loss_falls_and_rsum_rises(tmp_path):
    data_root = str(tmp_path / 'data')
    generate_synthetic_dataset(
        data_root, num_images=240, image_size=32, seed=1,
        split=(200, 20, 20), progress=False)
    cfg = _small_demo_cfg(tmp_path / 'work', data_root,
                          'dataset_synthetic.json', epochs=2)
    # validating before training: no best-checkpoint bookkeeping yet
    cfg.default_hooks.checkpoint.save_best = None
    runner = Runner.from_cfg(cfg)
    before = runner.val()['retrieval/rsum']
    runner.train()
    after = runner.val()['retrieval/rsum']
    losses = runner.message_hub.get_scalar('train/loss').data[0]
    n = len(losses)
    assert n >= 50
    first, last = losses[:5].mean(), losses[-5:].mean()
    assert last < 0.8 * first, (first, last)
    assert after > before + 20, (before, after)


def test_demo_config_on_real_rsicd_images(tmp_path, shared_data):
    root = osp.join(shared_data, 'rsicd_sample')
    if not osp.isdir(root):
        pytest.skip('rsicd_sample is absent')
    cfg = _small_demo_cfg(tmp_path / 'work', root,
                          'dataset_rsicd_sample.json', epochs=1)
    resize = dict(type='Resize', scale=(64, 64))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        ds = cfg[loader].dataset
        ds.type = 'RSICD'
        ds.pipeline = [ds.pipeline[0], resize] + list(ds.pipeline[1:])
    # the sample has train and test splits only
    cfg.val_dataloader.dataset.split = 'test'
    cfg.train_dataloader.batch_size = 16
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    assert runner.test_dataloader.dataset.img_size == 8
    assert 0.0 <= metrics['retrieval/rsum'] <= 600.0
    assert osp.isfile(osp.join(str(tmp_path / 'work'), 'epoch_1.pth'))
