# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Test-time re-rankers: hand-made matrices, the no-op path, tools/test.py."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.evaluator import Evaluator

import rsitr_mm  # noqa: F401
from rsitr_mm.evaluation import (RERANKERS, RSRetrievalMetric,
                                 build_reranker, dual_softmax,
                                 evaluate_reranked, inverted_softmax,
                                 k_reciprocal, qb_norm, retrieval_recall)
from rsitr_mm.evaluation.functional.rerank import merge_directions

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def hub_matrix():
    """4 images x 4 captions (1 per image); caption 0 is a hub: it beats
    the true caption of every image. Column j is the caption of image j."""
    return torch.tensor([[0.95, 0.10, 0.12, 0.11],
                         [0.90, 0.80, 0.10, 0.12],
                         [0.91, 0.11, 0.82, 0.10],
                         [0.92, 0.12, 0.10, 0.81]])


def r1(sim_pair):
    i2t = retrieval_recall(sim_pair[0], captions_per_image=1)
    t2i = retrieval_recall(sim_pair[1], captions_per_image=1)
    return i2t['i2t_R@1'], t2i['t2i_R@1']


def test_hubness_fixed_by_dual_and_inverted_softmax():
    sim = hub_matrix()
    assert r1((sim, sim)) == (25.0, 100.0)  # the hub wins every i2t query
    assert r1(dual_softmax(sim, temperature=0.05)) == (100.0, 100.0)
    assert r1(inverted_softmax(sim, temperature=0.05)) == (100.0, 100.0)
    # k-reciprocal: the hub's own ranking puts image 0 first, so image 1-3
    # are not its mutual neighbours
    assert r1(k_reciprocal(sim, k=2, lam=1.0)) == (100.0, 100.0)


def test_directions_are_normalised_over_their_own_query_bank():
    sim = torch.randn(5, 15, generator=torch.Generator().manual_seed(0))
    i2t, t2i = inverted_softmax(sim, temperature=0.1)
    # i2t: gallery = captions, bank = images (a column)
    expect = sim[2, 7] / 0.1 - torch.logsumexp(sim[:, 7].double() / 0.1, 0)
    assert torch.isclose(i2t[2, 7], expect)
    # t2i: gallery = images, bank = captions (a row)
    expect = sim[2, 7] / 0.1 - torch.logsumexp(sim[2, :].double() / 0.1, 0)
    assert torch.isclose(t2i[2, 7], expect)
    i2t, t2i = dual_softmax(sim, temperature=0.1)
    assert torch.isclose(
        i2t[2, 7], sim[2, 7] * torch.softmax(sim[:, 7].double() / 0.1, 0)[2])
    assert torch.isclose(
        t2i[2, 7], sim[2, 7] * torch.softmax(sim[2, :].double() / 0.1, 0)[7])


def test_identity_limits_keep_the_ranking():
    sim = torch.randn(6, 30, generator=torch.Generator().manual_seed(1))
    raw = retrieval_recall(sim)
    out = build_reranker('none')(sim)
    assert out[0] is sim and out[1] is sim
    # lam=0: the raw order; a huge temperature: (almost) the raw ranking
    i2t, t2i = k_reciprocal(sim, k=10, lam=0.0)
    for key, value in retrieval_recall(i2t).items():
        if key.startswith('i2t'):
            assert value == raw[key]
    for key, value in retrieval_recall(t2i).items():
        if key.startswith('t2i'):
            assert value == raw[key]
    i2t, t2i = dual_softmax(sim, temperature=1e4)
    assert torch.equal(i2t.argsort(1), sim.double().argsort(1))
    assert torch.equal(t2i.argsort(0), sim.double().argsort(0))


