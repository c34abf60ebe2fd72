# Copyright (c) rsitr_mm contributors. All rights reserved.
import numpy as np
import pytest
import torch

from rsitr_mm.evaluation import RSRetrievalMetric, retrieval_recall


def _reference(sim, cpi, ks=(1, 5, 10)):
    """Literal per-query implementation of the documented rule."""
    sim = np.asarray(sim, dtype=np.float64)
    n, t = sim.shape

    def rank(row, j):
        # stable sort by descending score: ties keep index order
        order = sorted(range(len(row)), key=lambda k: (-row[k], k))
        return order.index(j)

    out = {}
    i2t = [min(rank(sim[i], j) for j in range(i * cpi, (i + 1) * cpi))
           for i in range(n)]
    t2i = [rank(sim[:, j], j // cpi) for j in range(t)]
    for k in ks:
        out[f'i2t_R@{k}'] = 100 * np.mean([r < k for r in i2t])
    for k in ks:
        out[f't2i_R@{k}'] = 100 * np.mean([r < k for r in t2i])
    vals = list(out.values())
    out['mR'] = sum(vals) / len(vals)
    out['rsum'] = sum(vals)
    return out


def test_perfect_ranking_is_100():
    n, cpi = 4, 5
    sim = torch.zeros(n, n * cpi)
    for i in range(n):
        sim[i, i * cpi:(i + 1) * cpi] = 1.0
    res = retrieval_recall(sim, cpi)
    assert all(v == pytest.approx(100.0) for k, v in res.items()
               if k.startswith(('i2t', 't2i')))
    assert res['rsum'] == pytest.approx(600.0)
    assert res['mR'] == pytest.approx(100.0)


def test_all_ties_lower_index_wins():
    # 2 images, 1 caption each, every score equal.
    # i2t: image 0 -> caption 0 has rank 0 (hit@1); image 1 -> caption 1
    # has rank 1 (caption 0 ties and has a lower index): miss@1, hit@5.
    sim = np.ones((2, 2), dtype=np.float32)
    res = retrieval_recall(sim, captions_per_image=1)
    assert res['i2t_R@1'] == pytest.approx(50.0)
    assert res['i2t_R@5'] == pytest.approx(100.0)
    assert res['t2i_R@1'] == pytest.approx(50.0)
    assert res['t2i_R@10'] == pytest.approx(100.0)
    assert res['rsum'] == pytest.approx(500.0)
    assert res['mR'] == pytest.approx(500.0 / 6)


def test_hand_computed_case():
    # 2 images, 2 captions each (captions 0,1 -> image 0; 2,3 -> image 1).
    sim = torch.tensor([
        [0.1, 0.9, 0.8, 0.2],  # image 0: caption 1 ranks first -> hit@1
        [0.7, 0.6, 0.5, 0.4],  # image 1: best gold (2) has rank 2
    ])
    res = retrieval_recall(sim, captions_per_image=2, topk=(1, 2, 3))
    assert res['i2t_R@1'] == pytest.approx(50.0)
    assert res['i2t_R@2'] == pytest.approx(50.0)
    assert res['i2t_R@3'] == pytest.approx(100.0)
    # t2i, columns: c0 (gold 0): 0.1 vs 0.7 -> rank 1; c1 (gold 0): 0.9 vs
    # 0.6 -> rank 0; c2 (gold 1): 0.8 vs 0.5 -> rank 1; c3 (gold 1): 0.2 vs
    # 0.4 -> rank 0.
    assert res['t2i_R@1'] == pytest.approx(50.0)
    assert res['t2i_R@2'] == pytest.approx(100.0)
    assert res['rsum'] == pytest.approx(50 + 50 + 100 + 50 + 100 + 100)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_matches_reference_with_many_ties(seed):
    rng = np.random.default_rng(seed)
    n, cpi = 13, 5
    sim = rng.integers(0, 4, size=(n, n * cpi)).astype(np.float32)
    ours = retrieval_recall(sim, cpi, chunk_size=3)
    ref = _reference(sim, cpi)
    for k, v in ref.items():
        assert ours[k] == pytest.approx(v), k


def test_dtypes_and_bad_input():
    sim = torch.eye(3).repeat_interleave(5, dim=1)
    half = retrieval_recall(sim.half(), 5)
    assert half['rsum'] == pytest.approx(600.0)
    with pytest.raises(ValueError, match=r'shape \(N, 5 \* N\)'):
        retrieval_recall(torch.zeros(3, 14))
    with pytest.raises(ValueError, match='2-D'):
        retrieval_recall(torch.zeros(15))
    with pytest.raises(ValueError, match='NaN'):
        retrieval_recall(torch.full((1, 5), float('nan')))
    with pytest.raises(TypeError):
        retrieval_recall([[1.0] * 5])


def test_metric_prefix_and_process():
    metric = RSRetrievalMetric()
    sim = torch.eye(2).repeat_interleave(5, dim=1)
    metric.process(None, [dict(similarity=sim)])
    res = metric.evaluate(1)
    assert res['retrieval/rsum'] == pytest.approx(600.0)
    assert set(res) == {
        f'retrieval/{k}'
        for k in ('i2t_R@1', 'i2t_R@5', 'i2t_R@10', 't2i_R@1', 't2i_R@5',
                  't2i_R@10', 'mR', 'rsum')
    }
    with pytest.raises(KeyError, match='RSRetrievalValLoop'):
        metric.process(None, [dict(pred_score=sim)])


def test_chance_level_matches_random_rankings():
    from rsitr_mm.evaluation import chance_recall
    n, cpi = 20, 5
    chance = chance_recall(n, cpi)
    # t2i: K / N exactly; i2t: 1 - C(95, 1)/C(100, 1) = 5 %
    assert chance['t2i_R@5'] == pytest.approx(25.0)
    assert chance['i2t_R@1'] == pytest.approx(5.0)
    g = torch.Generator().manual_seed(0)
    runs = [retrieval_recall(torch.rand(n, n * cpi, generator=g), cpi)
            for _ in range(200)]
    mean_rsum = sum(r['rsum'] for r in runs) / len(runs)
    assert mean_rsum == pytest.approx(chance['rsum'], rel=0.1)


def _argsort_reference(sim, cpi, ks=(1, 5, 10)):
    """Per-query stable argsort loop (the benchmark's reference)."""
    sim = np.asarray(sim, dtype=np.float64)
    n, t = sim.shape
    i2t = np.array([
        np.where(np.isin(np.argsort(-sim[i], kind='stable'),
                         np.arange(i * cpi, (i + 1) * cpi)))[0][0]
        for i in range(n)
    ])
    t2i = np.array([
        np.where(np.argsort(-sim[:, j], kind='stable') == j // cpi)[0][0]
        for j in range(t)
    ])
    out = {}
    for k in ks:
        out[f'i2t_R@{k}'] = 100 * np.mean(i2t < k)
    for k in ks:
        out[f't2i_R@{k}'] = 100 * np.mean(t2i < k)
    return out


@pytest.mark.parametrize('chunk', [1, 3, 7, 64])
@pytest.mark.parametrize('cpi', [1, 2, 5])
def test_counting_matches_stable_argsort_with_ties(chunk, cpi):
    rng = np.random.default_rng(cpi * 100 + chunk)
    n = 17
    # integer-valued scores: many ties, also across the gold block
    sim = rng.integers(0, 3, size=(n, n * cpi)).astype(np.float32)
    # duplicate captions (identical columns), as in RSICD
    dup = rng.permutation(n * cpi)[:n * cpi // 3]
    sim[:, dup] = sim[:, (dup + cpi) % (n * cpi)]
    ours = retrieval_recall(sim, cpi, chunk_size=chunk)
    ref = _argsort_reference(sim, cpi)
    for k, v in ref.items():
        assert ours[k] == pytest.approx(v), k


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16,
                                   torch.float64, torch.int64])
def test_low_precision_ties_on_stored_values(dtype):
    g = torch.Generator().manual_seed(0)
    n, cpi = 23, 5
    sim = torch.randn(n, n * cpi, generator=g)
    sim[torch.arange(n).repeat_interleave(cpi), torch.arange(n * cpi)] += 1
    if dtype == torch.int64:
        stored = (sim * 2).round().to(dtype)
    else:
        # round coarsely so that the stored low-precision values tie
        stored = (sim * 4).round().div(4).to(dtype)
    ours = retrieval_recall(stored, cpi, chunk_size=5)
    ref = _argsort_reference(stored.double().numpy(), cpi)
    for k, v in ref.items():
        assert ours[k] == pytest.approx(v), k


def test_all_ties_and_non_contiguous_input():
    n, cpi = 6, 5
    sim = torch.zeros(n, n * cpi)
    ours = retrieval_recall(sim, cpi, chunk_size=4)
    ref = _argsort_reference(sim.numpy(), cpi)
    for k, v in ref.items():
        assert ours[k] == pytest.approx(v), k
    g = torch.Generator().manual_seed(1)
    base = torch.randint(0, 4, (n * cpi, n), generator=g).float()
    ours = retrieval_recall(base.t(), cpi, chunk_size=4)  # a strided view
    ref = _argsort_reference(base.t().numpy(), cpi)
    for k, v in ref.items():
        assert ours[k] == pytest.approx(v), k
    with pytest.raises(ValueError, match='NaN'):
        retrieval_recall(torch.full((1, 5), float('inf')))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
@pytest.mark.parametrize('dtype', [torch.float32, torch.float16,
                                   torch.bfloat16])
def test_cuda_matches_cpu(dtype):
    g = torch.Generator().manual_seed(0)
    # 1093 images: a count / 1093 that a device's mean() (times 1 / n)
    # rounds differently from the host's division
    n, cpi = 1093, 5
    sim = ((torch.randn(n, n * cpi, generator=g) * 4).round() / 4).to(dtype)
    cpu = retrieval_recall(sim, cpi)
    assert retrieval_recall(sim.cuda(), cpi) == cpu


def test_percent_is_the_exact_share_of_hits():
    """Recalls are ``hits / n * 100`` in float64 on every device (a mean()
    that multiplies by ``1 / n`` differs in the last bit for n = 1093)."""
    n = 1093
    sim = torch.eye(n)
    wrong = torch.arange(100)
    sim[wrong, (wrong + 1) % n] = 2.0  # 100 images miss at rank 0
    res = retrieval_recall(sim, captions_per_image=1)
    assert res['i2t_R@1'] == (n - 100) / n * 100
    assert res['t2i_R@1'] == (n - 100) / n * 100
