# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Build a tiny random ``transformers`` CLIP directory for tests and demos.

The directory has the same layout as a converted real CLIP model
(``config.json``, ``model.safetensors`` and tokenizer files from the real
CLIP BPE table, so token ids are OpenAI's), but the towers are tiny: image
32 px, patch 8, width 32, 2 layers; text width 32, 2 layers; projection 32.
It is built offline in under two seconds on a 2-core CPU (the tokenizer
files are written once per process and copied). The tokenizer's
``model_max_length`` stays 77 whatever ``context_length`` is.
"""
import os
import os.path as osp
import shutil
import tempfile
from typing import Optional

from .clip_tokenizer_files import write_clip_tokenizer_files

_TOKENIZER_CACHE: Optional[str] = None


def tiny_clip_config(image_size: int = 32,
                     patch_size: int = 8,
                     width: int = 32,
                     layers: int = 2,
                     heads: int = 2,
                     projection_dim: int = 32,
                     context_length: int = 77,
                     hidden_act: str = 'quick_gelu'):
    """The ``transformers.CLIPConfig`` used by :func:`make_tiny_clip_dir`."""
    tower = _tower(width, layers, heads, hidden_act, projection_dim)
    return _clip_config(tower, tower, image_size, patch_size, projection_dim,
                        context_length)


def _tower(width: int, layers: int, heads: int, hidden_act: str,
           projection_dim: int) -> dict:
    """One tower's transformer shape (MLP 4x the width)."""
    return dict(hidden_size=width, intermediate_size=4 * width,
                num_hidden_layers=layers, num_attention_heads=heads,
                hidden_act=hidden_act, projection_dim=projection_dim)


def _clip_config(text: dict, vision: dict, image_size: int, patch_size: int,
                 projection_dim: int, context_length: int = 77):
    """A ``transformers.CLIPConfig`` with OpenAI's vocabulary and special
    token ids."""
    from transformers import CLIPConfig
    return CLIPConfig(
        text_config=dict(vocab_size=49408,
                         max_position_embeddings=context_length,
                         bos_token_id=49406, eos_token_id=49407,
                         pad_token_id=49407, **text),
        vision_config=dict(image_size=image_size, patch_size=patch_size,
                           **vision),
        projection_dim=projection_dim)


def _save_with_tokenizer(model, path: str) -> str:
    """Save ``model`` to ``path`` with the CLIP tokenizer files."""
    model.save_pretrained(path, safe_serialization=True)
    tok_dir = _tokenizer_files()
    for name in os.listdir(tok_dir):
        shutil.copy(osp.join(tok_dir, name), osp.join(path, name))
    return path


def _tokenizer_files() -> str:
    """Write the CLIP tokenizer files once per process and reuse them."""
    global _TOKENIZER_CACHE
    if _TOKENIZER_CACHE is None or not osp.isdir(_TOKENIZER_CACHE):
        _TOKENIZER_CACHE = write_clip_tokenizer_files(
            tempfile.mkdtemp(prefix='rsitr_clip_tok_'))
    return _TOKENIZER_CACHE


def make_tiny_clip_dir(path: str, seed: int = 0, **config_kwargs) -> str:
    """Save a tiny random ``CLIPModel`` and the real CLIP tokenizer.

    Args:
        path (str): Directory to create (or fill).
        seed (int): Seed of the random weights. Defaults to 0.
        **config_kwargs: Overrides for :func:`tiny_clip_config`.

    Returns:
        str: ``path``, loadable by ``CLIPVisionBackbone(pretrained=path)``,
        ``CLIPTextEncoder(pretrained=path)`` and
        ``transformers.CLIPModel.from_pretrained(path)``.
    """
    import torch
    from transformers import CLIPModel

    os.makedirs(path, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIPModel(tiny_clip_config(**config_kwargs))
    return _save_with_tokenizer(model, path)


def random_clip_config(arch: str = 'ViT-B-32', hidden_act: str = 'quick_gelu'):
    """The ``transformers.CLIPConfig`` of a real CLIP architecture.

    Shapes follow :data:`~rsitr_mm.models.utils.clip_convert.KNOWN_ARCHS`
    (OpenAI's: 64-wide attention heads, MLP 4x the width, 77 tokens), so a
    model built from it has the parameter count and FLOPs of the real one.

    Args:
        arch (str): A key of ``KNOWN_ARCHS``, e.g. ``'ViT-B-32'``.
        hidden_act (str): Activation. Defaults to OpenAI's ``quick_gelu``.

    Returns:
        transformers.CLIPConfig
    """
    from .clip_convert import KNOWN_ARCHS
    if arch not in KNOWN_ARCHS:
        raise ValueError(f'unknown CLIP architecture {arch!r}; known: '
                         f'{sorted(KNOWN_ARCHS)}')
    a = KNOWN_ARCHS[arch]

    def tower(width, layers):  # OpenAI's 64-wide heads
        return _tower(width, layers, width // 64, hidden_act,
                      a['embed_dim'])

    return _clip_config(tower(a['text_width'], a['text_layers']),
                        tower(a['vision_width'], a['vision_layers']),
                        a['image_size'], a['patch_size'], a['embed_dim'])


def make_random_clip_dir(path: str, arch: str = 'ViT-B-32',
                         seed: int = 0) -> str:
    """Save a randomly initialised full-size CLIP and the real tokenizer.

    For speed and memory measurements of a real architecture where no
    pretrained weights are at hand (``train_throughput.py --random-init``):
    the numbers of such a model are those of the pretrained one, its
    retrieval quality is nil.

    Args:
        path (str): Directory to create (or fill).
        arch (str): See :func:`random_clip_config`.
        seed (int): Seed of the random weights. Defaults to 0.

    Returns:
        str: ``path``, loadable like a converted CLIP directory.
    """
    import torch
    from transformers import CLIPModel

    os.makedirs(path, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIPModel(random_clip_config(arch))
    return _save_with_tokenizer(model, path)