def test_qb_norm_activation_set():
    sim = hub_matrix()
    # self-bank: every image's top-1 is the hub, each query leaves itself
    # out and the hub stays active -> all rows normalised (as IS)
    i2t, _ = qb_norm(sim, temperature=0.05)
    assert torch.allclose(i2t, inverted_softmax(sim, temperature=0.05)[0])
    # a separate bank whose queries never hit caption 0: no query is
    # active, raw scores kept (the hub still wins)
    bank = torch.tensor([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    i2t, _ = qb_norm(sim, temperature=0.05, bank_i2t=bank)
    assert torch.equal(i2t, sim.double())
    # a bank that hits the hub activates every query: the hub is pushed
    # down for images 1-3 (fixed) and for image 0 too (its caption is the
    # hub: lost with a one-query bank)
    bank = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    i2t, _ = qb_norm(sim, temperature=0.05, bank_i2t=bank)
    assert torch.equal(i2t, inverted_softmax(
        sim, temperature=0.05, bank_i2t=bank)[0])
    assert r1((i2t, sim)) == (75.0, 100.0)


def test_k_reciprocal_ties_follow_the_metric_rule():
    sim = torch.zeros(2, 10)  # all tied: rank = index order
    i2t, t2i = k_reciprocal(sim, k=3, lam=0.5)
    raw = retrieval_recall(sim)
    assert retrieval_recall(i2t)['i2t_R@1'] == raw['i2t_R@1']
    assert retrieval_recall(t2i)['t2i_R@1'] == raw['t2i_R@1']


def test_build_reranker_errors_and_registry():
    assert build_reranker(None) is None
    assert set(RERANKERS) == {'none', 'inverted_softmax', 'dual_softmax',
                              'qb_norm', 'k_reciprocal'}
    with pytest.raises(ValueError, match="Unknown rerank type 'dsl'"):
        build_reranker(dict(type='dsl'))
    with pytest.raises(TypeError, match="'dual_softmax'.*'tau'"):
        build_reranker(dict(type='dual_softmax', tau=0.1))
    with pytest.raises(ValueError, match='temperature'):
        build_reranker(dict(type='dual_softmax', temperature=0))(
            torch.zeros(2, 2))


def test_evaluate_reranked_no_op_is_exact():
    sim = torch.randn(8, 40, generator=torch.Generator().manual_seed(2))
    ev = Evaluator(RSRetrievalMetric())
    ev.process(data_samples=[dict(similarity=sim)], data_batch=None)
    raw = ev.evaluate(1)
    out = evaluate_reranked(ev, sim, build_reranker('none'))
    assert out == {'rerank/' + k: v for k, v in raw.items()}
    out = evaluate_reranked(ev, sim, build_reranker('dual_softmax'))
    pair = dual_softmax(sim)
    assert out['rerank/retrieval/i2t_R@5'] == retrieval_recall(
        pair[0])['i2t_R@5']
    assert out['rerank/retrieval/t2i_R@1'] == retrieval_recall(
        pair[1])['t2i_R@1']


def test_merge_directions_recomputes_sums():
    a = {'p/i2t_R@1': 10.0, 'p/t2i_R@1': 0.0, 'p/mR': 5.0, 'p/rsum': 10.0}
    b = {'p/i2t_R@1': 0.0, 'p/t2i_R@1': 30.0, 'p/mR': 15.0, 'p/rsum': 30.0}
    assert merge_directions(a, b) == {
        'p/i2t_R@1': 10.0, 'p/t2i_R@1': 30.0, 'p/mR': 20.0, 'p/rsum': 40.0}


# lines after the tiny demo model (tests/conftest.py)
CONFIG = """\
test_dataloader = dict(batch_size=8, dataset=dict(data_root=data_root))
test_cfg = dict(rerank=dict(type='dual_softmax', temperature=0.05))
"""


def test_tools_test_reports_raw_and_reranked(tmp_path, tiny_demo):
    data_root = tiny_demo.dataset(tmp_path, num_images=36, split=(12, 4, 20),
                                  seed=0)
    cfg = tiny_demo.config(tmp_path / 'cfg.py', data_root, CONFIG)
    out = tmp_path / 'metrics.json'
    env = dict(os.environ, HF_HUB_OFFLINE='1', PYTHONPATH=REPO)
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'test.py'), str(cfg),
         '--work-dir', str(tmp_path / 'work'), '--out', str(out)],
        cwd=str(tmp_path), env=env, capture_output=True, text=True,
        timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert '| raw |' in proc.stdout and '| re-ranked |' in proc.stdout
    metrics = json.load(open(out))
    keys = ('i2t_R@1', 't2i_R@1', 'mR', 'rsum')
    for k in keys:
        assert 0 <= metrics[f'retrieval/{k}'] <= 600
        assert 0 <= metrics[f'rerank/retrieval/{k}'] <= 600
