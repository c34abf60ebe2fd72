# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Swap a shipped model config's pretrained / data-dependent parts for tiny
random ones, so any config builds and trains offline at CI size (the config
tests and the CI-size mode of ``tools/benchmarks/train_throughput.py``)."""
from typing import Optional


def tower_cfg(enc: Optional[dict]) -> Optional[dict]:
    """The tower config, inside a PEFT wrapper (``LoRATower``) if any."""
    return enc['module'] if enc and 'module' in enc else enc


def _localise_towers(model_cfg: dict, clip_dir: str, ann_file: str,
                     word_dim: Optional[int] = None) -> bool:
    """CLIP towers load ``clip_dir``, BiGRU vocabularies come from
    ``ann_file`` (word vectors of ``word_dim`` if given), ResNets start
    from random weights. Returns whether a CLIP tower was pointed."""
    clip = False
    for key in ('image_encoder', 'text_encoder'):
        enc = tower_cfg(model_cfg.get(key))
        if enc is None:
            continue
        if enc.get('type') in ('CLIPVisionBackbone', 'CLIPTextEncoder'):
            enc['pretrained'] = clip_dir
            clip = True
        if enc.get('type') == 'BiGRUTextEncoder':
            enc['ann_files'] = [ann_file]
            enc['vocab_cache'] = None
            if word_dim is not None:
                enc['word_dim'] = word_dim
        if enc.get('type') == 'ResNet':
            enc['init_cfg'] = None
    return clip


def localise_tiny(model_cfg: dict, clip_dir: str, ann_file: str) -> dict:
    """Point a model config at tiny assets, in place.

    CLIP towers load ``clip_dir`` (a tiny CLIP of 2 layers, width 32,
    projecting to 32-d, see :func:`make_tiny_clip_dir`) and every width that
    follows from CLIP's becomes 32; BiGRU vocabularies and OSFCM priors are
    built from ``ann_file``; ResNets start from random weights.

    Args:
        model_cfg (dict): A retriever config (``cfg.model.to_dict()``).
        clip_dir (str): A tiny CLIP directory.
        ann_file (str): A small Karpathy json.

    Returns:
        dict: ``model_cfg``.
    """
    if _localise_towers(model_cfg, clip_dir, ann_file, word_dim=16):
        # the tiny CLIP projects to 32-d instead of ViT-B/32's 512-d
        model_cfg['embed_dim'] = 32
    enc = tower_cfg(model_cfg['image_encoder'])
    if enc.get('type') == 'CLIPVisionBackbone':
        # the tiny CLIP has 2 layers of width 32 and projects to 32-d
        enc['out_indices'] = tuple(
            min(i, 1) if i >= 0 else i for i in enc.get('out_indices', ()))
        neck = model_cfg.get('image_neck')
        if neck:
            if isinstance(neck.get('in_channels'), (list, tuple)):
                neck['in_channels'] = [32] * len(neck['in_channels'])
            else:
                neck['in_channels'] = 32
            if 'embed_dim' in neck:
                neck['embed_dim'] = 32
            if neck.get('main') == 'global':  # BSD on CLIP's embedding
                neck['out_channels'] = 32
        for head in model_cfg.get('heads', None) or []:
            for k in ('in_channels', 'embed_dim'):
                if k in head:
                    head[k] = 32
            if 'semantic_dim' in head:
                head['semantic_dim'] = 8
    return _localise_data(model_cfg, ann_file)


def _localise_data(model_cfg: dict, ann_file: str) -> dict:
    """Point the heads' data files (OSFCM priors) at ``ann_file``."""
    for head in model_cfg.get('heads', None) or []:
        for k in ('ann_file', 'priors_file', 'cache_file'):
            if k in head and head[k] is not None:
                head[k] = ann_file if k == 'ann_file' else None
        if head.get('type') == 'ObjectSemanticClusterHead':
            # shipped configs leave the priors to the training dataset
            head['ann_file'] = ann_file
    return model_cfg


def localise_random(model_cfg: dict, clip_dir: str, ann_file: str) -> dict:
    """Point a model config at full-size random towers, in place.

    Unlike :func:`localise_tiny`, every width stays the config's: CLIP
    towers load ``clip_dir`` (see :func:`make_random_clip_dir`, same
    architecture as the config's), ResNets start from random weights, and
    only the data-dependent parts (BiGRU vocabulary, OSFCM priors) come
    from ``ann_file``. For speed and memory measurements without
    pretrained weights.

    Args:
        model_cfg (dict): A retriever config (``cfg.model.to_dict()``).
        clip_dir (str): A random CLIP directory of the config's size.
        ann_file (str): A small Karpathy json.

    Returns:
        dict: ``model_cfg``.
    """
    _localise_towers(model_cfg, clip_dir, ann_file)
    return _localise_data(model_cfg, ann_file)
