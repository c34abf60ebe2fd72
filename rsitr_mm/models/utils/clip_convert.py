# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Convert OpenAI CLIP / OpenCLIP checkpoints into a ``transformers`` CLIP
directory.

Supported inputs (ViT image towers with the OpenAI text transformer, e.g.
ViT-B/32, ViT-B/16, ViT-L/14, ViT-L/14@336 and fine-tuned copies such as
RemoteCLIP and GeoRSCLIP):

* an OpenAI TorchScript archive (read with ``torch.jit.load(...)
  .state_dict()``, never executed);
* a plain state dict saved with ``torch.save`` (OpenAI or OpenCLIP key
  layout, which are the same for these models), optionally wrapped in
  ``{'state_dict': ...}`` or ``{'model': ...}`` and/or with ``module.``
  prefixes from DDP;
* a ``.safetensors`` file with the same keys.

The architecture is inferred from the tensor shapes. The one thing shapes do
not tell is the MLP activation: OpenAI trained with QuickGELU, while
OpenCLIP models created from a plain config (``ViT-B-32`` and not
``ViT-B-32-quickgelu``; RemoteCLIP and GeoRSCLIP are such models) use exact
GELU. ``act='auto'`` picks ``quick_gelu`` for TorchScript archives and
state dicts carrying OpenAI's ``input_resolution`` / ``context_length`` /
``vocab_size`` entries, and ``gelu`` otherwise.
"""
import math
import os
import os.path as osp
import re
import shutil
import tempfile
import warnings
import zipfile
from collections import OrderedDict
from typing import Dict, Optional, Tuple

import torch

from .clip_tokenizer_files import CLIP_VOCAB_SIZE, write_clip_tokenizer_files

#: Reference shapes of the common architectures (used to name the inferred
#: architecture and to check ``arch=``).
KNOWN_ARCHS = {
    'ViT-B-32':
    dict(
        vision_width=768,
        vision_layers=12,
        patch_size=32,
        image_size=224,
        text_width=512,
        text_layers=12,
        embed_dim=512),
    'ViT-B-16':
    dict(
        vision_width=768,
        vision_layers=12,
        patch_size=16,
        image_size=224,
        text_width=512,
        text_layers=12,
        embed_dim=512),
    'ViT-L-14':
    dict(
        vision_width=1024,
        vision_layers=24,
        patch_size=14,
        image_size=224,
        text_width=768,
        text_layers=12,
        embed_dim=768),
    'ViT-L-14-336':
    dict(
        vision_width=1024,
        vision_layers=24,
        patch_size=14,
        image_size=336,
        text_width=768,
        text_layers=12,
        embed_dim=768),
}
_OPENAI_MARKERS = ('input_resolution', 'context_length', 'vocab_size')
_WRAPPER_KEYS = ('state_dict', 'model', 'module', 'model_state_dict')


def _is_torchscript(path: str) -> bool:
    """A TorchScript archive is a zip file with a ``code/`` folder."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any('/code/' in name or name.startswith('code/')
                   for name in zf.namelist())


def unwrap_state_dict(obj) -> Dict[str, torch.Tensor]:
    """Strip ``state_dict`` / ``model`` wrappers and ``module.`` prefixes.

    Args:
        obj: What ``torch.load`` returned.

    Returns:
        dict: A flat ``{key: tensor}`` mapping.
    """
    while isinstance(
            obj, dict) and not any(torch.is_tensor(v) for v in obj.values()):
        for key in _WRAPPER_KEYS:
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
        else:
            raise ValueError(
                'The checkpoint holds no tensors at its top level and none of '
                f'the wrapper keys {_WRAPPER_KEYS}; found keys '
                f'{sorted(obj)[:10]}.')
    if not isinstance(obj, dict):
        raise TypeError(f'Expected a state dict, got {type(obj).__name__}.')
    out = OrderedDict()
    for key, value in obj.items():
        while key.startswith('module.'):
            key = key[len('module.'):]
        out[key] = value
    return out


