# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Exact placement of gathered rows; duplicates keep the first occurrence."""
import pytest
import torch

from rsitr_mm.utils.dist import (all_gather_variable, first_occurrence,
                                 gather_indexed_rows, gather_sizes)


def test_duplicates_keep_the_first_occurrence():
    # index 1 appears twice (a padded duplicate re-encoded elsewhere) with
    # rows that differ in the last bits, as they may on a GPU
    rows = torch.tensor([[0.0], [1.0], [2.0], [1.0 + 1e-6], [3.0]])
    index = torch.tensor([0, 1, 2, 1, 3])
    out = gather_indexed_rows(rows, index, 4)
    assert out[:, 0].tolist() == [0.0, 1.0, 2.0, 3.0]
    # the later duplicate first: that one is kept instead, deterministically
    out = gather_indexed_rows(rows.flip(0), index.flip(0), 4)
    assert out[1, 0].item() == pytest.approx(1.0 + 1e-6)
    for _ in range(3):  # same answer every time
        torch.testing.assert_close(
            gather_indexed_rows(rows, index, 4)[1], rows[1], rtol=0, atol=0)


def test_first_occurrence_and_missing_items():
    first = first_occurrence(torch.tensor([2, 0, 2, 0]), 4)
    assert first.tolist() == [1, 4, 0, 4]  # 4 = absent
    with pytest.raises(RuntimeError, match='never'):
        gather_indexed_rows(torch.zeros(2, 3), torch.tensor([0, 2]), 3)
    with pytest.raises(ValueError, match='out of range'):
        gather_indexed_rows(torch.zeros(2, 3), torch.tensor([0, 3]), 3)


def test_single_process_gathers_are_local():
    t = torch.arange(6).view(3, 2)
    assert gather_sizes(3, t.device) == [3]
    parts = all_gather_variable(t)
    assert len(parts) == 1 and parts[0] is t
