"""Hub ids and local folders for the transformers towers (offline)."""
import pytest
from mmpretrain.registry import MODELS

import rsitr_mm  # noqa: F401
from rsitr_mm.models.utils.hf_utils import (check_local_dir, hf_from_pretrained,
                                            is_hub_id)


@pytest.mark.parametrize('name,expected', [
    ('openai/clip-vit-base-patch32', True),
    ('bert-base-uncased', True),
    ('./checkpoints/clip', False),
    ('/abs/path/clip', False),
    ('a/b/c', False),
    ('', False),
])
def test_is_hub_id(name, expected):
    assert is_hub_id(name) is expected


def test_existing_local_dir_is_accepted(tmp_path):
    assert check_local_dir(str(tmp_path), 'k') == str(tmp_path)


@pytest.mark.parametrize('cfg,key,converter', [
    (dict(type='CLIPVisionBackbone', pretrained='rsitr-test/no-such-clip'),
     'model.image_encoder.pretrained', True),
    (dict(type='CLIPTextEncoder', pretrained='rsitr-test/no-such-clip'),
     'model.text_encoder.pretrained', True),
    (dict(type='HFTextEncoder', pretrained='rsitr-test/no-such-bert'),
     'model.text_encoder.pretrained', False),
])
def test_offline_hub_id_gives_one_clear_message(cfg, key, converter):
    with pytest.raises(FileNotFoundError) as info:
        MODELS.build(cfg)
    msg = str(info.value)
    assert key in msg and cfg['pretrained'] in msg
    assert 'huggingface-cli download ' + cfg['pretrained'] in msg
    assert ('clip_to_hf.py' in msg) is converter


def test_missing_local_folder_names_the_folder_not_a_fake_id():
    with pytest.raises(FileNotFoundError) as info:
        MODELS.build(dict(type='CLIPVisionBackbone',
                          pretrained='./checkpoints/missing-clip'))
    msg = str(info.value)
    assert 'not an existing local directory' in msg
    assert '--local-dir ./checkpoints/missing-clip' in msg
    assert 'huggingface-cli download openai/clip-vit-base-patch32' in msg


def test_local_tiny_clip_still_loads(tmp_path):
    from transformers import CLIPVisionConfig

    from rsitr_mm.models.utils.tiny_clip import make_tiny_clip_dir
    path = make_tiny_clip_dir(str(tmp_path / "clip"))
    cfg = hf_from_pretrained(CLIPVisionConfig, path, 'k')
    assert cfg.hidden_size > 0
    enc = MODELS.build(dict(type='CLIPTextEncoder', pretrained=path))
    assert enc(["a road"]).shape[0] == 1
