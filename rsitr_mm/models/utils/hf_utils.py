# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Loading helpers for ``transformers`` models wrapped by our backbones.

``pretrained`` is a local directory written by ``save_pretrained`` (or by
``tools/model_converters/clip_to_hf.py``) or a Hugging Face hub id such as
``openai/clip-vit-base-patch32``, which transformers downloads and caches.
When the id cannot be loaded (no network, ``HF_HUB_OFFLINE=1`` with an empty
cache, a typo), one error names the config key, the id and the ways to
provide the files.
"""
import logging
import os
import os.path as osp
import re
from typing import Any, Optional

import torch
import torch.nn as nn


# A hub id is ``name`` or ``owner/name`` of letters, digits, ``-_.``.
_HUB_ID = re.compile(r'^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$')


def is_hub_id(name: str) -> bool:
    """Whether ``name`` can be a Hugging Face hub id (and is not an existing
    local path)."""
    return (isinstance(name, str) and not osp.exists(name)
            and not name.startswith(('.', '/', '~'))
            and bool(_HUB_ID.match(name)))


def how_to_provide(name: str, what: str, family: str = 'clip') -> str:
    """The two ways to provide the files of ``name`` for config key ``what``.

    Args:
        name (str): The hub id or directory given in the config.
        what (str): The config key.
        family (str): ``'clip'`` (our converter applies) or any other model
            family (``'bert'``...).
    """
    if is_hub_id(name):
        hub_id, local = name, 'checkpoints/' + osp.basename(name)
    else:  # a missing folder: say how to fill it
        hub_id = ('openai/clip-vit-base-patch32'
                  if family == 'clip' else 'bert-base-uncased')
        local = str(name).rstrip('/') or 'checkpoints/model'
    ways = [
        f'(1) on a machine with internet: `huggingface-cli download {hub_id} '
        f'--local-dir {local}` (or any `save_pretrained` folder), then set '
        f'{what}={local}'
    ]
    if family == 'clip':
        ways.append(
            '(2) from OpenAI / OpenCLIP / RemoteCLIP / GeoRSCLIP weights: '
            f'`python tools/model_converters/clip_to_hf.py CKPT {local}`, '
            f'then set {what}={local}')
    else:
        ways.append('(2) drop the `HF_HUB_OFFLINE=1` / `TRANSFORMERS_OFFLINE'
                    '=1` setting on a machine with internet so transformers '
                    'downloads and caches it')
    return '; '.join(ways) + '.'


#: files ``from_pretrained`` reads weights from
WEIGHT_FILES = ('model.safetensors', 'model.safetensors.index.json',
                'pytorch_model.bin', 'pytorch_model.bin.index.json')


def has_weight_files(path: str) -> bool:
    """False only for a local folder without any of :data:`WEIGHT_FILES`
    (a hub id is left to transformers)."""
    if not osp.isdir(path):
        return True
    return any(osp.isfile(osp.join(path, name)) for name in WEIGHT_FILES)


def check_local_dir(path: str, what: str, family: str = 'clip') -> str:
    """Return ``path`` if it is a local directory or a hub id, else raise one
    clear error.

    Args:
        path (str): The directory or hub id given in a config.
        what (str): The config key, used in the error message.
        family (str): Model family, for the advice in the message.
    """
    if isinstance(path, str) and (osp.isdir(path) or is_hub_id(path)):
        return path
    raise FileNotFoundError(
        f'{what}={path!r} is not an existing local directory (nor a Hugging '
        f'Face hub id). Provide it: {how_to_provide(path, what, family)}')


def hf_from_pretrained(cls: Any, name: str, what: str, family: str = 'clip',
                       **kwargs) -> Any:
    """``cls.from_pretrained(name, **kwargs)`` with one clear error.

    A local directory is read with ``local_files_only=True``; a hub id is
    left to transformers (download and cache, or its offline cache under
    ``HF_HUB_OFFLINE=1``).

    Args:
        cls: A transformers class with ``from_pretrained``.
        name (str): Local directory or hub id.
        what (str): The config key, for the error message.
        family (str): Model family, for the advice in the message.
        **kwargs: Passed to ``from_pretrained``.

    Raises:
        FileNotFoundError: The files could not be found or downloaded.
    """
    return hf_call(cls.from_pretrained, name, what, family, **kwargs)


def hf_call(fn: Any, name: str, what: str, family: str = 'clip',
            **kwargs) -> Any:
    """Call ``fn(name, **kwargs)`` (a transformers loader) with the error
    handling of :func:`hf_from_pretrained`."""
    check_local_dir(name, what, family)
    if osp.isdir(name):
        kwargs.setdefault('local_files_only', True)
    try:
        return fn(name, **kwargs)
    except OSError as err:  # transformers' "not found / offline" errors
        offline = (os.environ.get('HF_HUB_OFFLINE', '0') not in ('', '0')
                   or os.environ.get('TRANSFORMERS_OFFLINE', '0')
                   not in ('', '0'))
        reason = ('the machine is offline (HF_HUB_OFFLINE / '
                  'TRANSFORMERS_OFFLINE is set) and the id is not in the '
                  'local cache' if offline and not osp.isdir(name) else
                  str(err).splitlines()[0])
        raise FileNotFoundError(
            f'{what}={name!r} could not be loaded: {reason}. Provide it: '
            f'{how_to_provide(name, what, family)}') from None


def load_clip_tower(tower: str,
                    pretrained: Optional[str] = None,
                    config: Optional[dict] = None,
                    field: Optional[str] = None) -> nn.Module:
    """Build a CLIP tower with its projection (vision or text).

    The weights come from a local CLIP directory (a full ``CLIPModel`` or a
    single tower; the other tower's tensors are ignored) or, with
    ``config``, are randomly initialised.

    Args:
        tower (str): ``'vision'`` or ``'text'``.
        pretrained (str, optional): Local directory or hub id.
        config (dict, optional): Either a full ``CLIPConfig`` dict (with
            ``vision_config`` / ``text_config``) or the tower's own config
            dict (``CLIPVisionConfig`` / ``CLIPTextConfig`` fields).
        field (str, optional): Config key for error messages; defaults to
            ``model.image_encoder.pretrained`` / ``model.text_encoder.
            pretrained``.

    Returns:
        nn.Module: The tower with its projection (``visual_projection`` or
        ``text_projection``).
    """
    import transformers
    from transformers import (CLIPConfig, CLIPTextConfig,
                              CLIPTextModelWithProjection, CLIPVisionConfig,
                              CLIPVisionModelWithProjection)
    assert tower in ('vision', 'text')
    if field is None:
        field = ('model.image_encoder.pretrained'
                 if tower == 'vision' else 'model.text_encoder.pretrained')
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

    config_dict, _ = hf_call(transformers.PretrainedConfig.get_config_dict,
                             pretrained, field, 'clip')
    if config_dict.get('model_type') == 'clip':
        full = hf_from_pretrained(CLIPConfig, pretrained, field, 'clip')
        sub = getattr(full, f'{tower}_config')
        sub.projection_dim = full.projection_dim
    else:
        sub = hf_from_pretrained(cfg_cls, pretrained, field, 'clip')
    if not has_weight_files(pretrained):
        # config (and tokenizer) files only: the architecture, random
        # weights; a checkpoint loaded next brings every tower weight
        from mmengine.logging import print_log
        print_log(
            f'{field}={pretrained!r} holds no weight file: the CLIP {tower} '
            'tower is built from its config.json with random weights, to be '
            'replaced by a checkpoint holding them (tools/test.py CKPT, '
            'init_retriever, load_from).', logger='current',
            level=logging.WARNING)
        return model_cls(sub)
    # The other tower's weights and logit_scale are expected to be unused.
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        model, info = hf_from_pretrained(
            model_cls,
            pretrained,
            field,
            'clip',
            config=sub,
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


def clip_features(output: Any) -> torch.Tensor:
    """The projected embedding from ``CLIPModel.get_text_features`` or
    ``get_image_features``, shape ``(B, D)``.

    transformers 4 returns the tensor itself; transformers 5 returns a
    ``BaseModelOutputWithPooling`` whose ``pooler_output`` holds it.
    """
    if isinstance(output, torch.Tensor):
        return output
    pooled = getattr(output, 'pooler_output', None)
    if not isinstance(pooled, torch.Tensor):
        raise TypeError(
            'expected a tensor or a model output with a `pooler_output` '
            f'tensor from get_*_features, got {type(output).__name__}')
    return pooled