def load_clip_checkpoint(
        path: str,
        trust_pickle: bool = False) -> Tuple[Dict[str, torch.Tensor], bool]:
    """Read a CLIP checkpoint of any supported kind.

    Args:
        path (str): TorchScript archive, ``torch.save`` file or
            ``.safetensors`` file.
        trust_pickle (bool): Allow arbitrary pickled objects when the file
            cannot be read with ``weights_only=True``. Only for files you
            trust. Defaults to False.

    Returns:
        tuple: ``(state_dict, is_openai)`` where ``is_openai`` is True for
        TorchScript archives and state dicts with OpenAI's marker entries.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'CLIP checkpoint {path} does not exist.')
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        state_dict = unwrap_state_dict(load_file(path))
        is_openai = False
    elif _is_torchscript(path):
        with warnings.catch_warnings():
            # torch >= 2.10 flags TorchScript as deprecated; we only read the
            # tensors of the archive.
            warnings.simplefilter('ignore', FutureWarning)
            archive = torch.jit.load(path, map_location='cpu')
        state_dict = unwrap_state_dict(dict(archive.state_dict()))
        is_openai = True
    else:
        try:
            obj = torch.load(path, map_location='cpu', weights_only=True)
        except Exception as err:  # pickle with non-tensor objects
            if not trust_pickle:
                raise RuntimeError(
                    f'{path} cannot be read with weights_only=True ({err}). '
                    'If you trust the file, pass trust_pickle=True '
                    '(--trust-pickle).') from err
            obj = torch.load(path, map_location='cpu', weights_only=False)
        state_dict = unwrap_state_dict(obj)
        is_openai = any(k in state_dict for k in _OPENAI_MARKERS)
    for key in _OPENAI_MARKERS:
        state_dict.pop(key, None)
    return state_dict, is_openai


def _count_blocks(state_dict: dict, prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r'(\d+)\.')
    ids = {
        int(m.group(1))
        for k in state_dict
        for m in [pattern.match(k)] if m
    }
    if not ids:
        return 0
    if ids != set(range(max(ids) + 1)):
        raise ValueError(f'Blocks under {prefix} are not contiguous: '
                         f'{sorted(ids)}.')
    return max(ids) + 1


def infer_clip_arch(state_dict: Dict[str, torch.Tensor]) -> dict:
    """Infer the CLIP architecture from tensor shapes.

    Args:
        state_dict (dict): OpenAI / OpenCLIP keys (``visual.*``,
            ``transformer.*``, ``token_embedding.weight``...).

    Returns:
        dict: ``vision_width``, ``vision_layers``, ``vision_mlp``,
        ``patch_size``, ``image_size``, ``text_width``, ``text_layers``,
        ``text_mlp``, ``context_length``, ``vocab_size``, ``embed_dim`` and
        ``name`` (a key of :data:`KNOWN_ARCHS` or ``'custom'``).
    """
    if 'visual.conv1.weight' not in state_dict:
        if any(
                k.startswith('visual.layer1.') or k.startswith('visual.trunk.')
                for k in state_dict):
            raise ValueError('Only ViT image towers are supported; this '
                             'checkpoint has a ResNet or timm image tower.')
        raise ValueError(
            'visual.conv1.weight is missing: not an OpenAI/OpenCLIP CLIP '
            f'state dict (first keys: {list(state_dict)[:5]}).')
    conv1 = state_dict['visual.conv1.weight']
    vision_width, _, patch_size, _ = conv1.shape
    num_pos = state_dict['visual.positional_embedding'].shape[0]
    grid = int(round(math.sqrt(num_pos - 1)))
    if grid * grid != num_pos - 1:
        raise ValueError(f'visual.positional_embedding has {num_pos} rows, '
                         'which is not 1 + a square number of patches.')
    arch = dict(
        vision_width=int(vision_width),
        vision_layers=_count_blocks(state_dict,
                                    'visual.transformer.resblocks.'),
        vision_mlp=int(
            state_dict['visual.transformer.resblocks.0.mlp.c_fc.weight'].
            shape[0]),
        patch_size=int(patch_size),
        image_size=int(grid * patch_size),
        text_width=int(state_dict['ln_final.weight'].shape[0]),
        text_layers=_count_blocks(state_dict, 'transformer.resblocks.'),
        text_mlp=int(
            state_dict['transformer.resblocks.0.mlp.c_fc.weight'].shape[0]),
        context_length=int(state_dict['positional_embedding'].shape[0]),
        vocab_size=int(state_dict['token_embedding.weight'].shape[0]),
        embed_dim=int(_text_projection(state_dict).shape[0]),
    )
    if int(state_dict['visual.proj'].shape[1]) != arch['embed_dim']:
        raise ValueError('visual.proj and text_projection disagree on the '
                         'embedding size.')
    arch['name'] = 'custom'
    for name, ref in KNOWN_ARCHS.items():
        if all(arch[k] == v for k, v in ref.items()):
            arch['name'] = name
    return arch


def _text_projection(state_dict: dict) -> torch.Tensor:
    """Text projection as an HF linear weight of shape (embed, width)."""
    if 'text_projection' in state_dict:
        return state_dict['text_projection'].t()  # stored (width, embed)
    if 'text_projection.weight' in state_dict:
        if 'text_projection.bias' in state_dict:
            raise ValueError('A text projection with a bias is not supported '
                             'by transformers CLIP.')
        return state_dict['text_projection.weight']
    raise ValueError('text_projection is missing from the state dict.')


def _convert_tower(sd: dict, src: str, dst: str, num_layers: int,
                   out: dict) -> None:
    """Map the residual blocks of one transformer tower."""
    for i in range(num_layers):
        s, d = f'{src}{i}.', f'{dst}{i}.'
        w = sd.pop(s + 'attn.in_proj_weight')
        b = sd.pop(s + 'attn.in_proj_bias')
        for name, wi, bi in zip(('q', 'k', 'v'), w.chunk(3, 0), b.chunk(3, 0)):
            out[f'{d}self_attn.{name}_proj.weight'] = wi
            out[f'{d}self_attn.{name}_proj.bias'] = bi
        pairs = (('attn.out_proj', 'self_attn.out_proj'),
                 ('ln_1', 'layer_norm1'), ('ln_2', 'layer_norm2'),
                 ('mlp.c_fc', 'mlp.fc1'), ('mlp.c_proj', 'mlp.fc2'))
        for a, c in pairs:
            for p in ('weight', 'bias'):
                out[f'{d}{c}.{p}'] = sd.pop(f'{s}{a}.{p}')


def convert_clip_state_dict(state_dict: Dict[str, torch.Tensor],
                            hidden_act: str = 'quick_gelu',
                            vision_heads: Optional[int] = None,
                            text_heads: Optional[int] = None):
    """Convert OpenAI / OpenCLIP CLIP weights to a ``transformers`` model.

    Args:
        state_dict (dict): OpenAI / OpenCLIP state dict (already unwrapped).
        hidden_act (str): ``'quick_gelu'`` or ``'gelu'``. See module doc.
        vision_heads (int, optional): Attention heads of the image tower.
            Defaults to ``width // 64`` (every OpenAI / OpenCLIP ViT).
        text_heads (int, optional): Attention heads of the text tower.
            Defaults to ``width // 64``.

    Returns:
        tuple: ``(config, hf_state_dict, arch)`` with a
        ``transformers.CLIPConfig``, the converted tensors (contiguous) and
        the inferred architecture dict.
    """
    from transformers import CLIPConfig

    if hidden_act not in ('quick_gelu', 'gelu'):
        raise ValueError(f"hidden_act must be 'quick_gelu' or 'gelu', got "
                         f'{hidden_act!r}.')
    sd = OrderedDict(state_dict)
    for key in _OPENAI_MARKERS:
        sd.pop(key, None)
    arch = infer_clip_arch(sd)
    vision_heads = vision_heads or max(arch['vision_width'] // 64, 1)
    text_heads = text_heads or max(arch['text_width'] // 64, 1)
    for width, heads, tower in ((arch['vision_width'], vision_heads, 'image'),
                                (arch['text_width'], text_heads, 'text')):
        if width % heads:
            raise ValueError(f'The {tower} width {width} is not divisible by '
                             f'{heads} heads.')
    if 'logit_bias' in sd:
        raise ValueError('logit_bias (SigLIP-style) is not supported by '
                         'transformers CLIP.')
    logit_scale = sd.pop('logit_scale', torch.tensor(math.log(1 / 0.07)))
    logit_scale = logit_scale.float().reshape(())

    out = OrderedDict()
    v = 'vision_model.'
    out[v + 'embeddings.class_embedding'] = sd.pop('visual.class_embedding')
    out[v +
        'embeddings.patch_embedding.weight'] = sd.pop('visual.conv1.weight')
    out[v + 'embeddings.position_embedding.weight'] = sd.pop(
        'visual.positional_embedding')
    for p in ('weight', 'bias'):
        out[f'{v}pre_layrnorm.{p}'] = sd.pop(f'visual.ln_pre.{p}')
        out[f'{v}post_layernorm.{p}'] = sd.pop(f'visual.ln_post.{p}')
    _convert_tower(sd, 'visual.transformer.resblocks.', v + 'encoder.layers.',
                   arch['vision_layers'], out)
    out['visual_projection.weight'] = sd.pop('visual.proj').t()

    t = 'text_model.'
    out[t +
        'embeddings.token_embedding.weight'] = sd.pop('token_embedding.weight')
    out[t + 'embeddings.position_embedding.weight'] = sd.pop(
        'positional_embedding')
    _convert_tower(sd, 'transformer.resblocks.', t + 'encoder.layers.',
                   arch['text_layers'], out)
    for p in ('weight', 'bias'):
        out[f'{t}final_layer_norm.{p}'] = sd.pop(f'ln_final.{p}')
    out['text_projection.weight'] = _text_projection(sd)
    sd.pop('text_projection', None)
    sd.pop('text_projection.weight', None)
    out['logit_scale'] = logit_scale
    sd.pop('attn_mask', None)
    if sd:
        raise ValueError(
            'Unsupported CLIP variant: these keys have no transformers '
            f'counterpart: {sorted(sd)[:10]}.')

    config = CLIPConfig(
        text_config=dict(
            vocab_size=arch['vocab_size'],
            hidden_size=arch['text_width'],
            intermediate_size=arch['text_mlp'],
            num_hidden_layers=arch['text_layers'],
            num_attention_heads=text_heads,
            max_position_embeddings=arch['context_length'],
            hidden_act=hidden_act,
            projection_dim=arch['embed_dim'],
            bos_token_id=49406,
            eos_token_id=49407,
            pad_token_id=49407),
        vision_config=dict(
            hidden_size=arch['vision_width'],
            intermediate_size=arch['vision_mlp'],
            num_hidden_layers=arch['vision_layers'],
            num_attention_heads=vision_heads,
            image_size=arch['image_size'],
            patch_size=arch['patch_size'],
            hidden_act=hidden_act,
            projection_dim=arch['embed_dim']),
        projection_dim=arch['embed_dim'],
        logit_scale_init_value=float(logit_scale))
    out = OrderedDict(
        (k, v.detach().float().contiguous()) for k, v in out.items())
    return config, out, arch


#: Files a converter output folder may hold (``save_pretrained`` and the
#: tokenizer files).
_OUTPUT_FILES = ('config.json', 'model.safetensors', 'pytorch_model.bin',
                 'generation_config.json', 'vocab.json', 'merges.txt',
                 'tokenizer_config.json', 'special_tokens_map.json',
                 'tokenizer.json')


def is_converter_output(folder: str) -> bool:
    """Whether ``folder`` looks like a previous :func:`convert_clip_checkpoint`
    output (so ``overwrite`` may replace it): a config.json of model_type
    ``clip``, weights, and no file a converter does not write."""
    import json
    if not osp.isdir(folder):
        return False
    names = set(os.listdir(folder))
    if not names <= set(_OUTPUT_FILES) or 'config.json' not in names:
        return False
    if not names & {'model.safetensors', 'pytorch_model.bin'}:
        return False
    try:
        with open(osp.join(folder, 'config.json'), encoding='utf-8') as f:
            return json.load(f).get('model_type') == 'clip'
    except (OSError, ValueError):
        return False


def convert_clip_checkpoint(src: str,
                            out_dir: str,
                            arch: Optional[str] = None,
                            act: str = 'auto',
                            vision_heads: Optional[int] = None,
                            text_heads: Optional[int] = None,
                            bpe_path: Optional[str] = None,
                            trust_pickle: bool = False,
                            overwrite: bool = False) -> dict:
    """Convert a CLIP checkpoint file into a ``transformers`` CLIP directory.

    The directory (``config.json``, ``model.safetensors`` and the tokenizer
    files) is written into a temporary sibling folder and renamed into place
    at the end, so an interrupted run never leaves a half-written
    ``out_dir``.

    Args:
        src (str): Input checkpoint (see module doc).
        out_dir (str): Output directory; must not exist unless
            ``overwrite``.
        arch (str, optional): Expected architecture (a key of
            :data:`KNOWN_ARCHS`); an error is raised when the shapes say
            otherwise. Defaults to None (no check).
        act (str): ``'auto'``, ``'quick_gelu'`` or ``'gelu'``.
        vision_heads (int, optional): Override the inferred head count.
        text_heads (int, optional): Override the inferred head count.
        bpe_path (str, optional): CLIP BPE table for the tokenizer files.
        trust_pickle (bool): See :func:`load_clip_checkpoint`.
        overwrite (bool): Replace an existing ``out_dir``.

    Returns:
        dict: The inferred architecture plus ``hidden_act`` and
        ``logit_scale``.
    """
    from transformers import CLIPModel

    if act not in ('auto', 'quick_gelu', 'gelu'):
        raise ValueError(f"act must be 'auto', 'quick_gelu' or 'gelu', got "
                         f'{act!r}.')
    if arch is not None and arch not in KNOWN_ARCHS:
        raise ValueError(f'Unknown arch {arch!r}; known: {list(KNOWN_ARCHS)}.')
    out_dir = osp.abspath(out_dir)
    if osp.exists(out_dir) and not overwrite:
        raise FileExistsError(f'{out_dir} exists; pass overwrite=True '
                              '(--overwrite) to replace it.')
    if osp.exists(out_dir) and not is_converter_output(out_dir):
        raise FileExistsError(
            f'refusing to replace {out_dir}: it is not the output of this '
            'converter (expected a folder with a config.json of model_type '
            '"clip" and model weights, nothing else). Choose another '
            'output folder.')
    try:
        state_dict, is_openai = load_clip_checkpoint(src, trust_pickle)
        hidden_act = act if act != 'auto' else (
            'quick_gelu' if is_openai else 'gelu')
        config, hf_sd, info = convert_clip_state_dict(
            state_dict, hidden_act, vision_heads, text_heads)
    except (KeyError, ValueError) as err:
        if src in str(err):
            raise
        raise type(err)(f'{src}: {err}') from err
    if arch is not None and info['name'] != arch:
        raise ValueError(f'{src} does not look like {arch}: inferred '
                         f'{info}.')

    bad = [k for k, v in hf_sd.items()
           if torch.is_tensor(v) and v.is_floating_point()
           and not bool(torch.isfinite(v).all())]
    if bad:
        raise ValueError(
            f'{src}: {len(bad)} weight tensor(s) hold NaN or Inf values, '
            f'e.g. {", ".join(bad[:5])}; expected finite weights (the '
            'checkpoint is damaged or from a diverged run).')
    model = CLIPModel(config)
    missing, unexpected = model.load_state_dict(hf_sd, strict=False)
    if missing or unexpected:
        raise RuntimeError(f'{src}: conversion mismatch: missing '
                           f'{missing}, unexpected {unexpected}.')

    parent = osp.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix='.clip_to_hf_', dir=parent)
    try:
        model.save_pretrained(tmp_dir, safe_serialization=True)
        if info['vocab_size'] == CLIP_VOCAB_SIZE:
            write_clip_tokenizer_files(
                tmp_dir, bpe_path, model_max_length=info['context_length'])
        else:
            warnings.warn(
                f"{src} has a vocabulary of {info['vocab_size']} tokens, not "
                f'the CLIP BPE vocabulary of {CLIP_VOCAB_SIZE}: no tokenizer '
                f'files were written into {out_dir}.')
        old_dir = None
        if osp.exists(out_dir):
            # move the old output aside, put the new one in place, and
            # only then delete the old one
            old_dir = tempfile.mkdtemp(prefix='.clip_to_hf_old_', dir=parent)
            os.replace(out_dir, osp.join(old_dir, 'out'))
        try:
            os.replace(tmp_dir, out_dir)
        except BaseException:
            if old_dir is not None:
                os.replace(osp.join(old_dir, 'out'), out_dir)
                shutil.rmtree(old_dir, ignore_errors=True)
            raise
        if old_dir is not None:
            shutil.rmtree(old_dir, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    info.update(hidden_act=hidden_act, logit_scale=float(hf_sd['logit_scale']))
    return info
