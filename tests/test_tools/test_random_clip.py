# Copyright (c) rsitr_mm contributors. All rights reserved.
"""``tools/model_converters/random_clip.py ARCH OUT_DIR`` writes a CLIP
folder (weights, config, tokenizer) that the CLIP towers load offline.

The architecture is swapped for the tiny test CLIP (a ViT-B/32 folder is
600 MB); everything else runs as on the command line."""
import os.path as osp

import pytest

from rsitr_mm.models.utils import tiny_clip
from rsitr_mm.models.utils.hf_utils import has_weight_files, load_clip_tower


def test_writes_a_loadable_random_clip_folder(load_tool, tmp_path,
                                              monkeypatch, capsys):
    tool = load_tool('model_converters', 'random_clip')
    asked = []
    monkeypatch.setattr(tiny_clip, 'random_clip_config', lambda arch, **kw: (
        asked.append(arch), tiny_clip.tiny_clip_config())[1])
    out = str(tmp_path / 'random-clip')
    tool.main(['ViT-B-32', out, '--seed', '3'])
    assert asked == ['ViT-B-32']
    assert 'random ViT-B-32 CLIP written to' in capsys.readouterr().out
    assert has_weight_files(out)
    assert osp.isfile(osp.join(out, 'tokenizer_config.json'))
    vision = load_clip_tower('vision', out)
    text = load_clip_tower('text', out)
    assert vision.config.hidden_size == tiny_clip.tiny_clip_config(
    ).vision_config.hidden_size
    assert text.config.vocab_size > 0
    with pytest.raises(SystemExit):
        tool.main(['ViT-X-1', out])
