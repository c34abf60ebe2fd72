# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Chunked exact top-k against a full matrix product + top-k."""
import importlib.util

import numpy as np
import pytest
import torch

from rsitr_mm.apis import exact_topk


def reference_topk(queries: np.ndarray, gallery: np.ndarray, k: int):
    """Full product, then order by (score desc, index asc) with numpy."""
    scores = (torch.from_numpy(queries).float() @
              torch.from_numpy(gallery).float().t()).numpy()
    idx = np.stack([
        np.lexsort((np.arange(len(row)), -row))[:k] for row in scores
    ])
    return np.take_along_axis(scores, idx, 1), idx


def _normalised(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize('chunk_size', [1, 7, 64, 333, 1000, 5000])
@pytest.mark.parametrize('k', [1, 10, 50])
def test_matches_full_product_random(chunk_size, k):
    rng = np.random.default_rng(chunk_size * 100 + k)
    queries, gallery = _normalised(rng, 6, 16), _normalised(rng, 1000, 16)
    scores, indices = exact_topk(queries, gallery, k, chunk_size=chunk_size)
    ref_scores, ref_indices = reference_topk(queries, gallery, k)
    assert scores.shape == indices.shape == (6, k)
    assert indices.dtype == np.int64 and scores.dtype == np.float32
    np.testing.assert_array_equal(indices, ref_indices)
    np.testing.assert_allclose(scores, ref_scores, rtol=0, atol=1e-6)
    # and against torch.topk's values (sorted, best first)
    full = torch.from_numpy(queries) @ torch.from_numpy(gallery).t()
    np.testing.assert_allclose(
        scores, full.topk(k, dim=1).values.numpy(), rtol=0, atol=1e-6)


@pytest.mark.parametrize('chunk_size', [3, 16, 100, 499, 10000])
@pytest.mark.parametrize('dtype', ['float32', 'float16'])
def test_ties_are_broken_by_lower_index(chunk_size, dtype):
    # Small integer vectors: every dot product is an exact small integer in
    # any summation order (also in float16), with many ties.
    rng = np.random.default_rng(chunk_size)
    gallery = rng.integers(-2, 3, size=(499, 8)).astype(np.float32)
    gallery[250] = gallery[3]  # an exact duplicate across chunks
    queries = rng.integers(-2, 3, size=(5, 8)).astype(np.float32)
    k = 50  # larger than several chunk sizes
    scores, indices = exact_topk(
        queries, gallery, k, chunk_size=chunk_size, dtype=dtype)
    ref_scores, ref_indices = reference_topk(queries, gallery, k)
    np.testing.assert_array_equal(indices, ref_indices)
    np.testing.assert_array_equal(scores, ref_scores)
    # within a run of equal scores, indices increase
    for s_row, i_row in zip(scores, indices):
        same = s_row[1:] == s_row[:-1]
        assert same.any()
        assert (i_row[1:][same] > i_row[:-1][same]).all()


def test_all_equal_scores_give_first_indices():
    gallery = np.ones((40, 4), dtype=np.float32)
    queries = np.ones((2, 4), dtype=np.float32)
    scores, indices = exact_topk(queries, gallery, 7, chunk_size=6)
    np.testing.assert_array_equal(indices, np.tile(np.arange(7), (2, 1)))
    np.testing.assert_array_equal(scores, np.full((2, 7), 4.0, np.float32))


def test_memmap_float16_gallery(tmp_path):
    rng = np.random.default_rng(0)
    data = _normalised(rng, 3000, 32)
    mm = np.lib.format.open_memmap(
        str(tmp_path / 'g.npy'), mode='w+', dtype=np.float16,
        shape=data.shape)
    mm[:] = data
    mm.flush()
    del mm
    gallery = np.load(str(tmp_path / 'g.npy'), mmap_mode='r')
    queries = _normalised(rng, 4, 32)
    scores, indices = exact_topk(queries, gallery, 10, chunk_size=512)
    ref_scores, ref_indices = reference_topk(
        queries, np.asarray(gallery, dtype=np.float32), 10)
    np.testing.assert_array_equal(indices, ref_indices)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-6)
    # half-precision products: same scores to float16 accuracy
    s16, i16 = exact_topk(queries, gallery, 10, chunk_size=512,
                          dtype='float16')
    np.testing.assert_allclose(s16, ref_scores, atol=5e-3)
    assert len(set(i16[0]) & set(ref_indices[0])) >= 8


