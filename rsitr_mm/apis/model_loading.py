# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Build a retriever for inference and encode images/captions with it.

Everything here works outside the runner: the model is built from its
config, the checkpoint is loaded, and images are read with the config's own
test pipeline (``test_dataloader.dataset.pipeline`` without ``PackInputs``)
so that an image encoded here gets exactly the embedding it gets in
``tools/test.py``.
"""
import contextlib
import copy
import hashlib
import json
import os.path as osp
import warnings
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config

#: Pipeline used when a model carries no test pipeline of its own.
DEFAULT_PIPELINE: List[dict] = [dict(type='LoadImageFromFile')]

#: Key fields of :func:`model_identity` that must agree between an index and
#: the model that queries or extends it.
IDENTITY_KEYS = ('embed_dim', 'weights_sha256', 'pipeline')


def file_sha256(path: str, prefix: int = 16) -> str:
    """The first ``prefix`` hex digits of the sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()[:prefix]


def weights_sha256(model: nn.Module, prefix: int = 16) -> str:
    """Fingerprint of a model's parameters and buffers.

    The sha256 over every ``state_dict`` entry (name, dtype, shape and raw
    bytes, in ``state_dict`` order): models with equal fingerprints hold the
    same weights. The value is cached on the model and recomputed only when
    a tensor was replaced or modified in place (its storage or version
    counter changed).
    """
    state = model.state_dict()
    key = (prefix,
           tuple((n, t.data_ptr(), t._version, str(t.dtype), tuple(t.shape))
                 for n, t in state.items()))
    cached = getattr(model, '_rsitr_weights_sha256', None)
    if cached is not None and cached[0] == key:
        return cached[1]
    digest = hashlib.sha256()
    for name, tensor in state.items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f'{name}|{t.dtype}|{tuple(t.shape)}'.encode())
        if t.dtype == torch.bfloat16:
            t = t.float()
        digest.update(memoryview(t.numpy()).cast('B'))
    value = digest.hexdigest()[:prefix]
    object.__setattr__(model, '_rsitr_weights_sha256', (key, value))
    return value


def strip_pack_inputs(pipeline: Sequence[dict]) -> List[dict]:
    """Copy of a data pipeline without its ``PackInputs`` step(s)."""
    return [
        copy.deepcopy(dict(t)) for t in pipeline
        if 'Pack' not in str(dict(t).get('type', ''))
    ]


def get_test_pipeline(cfg: Config) -> List[dict]:
    """``cfg.test_dataloader.dataset.pipeline`` minus ``PackInputs``.

    Falls back to :data:`DEFAULT_PIPELINE` (load only) when the config has
    no test dataloader.
    """
    try:
        pipeline = cfg.test_dataloader.dataset.pipeline
    except AttributeError:
        return copy.deepcopy(DEFAULT_PIPELINE)
    pipeline = strip_pack_inputs(
        [t.to_dict() if hasattr(t, 'to_dict') else t for t in pipeline])
    if not pipeline or 'Load' not in str(pipeline[0].get('type', '')):
        raise ValueError(
            'test_dataloader.dataset.pipeline must start with an image '
            f'loading transform (e.g. LoadImageFromFile), got {pipeline}')
    return pipeline


