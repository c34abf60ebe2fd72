# Copyright (c) rsitr_mm contributors. All rights reserved.
"""tools/retrieve.py end to end in subprocesses: index, text, image,
captions."""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from rsitr_mm.apis import init_retriever, list_images
from rsitr_mm.datasets.synthetic import generate_synthetic_dataset

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'retrieve.py')

CONFIG = """
_base_ = [r'{repo}/configs/demo_tinycnn-bigru_synthetic.py']
model = dict(
    image_encoder=dict(base_channels=8, num_stages=3, out_indices=(2, )),
    image_in_channels=32,
    text_encoder=dict(ann_files=[r'{ann}'], word_dim=16, hidden_dim=32),
    text_in_channels=32,
    embed_dim=32)
"""


def _run(args, cwd):
    env = dict(os.environ, HF_HUB_OFFLINE='1', PYTHONUNBUFFERED='1')
    proc = subprocess.run([sys.executable, TOOL] + args, cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return proc.stdout


def _ranking(stdout: str):
    """(score, item) lines printed under each ``query:`` line."""
    rows = []
    for line in stdout.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[0].rstrip('.').isdigit():
            rows.append((float(parts[1]), parts[2]))
    return rows


@pytest.fixture(scope='module')
def setup(tmp_path_factory, tiny_demo):
    root = tmp_path_factory.mktemp('retrieve')
    data = str(root / 'data')
    generate_synthetic_dataset(
        data, num_images=14, image_size=32, seed=2, split=(8, 3, 3),
        progress=False)
    ann = osp.join(data, 'dataset_synthetic.json')
    config = str(root / 'tiny.py')
    with open(config, 'w') as f:
        f.write(CONFIG.format(repo=REPO, ann=ann))
    images = osp.join(data, 'images')
    # a random tiny model, BatchNorm statistics set from the images
    torch.manual_seed(0)
    ckpt = tiny_demo.save_calibrated(
        init_retriever(config),
        [osp.join(images, f) for f in list_images(images)],
        str(root / 'tiny.pth'))
    return dict(root=root, config=config, ckpt=ckpt, images=images)


def test_cli_end_to_end(setup, capsys):
    root, images = setup['root'], setup['images']
    index_dir = str(root / 'index')
    out = _run([
        'index', setup['config'], setup['ckpt'], images, index_dir,
        '--batch-size', '4', '--dtype', 'float16'
    ], cwd=str(root))
    assert '14 images indexed' in out
    meta = json.load(open(osp.join(index_dir, 'meta.json')))
    assert meta['complete'] and meta['dtype'] == 'float16'
    assert meta['identity']['config'] == setup['config']

    # text query; config and checkpoint come from the index meta on request
    grid = str(root / 'text.png')
    out = _run(['text', index_dir, 'two white storage tanks', '-k', '3',
                '--out', grid, '--use-index-model'], cwd=str(root))
    assert 'query: two white storage tanks' in out
    ranking = _ranking(out)
    assert len(ranking) == 3
    assert [s for s, _ in ranking] == sorted([s for s, _ in ranking],
                                             reverse=True)
    assert all(osp.isfile(p) for _, p in ranking)
    with open(grid, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'

    # image query with an indexed image: it comes back first, score ~1
    query = osp.join(images, list_images(images)[5])
    grid = str(root / 'image.png')
    out = _run(['image', index_dir, query, '-k', '4', '--out', grid,
                '--config', setup['config'], '--checkpoint', setup['ckpt']],
               cwd=str(root))
    ranking = _ranking(out)
    assert len(ranking) == 4
    assert ranking[0][1] == query
    assert ranking[0][0] == pytest.approx(1.0, abs=2e-3)
    assert ranking[1][0] < ranking[0][0]
    assert osp.getsize(grid) > 1000

    # image -> caption over a caption file
    captions = str(root / 'captions.txt')
    with open(captions, 'w') as f:
        f.write('a dense forest\nsome storage tanks\nan airport with a '
                'runway\na river crossing farmland\n')
    grid = str(root / 'captions.png')
    # in-process (the three subprocesses above cover the process path)
    spec = importlib.util.spec_from_file_location('retrieve_tool', TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.main([
        'captions', setup['config'], setup['ckpt'], query, '--captions',
        captions, '-k', '2', '--out', grid
    ])
    ranking = _ranking(capsys.readouterr().out)
    assert len(ranking) == 2
    assert {c for _, c in ranking} <= {
        'a dense forest', 'some storage tanks', 'an airport with a runway',
        'a river crossing farmland'
    }
    assert osp.isfile(grid)


def test_docs_commands_parse_and_name_the_query_model(load_tool):
    """Every concrete ``tools/retrieve.py`` command of docs/search.md parses,
    and its text / image searches name the model the tool requires."""
    import shlex
    tool = load_tool('retrieve')
    with open(osp.join(REPO, 'docs', 'search.md'), encoding='utf-8') as f:
        text = f.read().replace('\\\n', ' ')
    commands = [line.split('python tools/retrieve.py', 1)[1]
                for line in text.splitlines()
                if line.startswith('python tools/retrieve.py')
                and '[' not in line and '(' not in line]
    searches = 0
    for command in commands:
        args = tool.parse_args(shlex.split(command))
        if args.command in ('text', 'image'):
            searches += 1
            assert args.use_index_model or (args.config and args.checkpoint)
    assert searches == 2
