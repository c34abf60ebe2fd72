# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Mixed precision keeps NaN safety: NaNSafeAmpOptimWrapper and ``--amp``.

Runs CPU autocast (float16 and bfloat16, where this torch supports them):
mmengine's ``AmpOptimWrapper`` refuses to build without an accelerator, the
NaN-safe AMP wrapper falls back to CPU autocast + ``GradScaler('cpu')``.
"""
import argparse
import copy
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config

import rsitr_mm  # noqa: F401
from rsitr_mm.engine.hooks import (NaNSafeAmpOptimWrapper,
                                   NaNSafeOptimWrapper, amp_counterpart)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _cpu_autocast_supported(dtype):
    try:
        with torch.autocast('cpu', dtype=dtype):
            out = nn.Linear(2, 2)(torch.ones(1, 2))
        return out.dtype == dtype
    except (RuntimeError, AssertionError):
        return False


DTYPES = [
    pytest.param(
        d,
        marks=pytest.mark.skipif(
            not _cpu_autocast_supported(getattr(torch, d)),
            reason=f'CPU autocast {d} unsupported by this torch'))
    for d in ('float16', 'bfloat16')
]


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU fallback path')
@pytest.mark.parametrize('dtype', DTYPES)
def test_amp_wrapper_skips_nan_loss_and_keeps_the_scale(dtype):
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    wrapper = NaNSafeAmpOptimWrapper(
        optimizer=torch.optim.Adam(model.parameters(), lr=0.1), dtype=dtype,
        loss_scale=dict(init_scale=2.0**10))
    x = torch.randn(8, 4)

    def step(poison):
        with wrapper.optim_context(model):
            out = model(x)
            assert out.dtype == getattr(torch, dtype)  # autocast is on
            loss = (out.float() - 1).pow(2).mean()
        if poison:
            loss = loss * float('nan')
        wrapper.update_params(loss)

    step(False)
    scale = wrapper.loss_scaler.get_scale()
    before = copy.deepcopy(model.state_dict())
    adam_step = int(wrapper.optimizer.state[model.weight]['step'])
    step(True)
    # the NaN loss changed nothing: weights, Adam state, GradScaler scale
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    assert int(wrapper.optimizer.state[model.weight]['step']) == adam_step
    assert wrapper.loss_scaler.get_scale() == scale
    assert wrapper.num_skipped == 1
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())
    step(False)
    assert not torch.equal(model.weight, before['weight'])
    assert int(wrapper.optimizer.state[model.weight]['step']) == adam_step + 1


def test_amp_counterpart_keeps_nan_safety():
    assert amp_counterpart('NaNSafeOptimWrapper') == 'NaNSafeAmpOptimWrapper'
    # loss scaling only for float16 (none in bfloat16)
    assert amp_counterpart('OptimWrapper') == 'AutoScaleAmpOptimWrapper'
    assert amp_counterpart('AmpOptimWrapper') == 'AmpOptimWrapper'
    with pytest.raises(ValueError, match='optim_wrapper.type'):
        amp_counterpart('MyWrapper')
    assert issubclass(NaNSafeAmpOptimWrapper, NaNSafeOptimWrapper.__mro__[1])


def test_train_py_amp_flag_keeps_nan_safe_wrapper(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'rsitr_train_tool', osp.join(REPO, 'tools', 'train.py'))
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    cfg = Config.fromfile(osp.join(REPO, 'configs',
                                   'demo_tinycnn-bigru_synthetic.py'))
    cfg.optim_wrapper.type = 'NaNSafeOptimWrapper'
    args = argparse.Namespace(
        config='configs/demo_tinycnn-bigru_synthetic.py',
        work_dir=str(tmp_path), resume=None, amp=True, no_validate=False,
        auto_scale_lr=False, cfg_options=None, launcher='none',
        no_pin_memory=False, no_persistent_workers=False)
    cfg = train.merge_args(cfg, args)
    assert cfg.optim_wrapper.type == 'NaNSafeAmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'


def test_contrastive_logits_are_float32_under_autocast():
    from mmpretrain.registry import MODELS
    dtype = torch.bfloat16
    if not _cpu_autocast_supported(dtype):
        pytest.skip('no CPU bf16 autocast')
    g = torch.Generator().manual_seed(0)
    img = nn.functional.normalize(torch.randn(6, 16, generator=g), dim=-1)
    txt = nn.functional.normalize(torch.randn(6, 16, generator=g), dim=-1)
    ids = torch.tensor([0, 0, 1, 2, 3, 4])
    scale = torch.tensor(100.0)
    for cfg in (dict(type='MultiPositiveInfoNCELoss'),
                dict(type='TripletRankingLoss')):
        loss_fn = MODELS.build(cfg)
        ref = loss_fn(img, txt, ids, logit_scale=scale)
        with torch.autocast('cpu', dtype=dtype):
            amp = loss_fn(img.to(dtype), txt.to(dtype), ids,
                          logit_scale=scale)
        assert amp.dtype == torch.float32
        # only the bf16 rounding of the inputs differs, not of the logits
        ref_rounded = loss_fn(img.to(dtype).float(), txt.to(dtype).float(),
                              ids, logit_scale=scale)
        torch.testing.assert_close(amp, ref_rounded, rtol=1e-5, atol=1e-5)
        assert torch.isfinite(ref)