def init_retriever(config: Union[str, Config],
                   checkpoint: Optional[str] = None,
                   device: Union[str, torch.device] = 'cpu',
                   cfg_options: Optional[dict] = None,
                   trust_checkpoint: bool = False,
                   strict: bool = True) -> nn.Module:
    """Build a retriever from its config and load a checkpoint.

    The returned model is in eval mode on ``device`` and carries:

    - ``model.cfg``: the (merged) config;
    - ``model.test_pipeline_cfg``: the image test pipeline without
      ``PackInputs`` (see :func:`get_test_pipeline`);
    - ``model.retrieval_identity``: where the model came from (config and
      checkpoint paths, cfg_options); :func:`model_identity` completes it
      (checkpoint sha256 prefix, embed dim, weights fingerprint, pipeline)
      when an index needs it, so loading a model for other uses hashes
      nothing.

    Args:
        config (str | Config): config file or loaded config.
        checkpoint (str, optional): checkpoint file; without it the weights
            stay as initialised (random), which is only useful in tests.
        device (str | torch.device): where to put the model.
        cfg_options (dict, optional): overrides merged into the config, as
            ``--cfg-options`` of the tools (e.g. the text encoder's
            ``ann_files``).
        trust_checkpoint (bool): unpickle the checkpoint with full pickle,
            which runs any code the file names. By default only tensors and
            the values mmengine writes are accepted, and any other global
            raises :class:`~rsitr_mm.utils.UntrustedCheckpointError`.
        strict (bool): fail (``ValueError`` naming the file and the keys)
            unless the checkpoint holds exactly the model's keys and shapes.

    Returns:
        nn.Module: the retriever.
    """
    import rsitr_mm  # noqa: F401  (registers modules, stack fixes)
    from mmengine.registry import init_default_scope
    from mmengine.runner.checkpoint import (_load_checkpoint,
                                            _load_checkpoint_to_model)
    from mmpretrain.registry import MODELS

    from ..utils.safe_load import check_state_dict, trust_checkpoints

    config_path = None
    if isinstance(config, str):
        config_path = osp.abspath(config)
        if not osp.isfile(config_path):
            raise FileNotFoundError(f'config file {config!r} does not exist')
        cfg = Config.fromfile(config_path)
    elif isinstance(config, Config):
        cfg = copy.deepcopy(config)
        config_path = getattr(config, 'filename', None)
    else:
        raise TypeError('config must be a file path or an mmengine Config, '
                        f'got {type(config).__name__}')
    if cfg_options:
        from ..engine.config_check import check_cfg_options
        check_cfg_options(cfg, cfg_options)
        cfg.merge_from_dict(cfg_options)
    if 'model' not in cfg:
        raise KeyError(f'config {config_path!r} has no "model" field')

    # datasets/pipelines built later from this config resolve in our scope
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    model = MODELS.build(cfg.model)
    if checkpoint is not None:
        checkpoint = osp.abspath(checkpoint)
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(
                f'checkpoint file {checkpoint!r} does not exist')
        trust = trust_checkpoints(checkpoint) if trust_checkpoint \
            else contextlib.nullcontext()
        with trust:
            ckpt = _load_checkpoint(
                checkpoint, map_location='cpu', logger='silent')
        if strict:
            check_state_dict(model, ckpt, checkpoint, hint='strict=False')
        _load_checkpoint_to_model(model, ckpt, strict=False)
    model.to(device)
    model.eval()
    model.cfg = cfg
    model.test_pipeline_cfg = get_test_pipeline(cfg)
    # where the model came from; model_identity() adds the weight
    # fingerprint and hashes the checkpoint file when an index needs them
    model.retrieval_identity = dict(
        config=config_path,
        config_sha256=file_sha256(config_path)
        if config_path and osp.isfile(config_path) else None,
        checkpoint=checkpoint,
        checkpoint_sha256=None,
        cfg_options=_jsonable(cfg_options or {}))
    return model


def _jsonable(obj):
    """``obj`` made JSON-serialisable (tuples -> lists, others -> str)."""
    return json.loads(json.dumps(obj, default=str))


def model_identity(model: nn.Module) -> Dict[str, object]:
    """What identifies the embeddings a model produces.

    Returns:
        dict: ``embed_dim``, ``weights_sha256`` (see :func:`weights_sha256`)
        and ``pipeline`` (the image pipeline as a list of dicts), plus the
        ``config``/``checkpoint``/``checkpoint_sha256``/``cfg_options`` the
        model was loaded from when it comes from :func:`init_retriever`.
    """
    source = getattr(model, 'retrieval_identity', None)
    if source and source.get('checkpoint') and \
            not source.get('checkpoint_sha256'):
        source['checkpoint_sha256'] = file_sha256(source['checkpoint'])
    info = dict(source or {})
    info.setdefault('config', None)
    info.setdefault('checkpoint', None)
    info.setdefault('checkpoint_sha256', None)
    info.setdefault('cfg_options', {})
    info['embed_dim'] = int(getattr(model, 'embed_dim', -1))
    info['weights_sha256'] = weights_sha256(model)
    info['pipeline'] = _jsonable(model_pipeline(model))
    return info