def test_tensor_inputs_and_k_larger_than_gallery():
    rng = np.random.default_rng(1)
    gallery = torch.from_numpy(_normalised(rng, 9, 8))
    queries = torch.from_numpy(_normalised(rng, 3, 8))
    scores, indices = exact_topk(queries, gallery, 20, chunk_size=4)
    assert indices.shape == (3, 9)
    np.testing.assert_array_equal(np.sort(indices, axis=1),
                                  np.tile(np.arange(9), (3, 1)))
    assert (np.diff(scores, axis=1) <= 0).all()


def test_bad_input_is_refused():
    q, g = np.zeros((2, 4), np.float32), np.zeros((5, 3), np.float32)
    with pytest.raises(ValueError, match='4-d but the gallery is 3-d'):
        exact_topk(q, g, 2)
    g = np.zeros((5, 4), np.float32)
    with pytest.raises(ValueError, match='k must be'):
        exact_topk(q, g, 0)
    with pytest.raises(ValueError, match='dtype'):
        exact_topk(q, g, 2, dtype='int8')
    with pytest.raises(ValueError, match='backend'):
        exact_topk(q, g, 2, backend='annoy')
    with pytest.raises(ValueError, match='empty'):
        exact_topk(q, g[:0], 2)


def test_faiss_backend():
    rng = np.random.default_rng(2)
    queries, gallery = _normalised(rng, 4, 16), _normalised(rng, 500, 16)
    if importlib.util.find_spec('faiss') is None:
        with pytest.raises(ImportError, match='faiss'):
            exact_topk(queries, gallery, 5, backend='faiss')
        return
    scores, indices = exact_topk(queries, gallery, 5, backend='faiss')
    ref_scores, ref_indices = reference_topk(queries, gallery, 5)
    np.testing.assert_array_equal(indices, ref_indices)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)


requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                   reason='needs a CUDA GPU')


def test_non_contiguous_and_big_endian_galleries():
    rng = np.random.default_rng(3)
    queries, gallery = _normalised(rng, 4, 8), _normalised(rng, 300, 8)
    ref_scores, ref_indices = reference_topk(queries, gallery, 7)
    for gal in (np.asfortranarray(gallery), gallery.astype('>f4'),
                torch.from_numpy(gallery).t().contiguous().t()):
        scores, indices = exact_topk(queries, gal, 7, chunk_size=64)
        np.testing.assert_array_equal(indices, ref_indices)
        np.testing.assert_allclose(scores, ref_scores, rtol=0, atol=1e-6)


def test_searches_run_on_the_model_device(monkeypatch):
    from rsitr_mm.apis import search as search_mod
    assert search_mod.model_device(torch.nn.Linear(2, 2)) == \
        torch.device('cpu')
    assert search_mod.model_device(torch.nn.Identity()) == \
        torch.device('cpu')
    seen = {}

    def fake_topk(queries, gallery, k, **kwargs):
        seen.update(kwargs)
        return np.zeros((1, 1), np.float32), np.zeros((1, 1), np.int64)

    class Index:
        embeddings = np.zeros((1, 2), np.float32)
        paths = ['a.png']

    monkeypatch.setattr(search_mod, 'exact_topk', fake_topk)
    search_mod._search_index(Index(), torch.zeros(1, 2), ['q'], 1, 8,
                             'float32', 'torch', torch.device('cpu'))
    assert seen['device'] == torch.device('cpu')


@pytest.mark.cuda
@requires_cuda
@pytest.mark.parametrize('dtype', ['float32', 'float16'])
@pytest.mark.parametrize('store', [np.float32, np.float16])
def test_cuda_matches_cpu(dtype, store):
    rng = np.random.default_rng(0)
    gallery = rng.integers(-2, 3, size=(999, 8)).astype(store)
    queries = rng.integers(-2, 3, size=(5, 8)).astype(np.float32)
    cpu = exact_topk(queries, gallery, 40, chunk_size=100, dtype=dtype)
    gpu = exact_topk(torch.from_numpy(queries).cuda(), gallery, 40,
                     chunk_size=100, dtype=dtype)
    np.testing.assert_array_equal(cpu[1], gpu[1])
    np.testing.assert_array_equal(cpu[0], gpu[0])
