# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Offline loading helpers for ``transformers`` models wrapped by our
backbones (local directories only, never the hub)."""
import json
import os.path as osp
from typing import Optional

import torch.nn as nn


def check_local_dir(path: str, what: str) -> str:
    """Raise a clear error unless ``path`` is a local directory.

    Args:
        path (str): The directory given in a config.
        what (str): The config field, used in the error message.
    """
    if not isinstance(path, str) or not osp.isdir(path):
        raise FileNotFoundError(
            f'{what}={path!r} must be a local directory written by '
            '`save_pretrained` or `tools/model_converters/clip_to_hf.py`; '
            'hub names are not downloaded.')
    return path


def load_clip_tower(tower: str,
                    pretrained: Optional[str] = None,
                    config: Optional[dict] = None,
                    field: str = 'pretrained') -> nn.Module:
    """Build a CLIP tower with its projection (vision or text).

    The weights come from a local CLIP directory (a full ``CLIPModel`` or a
    single tower; the other tower's tensors are ignored) or, with
    ``config``, are randomly initialised.

    Args:
        tower (str): ``'vision'`` or ``'text'``.
        pretrained (str, optional): Local directory.
        config (dict, optional): Either a full ``CLIPConfig`` dict (with
            ``vision_config`` / ``text_config``) or the tower's own config
            dict (``CLIPVisionConfig`` / ``CLIPTextConfig`` fields).
        field (str): Config field name for error messages.

    Returns:
        nn.Module: The tower with its projection (``visual_projection`` or
        ``text_projection``).
    """
    import transformers
    from transformers import (CLIPConfig, CLIPTextConfig,
                              CLIPTextModelWithProjection, CLIPVisionConfig,
                              CLIPVisionModelWithProjection)
    assert tower in ('vision', 'text')
    model_cls = (
        CLIPVisionModelWithProjection
        if tower == 'vision' else CLIPTextModelWithProjection)
    cfg_cls = CLIPVisionConfig if tower == 'vision' else CLIPTextConfig
    if (pretrained is None) == (config is None):
        raise ValueError(f'Give exactly one of `{field}` (a local directory) '
                         'or `config` (random init); got '
                         f'{field}={pretrained!r}, config={config!r}.')
    if config is not None:
        config = dict(config)
        if 'vision_config' in config or 'text_config' in config:
            full = CLIPConfig(**config)
            sub = getattr(full, f'{tower}_config')
            sub.projection_dim = full.projection_dim
        else:
            sub = cfg_cls(**config)
        return model_cls(sub)

    check_local_dir(pretrained, field)
    cfg_file = osp.join(pretrained, 'config.json')
    if not osp.isfile(cfg_file):
        raise FileNotFoundError(f'{field}={pretrained!r} has no config.json.')
    with open(cfg_file, encoding='utf-8') as f:
        model_type = json.load(f).get('model_type')
    if model_type == 'clip':
        full = CLIPConfig.from_pretrained(pretrained, local_files_only=True)
        sub = getattr(full, f'{tower}_config')
        sub.projection_dim = full.projection_dim
    else:
        sub = cfg_cls.from_pretrained(pretrained, local_files_only=True)
    # The other tower's weights and logit_scale are expected to be unused.
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        model, info = model_cls.from_pretrained(
            pretrained,
            config=sub,
            local_files_only=True,
            output_loading_info=True)
    finally:
        transformers.logging.set_verbosity(verbosity)
    if info['missing_keys'] or info['mismatched_keys']:
        raise RuntimeError(
            f'{field}={pretrained!r} does not hold the CLIP {tower} tower: '
            f"missing {info['missing_keys'][:5]}, mismatched "
            f"{info['mismatched_keys'][:5]}.")
    return model


def protect_hf_init(module: nn.Module) -> None:
    """Stop mmengine's ``BaseModule.init_weights`` from calling
    ``PreTrainedModel.init_weights`` (which would re-initialise loaded
    weights): mmengine skips children whose ``is_init`` is True."""
    module.is_init = True
