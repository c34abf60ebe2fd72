# Copyright (c) rsitr_mm contributors. All rights reserved.
"""bfloat16 AMP without a GradScaler; fused AdamW only on CUDA."""
import copy

import torch
import torch.nn as nn
from mmengine.registry import init_default_scope

from rsitr_mm.engine.hooks import NaNSafeAmpOptimWrapper
from rsitr_mm.engine.optimizers import (MergedGroupsOptimWrapperConstructor,
                                        NoLossScaler)


def _step(wrapper, model):
    with wrapper.optim_context(model):
        loss = model(torch.ones(2, 4)).square().mean()
    wrapper.update_params(loss)


def test_bf16_amp_has_no_scaler_and_steps_as_plain_adamw():
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    plain = copy.deepcopy(model)
    wrapper = NaNSafeAmpOptimWrapper(
        optimizer=torch.optim.AdamW(model.parameters(), lr=0.1),
        dtype='bfloat16')
    assert isinstance(wrapper.loss_scaler, NoLossScaler)
    assert 'loss_scaler' in wrapper.state_dict()
    _step(wrapper, model)
    # the same update without the wrapper (bf16 autocast, no scaling)
    opt = torch.optim.AdamW(plain.parameters(), lr=0.1)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss = plain(torch.ones(2, 4)).square().mean()
    loss.backward()
    opt.step()
    for a, b in zip(model.parameters(), plain.parameters()):
        torch.testing.assert_close(a, b)
    # a float16 run's scaler state loads (and is ignored)
    state = wrapper.state_dict()
    state['loss_scaler'] = torch.amp.GradScaler('cpu').state_dict()
    wrapper.load_state_dict(state)
    fp16 = NaNSafeAmpOptimWrapper(
        optimizer=torch.optim.AdamW(model.parameters(), lr=0.1),
        dtype='float16')
    assert isinstance(fp16.loss_scaler, torch.amp.GradScaler)


def test_fused_adamw_only_for_cuda_parameters():
    init_default_scope('mmpretrain')
    model = nn.Linear(4, 3)
    cfg = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=0.1))
    wrapper = MergedGroupsOptimWrapperConstructor(copy.deepcopy(cfg))(model)
    assert not wrapper.optimizer.defaults.get('fused')  # CPU: default kept
    if torch.cuda.is_available():
        wrapper = MergedGroupsOptimWrapperConstructor(copy.deepcopy(cfg))(
            model.cuda())
        assert wrapper.optimizer.defaults['fused'] is True
        cfg['optimizer']['foreach'] = True  # the config's choice is kept
        wrapper = MergedGroupsOptimWrapperConstructor(cfg)(model)
        assert not wrapper.optimizer.defaults.get('fused')
