# Copyright (c) rsitr_mm contributors. All rights reserved.
"""tools/benchmarks/carry_wheels.py: the list of wheels a GPU image lacks
(dry run: nothing is downloaded)."""
import importlib.util
import os.path as osp

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def carry():
    path = osp.join(ROOT, 'tools', 'benchmarks', 'carry_wheels.py')
    spec = importlib.util.spec_from_file_location('_carry_wheels', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _carried(carry, capsys, monkeypatch, *args):
    monkeypatch.chdir(ROOT)
    assert carry.main(['unused_dir', '--dry-run', *args]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    return {spec.split('==')[0].split('<')[0]: spec
            for spec in line.split(':', 1)[1].split()}


def test_install_requires_is_read_from_setup_py(carry, monkeypatch):
    monkeypatch.chdir(ROOT)
    names = carry.install_requires()
    assert {'torch', 'transformers', 'numpy', 'mmengine', 'mmpretrain',
            'mmcv-lite'} <= set(names)


def test_image_packages_are_left_out(carry, capsys, monkeypatch, tmp_path):
    freeze = tmp_path / 'image-freeze.txt'
    freeze.write_text('# pip freeze of the image\ntorch==2.11.0'
                      '\nTransformers==5.17.0\nnumpy==2.4.0\n'
                      'torchvision==0.26.0\nmmengine==0.10.7\n'
                      'pyyaml @ file:///wheels/pyyaml.whl\n')
    carried = _carried(carry, capsys, monkeypatch, '--image-freeze',
                       str(freeze))
    # what the image has is not carried, nor walked into
    for name in ('torch', 'transformers', 'numpy', 'torchvision',
                 'mmengine', 'pyyaml'):
        assert name not in carried
    # what it lacks is, at the versions installed here, with the build's
    # requirements and the tests' runner
    assert carried['mmpretrain'] == 'mmpretrain==1.2.0'
    assert carried['mmcv-lite'].startswith('mmcv-lite==')
    assert 'pytest' in carried and 'wheel' in carried


def test_default_leaves_out_the_torch_and_transformers_trees(
        carry, capsys, monkeypatch):
    carried = _carried(carry, capsys, monkeypatch)
    for name in ('torch', 'transformers', 'numpy', 'tokenizers',
                 'safetensors', 'huggingface-hub'):
        assert name not in carried
    assert {'mmengine', 'mmpretrain', 'mmcv-lite', 'nltk',
            'open-clip-torch'} <= set(carried)
