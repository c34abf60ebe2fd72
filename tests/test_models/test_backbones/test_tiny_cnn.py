# Copyright (c) rsitr_mm contributors. All rights reserved.
import pytest
import torch

from rsitr_mm.models.backbones import TinyCNN


def test_shapes_and_channels():
    model = TinyCNN(base_channels=8, num_stages=3, out_indices=(0, 1, 2))
    outs = model(torch.randn(2, 3, 64, 64))
    assert isinstance(outs, tuple)
    assert [o.shape for o in outs] == [(2, 8, 32, 32), (2, 16, 16, 16),
                                       (2, 32, 8, 8)]
    assert model.out_channels == [8, 16, 32]
    last = TinyCNN(base_channels=8, out_indices=-1)
    assert last.out_channels == [32]
    assert last(torch.randn(1, 3, 64, 64))[0].shape == (1, 32, 8, 8)


def test_loss_falls():
    torch.manual_seed(0)
    model = TinyCNN(base_channels=8, num_stages=2, out_indices=(-1, ))
    model.init_weights()
    head = torch.nn.Linear(16, 2)
    x = torch.randn(8, 3, 32, 32)
    y = torch.tensor([0, 1] * 4)
    x[y == 1] += 1.0
    opt = torch.optim.SGD(
        list(model.parameters()) + list(head.parameters()), lr=0.1)
    losses = []
    for _ in range(10):
        logits = head(model(x)[0].mean((2, 3)))
        loss = torch.nn.functional.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_bad_out_indices():
    with pytest.raises(ValueError, match='out of range'):
        TinyCNN(num_stages=2, out_indices=(2, ))
