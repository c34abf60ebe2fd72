# Copyright (c) rsitr_mm contributors. All rights reserved.
"""tools/benchmarks/gpu_check.py runs on a CPU with tiny towers and writes
its JSON after every run."""
import json


def test_gpu_check_cpu_proof(load_tool, tmp_path):
    check = load_tool('benchmarks', 'gpu_check')
    out = tmp_path / 'check.json'
    report = check.main(['--device', 'cpu', '--tiny', '--batch-sizes', '2',
                         '--iters', '1', '--warmup', '1', '--reps', '1',
                         '--variants', 'today', 'fixed', '--out', str(out)])
    saved = json.loads(out.read_text())
    assert saved['runs'] == json.loads(json.dumps(report['runs']))
    rows = {r['variant']: r for r in saved['runs']}
    assert set(rows) == {'today', 'fixed'}
    for row in rows.values():
        assert 'error' not in row, row
        assert row['images_per_s'] > 0 and row['kernels_per_step'] > 0
    # the fixed step reads less back to the host than today's
    assert rows['fixed']['syncs_per_step'] < rows['today']['syncs_per_step']
