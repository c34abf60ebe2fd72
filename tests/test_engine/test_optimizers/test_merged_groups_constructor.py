# Copyright (c) rsitr_mm contributors. All rights reserved.
"""MergedGroupsOptimWrapperConstructor: fewer groups, the same updates."""
import copy

import pytest
import torch
from mmengine.optim import DefaultOptimWrapperConstructor
from torch import nn

from rsitr_mm.engine.optimizers import (MergedGroupsOptimWrapperConstructor,
                                        merge_param_groups)

PARAMWISE = dict(
    norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0,
    custom_keys={'image_neck': dict(lr_mult=20.0, decay_mult=0.0),
                 'heads': dict(lr_mult=20.0, decay_mult=0.0)})


class Toy(nn.Module):
    """Encoder (decayed weights, undecayed norms / biases), a neck and a
    head at 20x lr, a frozen part."""

    def __init__(self):
        super().__init__()
        self.image_encoder = nn.Sequential(nn.Linear(6, 8), nn.LayerNorm(8),
                                           nn.Linear(8, 8))
        self.image_neck = nn.Linear(8, 8)
        self.heads = nn.ModuleList([nn.Linear(8, 4)])
        self.logit_scale = nn.Parameter(torch.tensor(2.0))
        self.frozen = nn.Linear(4, 4)
        self.frozen.requires_grad_(False)

    def forward(self, x):
        h = self.image_neck(self.image_encoder(x))
        return (self.heads[0](h) * self.logit_scale).pow(2).mean()


def _build(constructor, model, **optim):
    cfg = dict(optimizer=dict(type='AdamW', lr=1e-2, weight_decay=0.2,
                              betas=(0.9, 0.98), eps=1e-6, **optim))
    return constructor(cfg, copy.deepcopy(PARAMWISE))(model)


def _steps(model, wrapper, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        wrapper.update_params(model(torch.randn(5, 6, generator=g)))


def _per_param(optimizer):
    """Each parameter's hyper-parameters, keyed by identity."""
    return {id(p): {k: v for k, v in g.items() if k != 'params'}
            for g in optimizer.param_groups for p in g['params']}


@pytest.mark.parametrize('foreach', [False, True])
def test_same_hyper_parameters_and_identical_updates(foreach):
    torch.manual_seed(0)
    a = Toy()
    b = copy.deepcopy(a)
    default = _build(DefaultOptimWrapperConstructor, a, foreach=foreach)
    merged = _build(MergedGroupsOptimWrapperConstructor, b, foreach=foreach)
    n_params = len([p for p in a.parameters() if p.requires_grad])
    assert len(default.optimizer.param_groups) == n_params  # one each
    # encoder weights; encoder norms / biases / logit_scale; neck + head
    assert len(merged.optimizer.param_groups) <= 4
    hyper_a = _per_param(default.optimizer)
    hyper_b = _per_param(merged.optimizer)
    for pa, pb in zip(a.parameters(), b.parameters()):
        if pa.requires_grad:
            assert hyper_a[id(pa)] == hyper_b[id(pb)]
    _steps(a, default, 4)
    _steps(b, merged, 4)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    moved = [not torch.equal(p, q) for p, q in
             zip(b.parameters(), Toy().parameters())]
    assert any(moved)


def test_merged_state_resumes_and_unmerged_state_is_refused():
    """A merged state resumes exactly; a state saved with one group per
    parameter (the default constructor, runs started before) is refused
    with the way to resume it, which then works."""
    torch.manual_seed(0)
    a = Toy()
    merged = _build(MergedGroupsOptimWrapperConstructor, a)
    _steps(a, merged, 3)
    b = copy.deepcopy(a)
    again = _build(MergedGroupsOptimWrapperConstructor, b)
    again.load_state_dict(copy.deepcopy(merged.state_dict()))
    _steps(a, merged, 2, seed=1)
    _steps(b, again, 2, seed=1)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)

    old = Toy()
    default = _build(DefaultOptimWrapperConstructor, old)
    _steps(old, default, 2)
    saved = copy.deepcopy(default.state_dict())
    fresh = _build(MergedGroupsOptimWrapperConstructor, copy.deepcopy(old))
    with pytest.raises(ValueError, match='constructor=DefaultOptimWrapper'):
        fresh.load_state_dict(saved)
    _build(DefaultOptimWrapperConstructor,
           copy.deepcopy(old)).load_state_dict(saved)


def test_merge_keeps_first_appearance_order():
    p = [nn.Parameter(torch.zeros(1)) for _ in range(4)]
    groups = [dict(params=[p[0]], lr=1.0), dict(params=[p[1]], lr=2.0),
              dict(params=[p[2]], lr=1.0), dict(params=[p[3]], lr=2.0)]
    merged = merge_param_groups(groups)
    assert [g['lr'] for g in merged] == [1.0, 2.0]
    assert [len(g['params']) for g in merged] == [2, 2]
    assert merged[0]['params'][1] is p[2]


def test_without_paramwise_cfg_is_the_default():
    model = Toy()
    wrapper = MergedGroupsOptimWrapperConstructor(
        dict(optimizer=dict(type='SGD', lr=0.1)))(model)
    assert len(wrapper.optimizer.param_groups) == 1


def test_paramwise_dump_becomes_one_line_per_group(monkeypatch):
    """mmengine's per-parameter ``paramwise_options`` lines are replaced by
    one line per merged group (options, size, first names)."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    records = []
    original = logger.callHandlers  # called for records the filters pass
    monkeypatch.setattr(logger, 'callHandlers', lambda record: (
        records.append(record.getMessage()), original(record)))
    model = Toy()
    wrapper = _build(MergedGroupsOptimWrapperConstructor, model)
    assert not [r for r in records if r.startswith('paramwise_options')]
    groups = [r for r in records if r.startswith('param group ')]
    param_groups = wrapper.optimizer.param_groups
    assert len(groups) == len(param_groups) > 1
    assert [int(g.split('; ')[1].split()[0]) for g in groups] == \
        [len(g['params']) for g in param_groups]
    assert groups[0].startswith('param group 0: lr=0.01, weight_decay=0.2; ')
    assert 'image_encoder.0.weight' in groups[0]
    # the default constructor still logs them (the filter is removed)
    records.clear()
    _build(DefaultOptimWrapperConstructor, Toy())
    assert any(r.startswith('paramwise_options') for r in records)
