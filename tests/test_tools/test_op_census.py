# Copyright (c) rsitr_mm contributors. All rights reserved.
"""tools/benchmarks/op_census.py: ops of one OSDPM step, by region."""
import os.path as osp

import pytest


def test_census_attributes_every_op_to_a_region(load_tool, repo_root,
                                                tmp_path):
    census = load_tool('benchmarks', 'op_census')
    out = tmp_path / 'census.json'
    result = census.main([osp.join(repo_root, 'configs', 'osdpm_rsicd.py'),
                          '--batch-size', '4', '--json', str(out)])
    regions = result['regions']
    assert out.is_file()
    assert sum(regions.values()) == result['total']
    # forward and backward of every part, nothing unattributed
    for part in ('image_encoder', 'text_encoder', 'image_neck', 'heads.0',
                 'losses.0'):
        assert any(r.startswith(part) for r in regions), part
        assert any(r.startswith('backward:' + part) for r in regions), part
    assert not any(r.endswith(':other') for r in regions)
    small = sum(n for r, n in regions.items()
                if r.replace('backward:', '').split('.')[0].split(':')[0]
                in census.SMALL)
    assert result['small'] == small
    # a step reads nothing back to the host (the losses stay tensors)
    assert result['syncs'] == 0, result['sync_sites']


@pytest.mark.parametrize('precision', ['fp32', 'bf16'])
def test_small_regions_fit_the_op_budget(load_tool, repo_root, precision):
    """DAPN + OSFCM + InfoNCE + glue (forward and backward) launch at most
    200 kernels per training step of the shipped OSDPM config, in float32
    and under bf16 autocast (where the casts count). The census measures
    its second step: the steady state, once the batch's nouns are seen."""
    census = load_tool('benchmarks', 'op_census')
    result = census.main([osp.join(repo_root, 'configs', 'osdpm_rsicd.py'),
                          '--batch-size', '8', '--precision', precision])
    assert result['small'] <= 200, result['regions']
