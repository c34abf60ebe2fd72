# Copyright (c) rsitr_mm contributors. All rights reserved.
"""NaNGuardHook / NaNSafeOptimWrapper on a model whose loss turns NaN."""
import copy

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

import rsitr_mm  # noqa: F401
from rsitr_mm.engine.hooks import NaNGuardHook, NaNSafeOptimWrapper
from rsitr_mm.engine.hooks.nan_guard import nonfinite_terms

BAD_ITER = 3  # 0-based index of the iteration whose loss is NaN


class _Points(Dataset):

    def __len__(self):
        return 24

    def __getitem__(self, idx):
        g = torch.Generator().manual_seed(idx)
        return dict(inputs=torch.randn(4, generator=g))


class _NaNAtIter(BaseModel):
    """Linear regression whose loss is NaN at forward call ``BAD_ITER``."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 1)
        self.calls = 0
        self.snapshots = []  # parameters seen at the start of each call

    def forward(self, inputs, data_samples=None, mode='tensor'):
        self.snapshots.append(
            {k: v.detach().clone()
             for k, v in self.state_dict().items()})
        x = torch.stack(inputs) if isinstance(inputs, list) else inputs
        loss = (self.fc(x) - 1.0).pow(2).mean()
        if self.calls == BAD_ITER:
            loss = loss * float('nan')
        self.calls += 1
        return dict(loss_mse=loss, loss_aux=torch.ones(()))


def _runner(tmp_path, action, wrapper='NaNSafeOptimWrapper'):
    return Runner(
        model=_NaNAtIter(),
        work_dir=str(tmp_path),
        train_dataloader=dict(
            dataset=_Points(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='default_collate'),
            batch_size=4),
        optim_wrapper=dict(
            type=wrapper, optimizer=dict(type='AdamW', lr=0.1)),
        train_cfg=dict(by_epoch=True, max_epochs=2),
        custom_hooks=[dict(type='NaNGuardHook', action=action)],
        default_hooks=dict(checkpoint=None, logger=dict(
            type='LoggerHook', interval=1)),
        default_scope='mmpretrain',
        randomness=dict(seed=0),
        env_cfg=dict(dist_cfg=dict(backend='gloo')),
    )


def test_raise_names_iteration_epoch_and_term(tmp_path):
    runner = _runner(tmp_path, 'raise', wrapper='OptimWrapper')
    with pytest.raises(RuntimeError) as err:
        runner.train()
    msg = str(err.value)
    assert f'iteration {BAD_ITER + 1} ' in msg
    assert 'epoch 1' in msg
    assert 'loss_mse=nan' in msg
    assert 'loss_aux' not in msg  # only the offending terms are named
    assert runner.model.calls == BAD_ITER + 1  # stopped right there


def test_skip_keeps_parameters_and_optimizer_state(tmp_path):
    runner = _runner(tmp_path, 'skip')
    runner.train()
    model = runner.model
    assert model.calls == 12  # 2 epochs x 6 batches: training went on
    snaps = model.snapshots
    # the bad iteration changed nothing ...
    for k in snaps[BAD_ITER]:
        torch.testing.assert_close(snaps[BAD_ITER + 1][k], snaps[BAD_ITER][k],
                                   rtol=0, atol=0)
    # ... while good iterations do update
    assert not torch.equal(snaps[BAD_ITER][k], snaps[BAD_ITER - 1][k])
    assert not torch.equal(snaps[BAD_ITER + 2][k], snaps[BAD_ITER + 1][k])
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())
    wrapper = runner.optim_wrapper
    assert isinstance(wrapper, NaNSafeOptimWrapper)
    assert wrapper.num_skipped == 1
    # Adam's step count saw 11 updates, not 12
    state = wrapper.optimizer.state[model.fc.weight]
    assert int(state['step']) == 11
    hook = [h for h in runner.hooks if isinstance(h, NaNGuardHook)][0]
    assert hook.num_bad == 1


def test_skip_requires_a_skipping_wrapper(tmp_path):
    runner = _runner(tmp_path, 'skip', wrapper='OptimWrapper')
    with pytest.raises(TypeError, match='NaNSafeOptimWrapper'):
        runner.train()


def test_wrapper_skip_without_runner():
    model = nn.Linear(2, 1)
    before = copy.deepcopy(model.state_dict())
    wrapper = NaNSafeOptimWrapper(torch.optim.SGD(model.parameters(), lr=1.0))
    loss = model(torch.ones(1, 2)).sum() * float('inf')
    wrapper.update_params(loss)
    assert wrapper.num_skipped == 1
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    wrapper.update_params(model(torch.ones(1, 2)).sum())
    assert not torch.equal(model.weight, before['weight'])


def test_nonfinite_terms_and_bad_arguments():
    terms = nonfinite_terms(
        dict(loss=torch.tensor(float('inf')), loss_a=torch.tensor(1.0),
             loss_b=float('nan'), acc=torch.tensor(3)))
    assert terms == ['loss=inf', 'loss_b=nan']
    assert nonfinite_terms(None) == []
    # all terms are checked at once; a float64 too large for float32 is
    # still finite, and the per-term check names only real offenders
    assert nonfinite_terms(dict(loss=torch.tensor(1e300, dtype=torch.float64),
                                loss_a=torch.ones(3))) == []
    assert nonfinite_terms(dict(a=torch.tensor([1.0, float('nan')]),
                                b=torch.tensor(2.0))) == ['a=non-finite']
    with pytest.raises(ValueError, match='action'):
        NaNGuardHook(action='ignore')
    with pytest.raises(ValueError, match='check_interval'):
        NaNGuardHook(check_interval=0)
