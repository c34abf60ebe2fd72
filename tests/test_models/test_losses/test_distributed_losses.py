# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Losses under 2 CPU processes (gloo) follow the 1-process gradient.

With ``gather_negatives=True``, 2 processes of batch b (DDP averages the
gradients) must give the same loss value and parameter gradients as one
process of batch 2b, including captions of the same image split across
the two processes (they stay positives).
"""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from mmpretrain.registry import MODELS

import rsitr_mm  # noqa: F401

LOSSES = [
    dict(type='MultiPositiveInfoNCELoss', gather_negatives=True),
    dict(type='TripletRankingLoss', gather_negatives=True),
    dict(type='TripletRankingLoss', gather_negatives=True,
         max_violation=False),
]


def _problem():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 10, generator=g)
    y = x + 0.3 * torch.randn(8, 10, generator=g)
    # image 1 has rows on both ranks (rows 3 and 4)
    ids = torch.tensor([0, 0, 1, 1, 1, 2, 3, 3])
    torch.manual_seed(1)
    f_img, f_txt = torch.nn.Linear(10, 6), torch.nn.Linear(10, 6)
    return x, y, ids, f_img, f_txt


def _loss_and_grads(cfg, rows):
    x, y, ids, f_img, f_txt = _problem()
    loss_fn = MODELS.build(cfg)
    loss = loss_fn(F.normalize(f_img(x[rows]), dim=-1),
                   F.normalize(f_txt(y[rows]), dim=-1), ids[rows])
    loss.backward()
    grads = [p.grad for p in list(f_img.parameters()) +
             list(f_txt.parameters())]
    return loss.detach(), grads


def _worker(rank, port, out_file):
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=2)
    results = []
    for cfg in LOSSES:
        rows = slice(rank * 4, rank * 4 + 4)
        loss, grads = _loss_and_grads(cfg, rows)
        for g in grads:  # what DDP does: average over processes
            dist.all_reduce(g)
            g /= 2
        dist.all_reduce(loss)
        results.append((loss / 2, grads))
    if rank == 0:
        torch.save(results, out_file)
    dist.barrier()
    dist.destroy_process_group()



def test_two_processes_match_one_process(tmp_path, free_port):
    out_file = str(tmp_path / 'dist.pt')
    mp.spawn(_worker, args=(free_port(), out_file), nprocs=2, join=True)
    results = torch.load(out_file)
    for cfg, (loss2, grads2) in zip(LOSSES, results):
        loss1, grads1 = _loss_and_grads(cfg, slice(0, 8))
        if cfg['type'] == 'MultiPositiveInfoNCELoss':
            assert loss2.item() == pytest.approx(loss1.item(), rel=1e-5)
        for g1, g2 in zip(grads1, grads2):
            torch.testing.assert_close(g2, g1, rtol=1e-4, atol=1e-6)


def test_single_process_needs_no_process_group():
    assert not dist.is_initialized()
    for cfg in LOSSES:
        loss, _ = _loss_and_grads(cfg, slice(0, 8))
        assert torch.isfinite(loss)