def check_identity(expected: Dict[str, object], actual: Dict[str, object],
                   what: str) -> None:
    """Raise ``ValueError`` when two model identities disagree.

    Args:
        expected (dict): identity recorded with ``what`` (e.g. an index).
        actual (dict): identity of the model at hand.
        what (str): name of the stored thing, for the message.
    """
    diffs = [k for k in IDENTITY_KEYS if expected.get(k) != actual.get(k)]
    if diffs:
        detail = '; '.join(f'{k}: stored {expected.get(k)!r} vs model '
                           f'{actual.get(k)!r}' for k in diffs)
        raise ValueError(
            f'{what} was built with a different model (config '
            f'{expected.get("config")!r}, checkpoint '
            f'{expected.get("checkpoint")!r} sha256 '
            f'{expected.get("checkpoint_sha256")!r}); this model has config '
            f'{actual.get("config")!r}, checkpoint '
            f'{actual.get("checkpoint")!r} sha256 '
            f'{actual.get("checkpoint_sha256")!r}. Differences: {detail}. '
            'Use the same model, or build a new index.')


def model_pipeline(model: nn.Module) -> List[dict]:
    """The image pipeline a model is used with (default: load only)."""
    pipeline = getattr(model, 'test_pipeline_cfg', None)
    return copy.deepcopy(list(pipeline) if pipeline else DEFAULT_PIPELINE)


def build_image_loader(pipeline: Sequence[dict]
                       ) -> Callable[[str], torch.Tensor]:
    """A function reading one image file through a test pipeline.

    Args:
        pipeline (Sequence[dict]): transforms (without ``PackInputs``).

    Returns:
        Callable[[str], torch.Tensor]: ``path -> (3, H, W)`` uint8 tensor
        in the channel order of the loader (BGR for ``LoadImageFromFile``),
        as ``PackInputs`` would produce it. Raises on an unreadable file.
    """
    import rsitr_mm  # noqa: F401
    from mmpretrain.registry import TRANSFORMS

    transforms = [TRANSFORMS.build(copy.deepcopy(t)) for t in pipeline]

    def load(path: str) -> torch.Tensor:
        results = dict(img_path=path)
        for t in transforms:
            results = t(results)
            if results is None:
                raise ValueError(f'pipeline step {t!r} dropped {path!r}')
        img = results['img']
        if img is None:
            raise ValueError(f'cannot decode image {path!r}')
        if img.ndim == 2:
            img = img[..., None]
        return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))

    return load


def check_image_complete(path: str) -> None:
    """Raise ``OSError`` if a JPEG file is truncated.

    OpenCV decodes a truncated JPEG without an error (the missing part is
    grey), so JPEG files are fully decoded once with Pillow, which refuses
    truncated data. Other formats fail to decode in OpenCV when damaged.
    """
    if osp.splitext(path)[1].lower() not in ('.jpg', '.jpeg'):
        return
    from PIL import Image, ImageFile
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        return
    with Image.open(path) as im:
        im.load()


def load_images(paths: Sequence[str], loader: Callable[[str], torch.Tensor]
                ) -> Tuple[List[torch.Tensor], List[int], Dict[int, str]]:
    """Read several images; collect failures instead of raising.

    Returns:
        tuple: the loaded ``(3, H, W)`` tensors, the positions (in
        ``paths``) they come from, and ``{position: reason}`` for every
        file that could not be read.
    """
    images, ok, failed = [], [], {}
    for i, path in enumerate(paths):
        try:
            check_image_complete(path)
            images.append(loader(path))
            ok.append(i)
        except Exception as e:  # noqa: BLE001  any failure -> skipped
            failed[i] = f'{type(e).__name__}: {e}'.strip()
    return images, ok, failed


