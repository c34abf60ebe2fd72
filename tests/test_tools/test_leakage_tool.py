# Copyright (c) rsitr_mm contributors. All rights reserved.
"""tools/analysis_tools/leakage.py through its command line."""
import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / 'tools' / 'analysis_tools' / 'leakage.py'


def img(filename, caps, split):
    return dict(filename=filename, split=split,
                sentences=[dict(raw=c) for c in caps])


def scene(seed):
    rng = np.random.default_rng(seed)
    px = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
    return Image.fromarray(px).resize((64, 64), Image.BILINEAR)


def load_tool():
    spec = importlib.util.spec_from_file_location('leakage_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def runner(capsys):
    """``run(*argv)`` calls the tool's ``main`` as the command line does."""
    tool = load_tool()

    def run(*args):
        code = tool.main([str(a) for a in args])
        out = capsys.readouterr()
        return SimpleNamespace(
            returncode=code, stdout=out.out, stderr=out.err)

    return run


def test_tool_table_list_file_and_hashes(tmp_path, capsys):
    run = runner(capsys)
    a = [img('a1.jpg', [f'a1 c{j}' for j in range(5)], 'train'),
         img('a2.jpg', [f'b1 c{j}' for j in range(5)], 'train'),
         img('a3.jpg', [f'a3 c{j}' for j in range(5)], 'test')]
    b = [img('b1.tif', [f'B1 C{j}.' for j in range(5)], 'test'),
         img('b2.tif', [f'b2 c{j}' for j in range(5)], 'test')]
    (tmp_path / 'a.json').write_text(json.dumps(dict(images=a)))
    (tmp_path / 'b.json').write_text(json.dumps(dict(images=b)))
    for d in ('ia', 'ib'):
        (tmp_path / d).mkdir()
    scene(0).save(tmp_path / 'ia' / 'a1.jpg', quality=90)  # = b2.tif
    scene(1).save(tmp_path / 'ia' / 'a2.jpg', quality=90)
    scene(2).save(tmp_path / 'ia' / 'a3.jpg', quality=90)
    scene(0).save(tmp_path / 'ib' / 'b2.tif')
    scene(3).save(tmp_path / 'ib' / 'b1.tif')

    out = tmp_path / 'out' / 'leaks.tsv'
    res = run(tmp_path / 'a.json', tmp_path / 'b.json', '--images-a',
              tmp_path / 'ia', '--images-b', tmp_path / 'ib', '--out', out)
    assert res.returncode == 0, res.stderr
    assert 'comparing train' in res.stderr  # progress output
    rows = [ln for ln in res.stdout.splitlines() if ln.startswith('| ')]
    assert rows[0].startswith('| A | B | imgs A | uniq caps A')
    # train vs test: a2 shares all 5 captions of b1 (after normalisation),
    # a1 is b2 re-encoded (hash match)
    assert rows[1] == ('| train | test | 2 | 10 | 5 | 1 | 1 | 1 | 0 | 0 '
                       '| 1 |')
    assert rows[2] == '| test | test | 1 | 5 | 0 | 0 | 0 | 0 | 0 | 0 | 0 |'
    lines = out.read_text().splitlines()
    assert lines == ['split_a\tfilename_a\tsplit_b', 'train\ta1.jpg\ttest',
                     'train\ta2.jpg\ttest']

    # without images: no hash column, a1 no longer listed
    res = run(tmp_path / 'a.json', tmp_path / 'b.json', '--out', out,
              '--quiet', '--min-shared', '5')
    assert res.returncode == 0 and res.stderr == ''
    assert '| train | test | 2 | 10 | 5 | 1 | 1 | 1 | 0 | 0 | - |' in \
        res.stdout
    assert out.read_text().splitlines()[1:] == ['train\ta2.jpg\ttest']


def test_tool_bad_input(tmp_path, capsys):
    run = runner(capsys)
    (tmp_path / 'a.json').write_text(json.dumps(dict(images=[])))
    res = run(tmp_path / 'a.json', tmp_path / 'nope.json')
    assert res.returncode == 2
    assert "ann_b: no such file" in res.stderr
    res = run(tmp_path / 'a.json', tmp_path / 'a.json', '--images-a',
              tmp_path)
    assert res.returncode == 2 and '--images-b' in res.stderr
