# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Host syncs per training step, counted on the CPU through the Runner.

The tiny demo model (TinyCNN + BiGRU, InfoNCE, gradient clipping) trains
one epoch through mmengine's Runner with the shipped runtime
(``configs/_base_/default_runtime.py``); a pair of hooks counts, from the
first ``before_train_iter`` hook to the last ``after_train_iter`` hook of
every step, the calls that block the host on a GPU
(:class:`~rsitr_mm.utils.host_syncs.HostSyncCounter`). Budget: 2 per step
(the gradient norm of clipping, the NaN check), the loss logging read once
per logging window. The same run with the old pieces (mmengine's
``RuntimeInfoHook``, captions tokenised in the forward) makes more, which
shows the counter sees them.
"""
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmpretrain.registry import HOOKS

from rsitr_mm.utils.host_syncs import HostSyncCounter

COUNTER = HostSyncCounter()
PER_STEP = []


@HOOKS.register_module(force=True)
class _SyncCountStart(Hook):
    priority = 'HIGHEST'

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        COUNTER.reset()
        COUNTER.__enter__()


@HOOKS.register_module(force=True)
class _SyncCountStop(Hook):
    priority = 'LOWEST'

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        COUNTER.__exit__(None, None, None)
        PER_STEP.append((COUNTER.count, dict(COUNTER.by_site)))


EXTRA = """
train_dataloader = dict(batch_size=4, num_workers=0,
                        persistent_workers=False,
                        dataset=dict(data_root=data_root))
"""


def _steps(cfg_path, work_dir, old: bool):
    cfg = Config.fromfile(cfg_path)
    cfg.work_dir = str(work_dir)
    for part in ('val', 'test'):  # training only
        for key in ('dataloader', 'cfg', 'evaluator'):
            cfg[f'{part}_{key}'] = None
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1,
                         val_interval=100)
    cfg.param_scheduler = []
    cfg.default_hooks.logger.interval = 3
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=100)
    cfg.custom_hooks = [h for h in cfg.custom_hooks] + [
        dict(type='_SyncCountStart'), dict(type='_SyncCountStop')]
    if old:
        cfg.default_hooks.runtime_info = dict(type='RuntimeInfoHook')
        for hook in cfg.custom_hooks:
            if hook['type'] == 'TrainDataToModelHook':
                hook['prepare_text_in_pipeline'] = False
    if not old:
        # what MergedGroupsOptimWrapperConstructor picks on CUDA (the
        # foreach/for-loop AdamW reads every step count on the host)
        cfg.optim_wrapper.optimizer.fused = True
    PER_STEP.clear()
    runner = Runner.from_cfg(cfg)
    runner.train()
    history = runner.message_hub.get_scalar('train/loss').data[0]
    return list(PER_STEP), list(history)


@pytest.fixture(scope='module')
def cfg_path(tmp_path_factory, tiny_demo):
    root = tmp_path_factory.mktemp('sync_budget')
    data_root = tiny_demo.dataset(root, num_images=8, split=(4, 2, 2),
                                  seed=0)
    return tiny_demo.config(root / 'cfg.py', data_root, EXTRA)


def test_training_step_sync_budget(cfg_path, tmp_path):
    steps, history = _steps(cfg_path, tmp_path / 'new', old=False)
    assert len(steps) == 5  # 4 images x 5 captions, batch 4
    counts = [n for n, _ in steps]
    # logging iterations (3rd, end of epoch) read the window once more
    logging = {2, 4}
    for i, (n, sites) in enumerate(steps):
        assert n <= 2 + (i in logging), (i, sorted(sites.items()))
    assert sum(counts) <= 2 * len(steps) + len(logging)

    old, old_history = _steps(cfg_path, tmp_path / 'old', old=True)
    old_counts = [n for n, _ in old]
    # a read per loss term and per AdamW step count every step
    assert min(old_counts) > max(counts), (old, steps)
    # the deferred hook logged every step's loss, the same values
    assert len(history) == len(old_history) == 5
    # (fused vs for-loop AdamW: rounding only)
    np.testing.assert_allclose(history, old_history, rtol=1e-4)