@torch.no_grad()
def encode_image_tensors(model: nn.Module,
                         images: Sequence[torch.Tensor]) -> torch.Tensor:
    """L2-normalised embeddings of already loaded images.

    Images of different sizes are encoded in groups of equal size, so a
    pipeline without a resize step still works; the output keeps the input
    order.

    Args:
        model (nn.Module): the retriever (``data_preprocessor`` and
            ``extract_feat``).
        images (Sequence[torch.Tensor]): ``(3, H, W)`` uint8 tensors.

    Returns:
        torch.Tensor: (B, D) float32 on the CPU.
    """
    groups: Dict[tuple, List[int]] = {}
    for i, img in enumerate(images):
        groups.setdefault(tuple(img.shape), []).append(i)
    out: Optional[torch.Tensor] = None
    for idx in groups.values():
        batch = torch.stack([images[i] for i in idx])
        data = model.data_preprocessor(
            dict(inputs=batch, data_samples=None), False)
        # (Retrieval|MultiModal)DataPreprocessor returns ``images``, others
        # ``inputs``.
        inputs = data['images'] if 'images' in data else data['inputs']
        feat = model.extract_feat(images=inputs)['image_feat']
        feat = feat.float().cpu()
        if out is None:
            out = feat.new_empty((len(images), feat.shape[1]))
        out[torch.tensor(idx)] = feat
    if out is None:
        raise ValueError('no image to encode')
    return out


def unknown_word_queries(model: nn.Module, texts: Sequence[str]) -> List[int]:
    """Positions of the queries none of whose words the model knows.

    Only models with a word vocabulary (``text_encoder.vocab``, e.g. the
    BiGRU) can tell; sub-word tokenizers (CLIP, BERT) encode any text, so
    for them the list is empty.
    """
    vocab = getattr(getattr(model, 'text_encoder', None), 'vocab', None)
    if vocab is None or not hasattr(vocab, 'encode'):
        return []
    unk = getattr(vocab, 'unk_id', None)
    return [
        i for i, t in enumerate(texts)
        if all(w == unk for w in vocab.encode(t))
    ]


@torch.no_grad()
def encode_texts(model: nn.Module,
                 texts: Sequence[str],
                 batch_size: int = 256) -> torch.Tensor:
    """L2-normalised embeddings of captions.

    Args:
        model (nn.Module): the retriever.
        texts (Sequence[str]): T captions.
        batch_size (int): captions per forward pass.

    Returns:
        torch.Tensor: (T, D) float32 on the CPU.
    """
    from mmengine.structures import BaseDataElement
    texts = [texts] if isinstance(texts, str) else list(texts)
    if not texts:
        raise ValueError('no caption to encode')
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t.strip():
            raise ValueError(
                f'query {i} is empty ({t!r}); expected a non-empty caption')
    unknown = unknown_word_queries(model, texts)
    if unknown:
        warnings.warn(
            f'{len(unknown)} query(ies) have no word in the model\'s '
            'vocabulary, so their ranking carries no information: ' +
            '; '.join(repr(texts[i]) for i in unknown[:5]))
    feats = []
    for start in range(0, len(texts), batch_size):
        samples = [
            BaseDataElement(text=t) for t in texts[start:start + batch_size]
        ]
        feats.append(
            model.extract_feat(data_samples=samples)['text_feat'].float()
            .cpu())
    return torch.cat(feats)


def encode_image_files(model: nn.Module,
                       paths: Sequence[str],
                       batch_size: int = 32,
                       loader: Optional[Callable] = None
                       ) -> Tuple[torch.Tensor, List[int], Dict[int, str]]:
    """Read and encode image files with the model's test pipeline.

    Returns:
        tuple: ``(feats (M, D), positions of the M encoded files in
        paths, {position: reason} of the unreadable ones)``.
    """
    loader = loader or build_image_loader(model_pipeline(model))
    feats, ok_all, failed_all = [], [], {}
    for start in range(0, len(paths), batch_size):
        chunk = list(paths[start:start + batch_size])
        images, ok, failed = load_images(chunk, loader)
        if images:
            feats.append(encode_image_tensors(model, images))
        ok_all.extend(start + i for i in ok)
        failed_all.update({start + i: r for i, r in failed.items()})
    dim = int(getattr(model, 'embed_dim', 0))
    out = torch.cat(feats) if feats else torch.zeros(0, dim)
    return out, ok_all, failed_all
