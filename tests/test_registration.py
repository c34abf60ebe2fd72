# Copyright (c) rsitr_mm contributors. All rights reserved.
import subprocess
import sys

import pytest
from mmengine.registry import MODEL_WRAPPERS
from mmpretrain.registry import DATASETS, HOOKS, LOOPS, METRICS, MODELS

import rsitr_mm

EXPECTED = {
    MODELS: [
        'DualEncoderRetriever', 'CLIPVisionBackbone', 'CLIPTextEncoder',
        'HFTextEncoder', 'BiGRUTextEncoder', 'TinyCNN',
        'BidirectionalScaleDecoupling', 'DualAttentionPerception',
        'LabelSemanticHead', 'ObjectSemanticClusterHead',
        'MultiPositiveInfoNCELoss', 'TripletRankingLoss',
        'SemanticGuidedTripletLoss'
    ],
    DATASETS: [
        'RSRetrievalDataset', 'RSICD', 'RSITMD', 'UCMCaptions',
        'SydneyCaptions', 'SyntheticScenes'
    ],
    METRICS: ['RSRetrievalMetric'],
    LOOPS: ['RSRetrievalValLoop', 'RSRetrievalTestLoop',
            'ResumableEpochBasedTrainLoop'],
    MODEL_WRAPPERS: ['CPUFriendlyDDP'],
}


def test_version():
    assert isinstance(rsitr_mm.__version__, str)
    assert rsitr_mm.version_info[0] >= 0


@pytest.mark.parametrize('registry', list(EXPECTED), ids=lambda r: r.name)
def test_everything_is_registered(registry):
    for name in EXPECTED[registry]:
        assert registry.get(name) is not None, name
    assert HOOKS is not None


@pytest.mark.parametrize('block', [False, True],
                         ids=['with_pycocotools', 'without_pycocotools'])
def test_import_with_and_without_pycocotools(block):
    # "not installed" as mmpretrain sees it: no distribution metadata and
    # no importable module
    hide = ('import importlib_metadata as im\n'
            '_dist = im.distribution\n'
            'def _no_coco(name):\n'
            "    if name.lower() == 'pycocotools':\n"
            '        raise im.PackageNotFoundError(name)\n'
            '    return _dist(name)\n'
            'im.distribution = _no_coco\n'
            "sys.modules['pycocotools'] = None\n")
    code = (
        'import sys\n'
        + (hide if block else '')
        + 'import rsitr_mm\n'
        'from mmpretrain.registry import MODELS\n'
        'from mmengine.registry import init_default_scope\n'
        "init_default_scope('mmpretrain')\n"
        "m = MODELS.build(dict(type='TinyCNN', base_channels=4))\n"
        "loss = MODELS.build(dict(type='MultiPositiveInfoNCELoss'))\n"
        "from mmpretrain.utils.dependency import WITH_MULTIMODAL\n"
        "print('OK', type(m).__name__, 'multimodal', WITH_MULTIMODAL)\n")
    proc = subprocess.run([sys.executable, '-c', code],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f'OK TinyCNN multimodal {not block}' in proc.stdout


def test_standalone_config_outside_repo_uses_custom_imports(tmp_path):
    """A config with no _base_ from this repo builds our modules through
    ``custom_imports`` alone (the script never imports rsitr_mm)."""
    from rsitr_mm.datasets.vocab import Vocabulary
    vocab = str(tmp_path / 'vocab.json')
    Vocabulary.build(['two white tanks', 'a green forest']).save(vocab)
    cfg_file = tmp_path / 'my_project_cfg.py'
    cfg_file.write_text(
        "custom_imports = dict(imports=['rsitr_mm'], "
        'allow_failed_imports=False)\n'
        "default_scope = 'mmpretrain'\n"
        'model = dict(\n'
        "    type='DualEncoderRetriever',\n"
        "    image_encoder=dict(type='TinyCNN', base_channels=4,\n"
        '                       num_stages=2, out_indices=(0, 1)),\n'
        "    image_neck=dict(type='BidirectionalScaleDecoupling',\n"
        '                    in_channels=[4, 8]),\n'
        "    text_encoder=dict(type='BiGRUTextEncoder',\n"
        f'                      vocab_file={vocab!r}, word_dim=8,\n'
        '                      hidden_dim=16),\n'
        '    text_in_channels=16, embed_dim=8,\n'
        "    losses=[dict(type='SemanticGuidedTripletLoss',\n"
        "                 semantic='label')])\n")
    code = ('import sys\n'
            'from mmengine.config import Config\n'
            'from mmengine.registry import init_default_scope\n'
            'from mmpretrain.registry import MODELS\n'
            f'cfg = Config.fromfile({str(cfg_file)!r})\n'
            "assert 'rsitr_mm' in sys.modules\n"
            'init_default_scope(cfg.default_scope)\n'
            'try:\n'
            '    model = MODELS.build(cfg.model)\n'
            'except ValueError as err:\n'
            '    print("ERR", err)\n'
            '    raise\n'
            "print('BUILT', type(model.image_neck).__name__)\n")
    proc = subprocess.run([sys.executable, '-c', code], cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-1000:]
    assert 'BUILT BidirectionalScaleDecoupling' in proc.stdout
