# Copyright (c) rsitr_mm contributors. All rights reserved.
"""The dual-encoder retriever every rsitr_mm model is built on."""
import inspect
import math
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement
from mmengine.utils import is_list_of
from mmpretrain.registry import MODELS

from ...utils.dist import all_gather_variable
from ..utils.caption_tokens import is_token_batch
from ..utils.l2_normalize import l2_normalize
from ...utils.validation import check_values

ConfigType = Union[dict, nn.Module]

CLIP_MEAN = [122.770938, 116.7460125, 104.09373615]
CLIP_STD = [68.5005327, 66.6321579, 70.32316305]


def _build(cfg: Optional[ConfigType]) -> Optional[nn.Module]:
    if cfg is None or isinstance(cfg, nn.Module):
        return cfg
    return MODELS.build(cfg)


def _read(sample, key: str, default=None):
    """Read a field from a DataSample's data or metainfo.

    ``getattr`` reaches both data fields and metainfo; it avoids
    ``key in sample``, which rebuilds the sample's key set on every call.
    """
    return getattr(sample, key, default)


def _first_values(values: Sequence, default: Sequence[int],
                  device: torch.device) -> torch.Tensor:
    """First element of every value as one (B,) long tensor on ``device``.

    Built without a host-device sync: tensor values (``gt_label`` is a
    (1,) tensor, on the host after ``RetrievalDataPreprocessor``) are
    concatenated in one op and copied once; Python ints are copied over
    once. ``None`` and
    empty values take ``default[i]``.
    """
    parts: List[torch.Tensor] = []
    ints: List[int] = []
    for value, fallback in zip(values, default):
        if isinstance(value, (list, tuple)):
            value = value[0] if len(value) else None
        if isinstance(value, torch.Tensor):
            if value.numel() > 0:
                parts.append(value.reshape(-1)[:1])
                continue
            value = None
        ints.append(fallback if value is None else int(value))
        parts.append(None)
    if not ints:  # every value a tensor: one concatenation, no sync
        if len({p.device for p in parts}) == 1:
            # concatenated where they are (the host, after
            # RetrievalDataPreprocessor), then one copy
            return torch.cat([p.to(torch.long) for p in parts]).to(
                device, non_blocking=True)
        return torch.cat([p.to(device=device, dtype=torch.long,
                               non_blocking=True) for p in parts])
    host = torch.tensor(ints, dtype=torch.long)
    if len(ints) == len(parts):  # every value a Python int: one copy
        return host.to(device, non_blocking=True)
    it = iter(host.split(1))
    return torch.cat([
        next(it).to(device) if p is None else p.to(device, torch.long)
        for p in parts
    ])


def _normalize_pair(image_emb: torch.Tensor, text_emb: torch.Tensor
                    ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Both (B, D) embeddings L2-normalised, in one pass when their widths
    agree (the rows are independent; one kernel set instead of two)."""
    if image_emb.dim() == text_emb.dim() == 2 and \
            image_emb.size(1) == text_emb.size(1):
        both = l2_normalize(torch.cat([image_emb, text_emb]), dim=-1)
        # split (not slicing): its backward is one cat
        image_emb, text_emb = both.split([len(image_emb), len(text_emb)])
        return image_emb, text_emb
    return l2_normalize(image_emb, dim=-1), l2_normalize(text_emb, dim=-1)


def _accepts_kwarg(fn, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _infer_channels(module: Optional[nn.Module]) -> Optional[int]:
    """Output width of an encoder or neck, if it declares one."""
    for attr in ('embed_dim', 'out_channels', 'feat_dim'):
        value = getattr(module, attr, None)
        if isinstance(value, (list, tuple)):
            value = value[-1]
        if isinstance(value, int):
            return value
    return None


def _agreed_channels(key: str, given: Optional[int],
                     module: Optional[nn.Module], name: str) -> Optional[int]:
    """``given`` (a config key) unless the module declares another width."""
    declared = _infer_channels(module)
    if given is None:
        return declared
    if declared is not None and declared != given:
        raise ValueError(
            f'DualEncoderRetriever: config key {key!r} is {given}, but the '
            f'{name} ({type(module).__name__}) outputs {declared} channels; '
            f'remove {key} (it is inferred) or make them agree')
    return given


def _as_list(value) -> Optional[List[int]]:
    if isinstance(value, int):
        return [value]
    if isinstance(value, (list, tuple)) and all(
            isinstance(v, int) for v in value):
        return list(value)
    return None


def _check_neck_input(encoder: nn.Module, neck: Optional[nn.Module]) -> None:
    """The neck's ``in_channels`` must be what the encoder declares."""
    if neck is None:
        return
    wanted = _as_list(getattr(neck, 'in_channels', None))
    given = _as_list(getattr(encoder, 'out_channels', None))
    if (wanted is not None and given is not None and len(given) == 1
            and isinstance(getattr(encoder, 'out_channels', None), int)):
        # one width for every output (e.g. a ViT's layer grids)
        given = given * len(wanted)
    if wanted is not None and given is not None and wanted != given:
        raise ValueError(
            f'DualEncoderRetriever: image_neck ({type(neck).__name__}) '
            f'expects in_channels {wanted}, but the image_encoder '
            f'({type(encoder).__name__}) outputs {given}; set '
            'image_neck.in_channels to the encoder\'s widths')


@MODELS.register_module()
class DualEncoderRetriever(BaseModel):
    """Image encoder + text encoder mapped into one embedding space.

    Pipeline of the image branch: ``image_encoder`` (any mmpretrain backbone
    or :class:`CLIPVisionBackbone`; returns a tuple of tensors) ->
    ``image_neck`` (optional, e.g. BSD or DAPN; returns (B, C)) or, without a
    neck, the last tensor of the tuple (global-average pooled when 4-D) ->
    ``image_proj``. Text branch: ``text_encoder`` (tokenises a list of
    strings itself; returns (T, C)) -> ``text_proj``. Then every head's
    ``embed`` may transform the pair (e.g. LSD's semantic decoupling), and
    the results are L2-normalised: those are the retrieval embeddings.

    Training loss: the sum of every entry of ``losses`` (each gets the
    normalised pairs, ``image_ids`` so that captions of the same image are
    positives, scene ``labels`` and ``logit_scale``) plus every head's
    ``loss`` (which sees the projected embeddings entering that head, the
    data samples and, when its signature has a ``labels`` argument, the
    (B,) scene labels built once on the device).

    ``logit_scale`` exists only when some loss reads it: a loss declares so
    with ``uses_logit_scale = True`` (:class:`MultiPositiveInfoNCELoss`
    does, unless it owns a learnable temperature; the triplet losses do
    not). Otherwise the model has no ``logit_scale`` at all, so no
    parameter goes without a gradient and DDP runs with
    ``find_unused_parameters=False``. A checkpoint saved with a
    ``logit_scale`` (before this rule) still loads: the key is dropped.

    Args:
        image_encoder (dict | nn.Module): image backbone config.
        text_encoder (dict | nn.Module): text encoder config.
        image_neck (dict | nn.Module, optional): neck on the backbone output.
        embed_dim (int): joint embedding width. Defaults to 512.
        image_proj (str): ``'linear'``, ``'mlp'`` or ``'identity'``.
        text_proj (str): ``'linear'``, ``'mlp'`` or ``'identity'``.
        image_in_channels (int, optional): width entering ``image_proj``;
            inferred from the neck/encoder when they declare it.
        text_in_channels (int, optional): width entering ``text_proj``;
            inferred from the text encoder when it declares it.
        heads (Sequence[dict], optional): auxiliary heads (LSD, OSFCM).
        losses (Sequence[dict]): retrieval losses. Defaults to one
            :class:`MultiPositiveInfoNCELoss`.
        temperature (float): initial temperature; ``logit_scale = 1 / T``
            is handed to the losses that use it. Defaults to 0.07.
        learnable_temperature (bool): learn it. Defaults to True.
        max_logit_scale (float): clamp of the logit scale. Defaults to 100.
            The three temperature arguments only matter when some loss has
            ``uses_logit_scale = True``.
        freeze_image_encoder (bool): keep the image encoder fixed.
        freeze_text_encoder (bool): keep the text encoder fixed.
        data_preprocessor (dict, optional): defaults to mmpretrain's
            ``RetrievalDataPreprocessor`` with CLIP's mean/std, RGB.
        compile (bool | dict): compile the tensor regions with
            ``torch.compile``: the encoders, the neck, the projections and
            the losses, each its own graph (``nn.Module.compile``, so the
            state dict keys do not change). A dict is passed to
            ``torch.compile`` (e.g. ``dict(mode='reduce-overhead')`` for
            CUDA graphs, ``dict(backend='eager')``); ``True`` means
            ``dynamic=None`` (a caption length seen twice becomes
            dynamic). Data handling, the heads' losses (side effects:
            prototype updates, step counters) and logging stay eager.
            Defaults to False.
        init_cfg (dict, optional): initialisation config.
    """

    def __init__(self,
                 image_encoder: ConfigType,
                 text_encoder: ConfigType,
                 image_neck: Optional[ConfigType] = None,
                 embed_dim: int = 512,
                 image_proj: str = 'linear',
                 text_proj: str = 'linear',
                 image_in_channels: Optional[int] = None,
                 text_in_channels: Optional[int] = None,
                 heads: Optional[Sequence[ConfigType]] = None,
                 losses: Optional[Sequence[ConfigType]] = None,
                 temperature: float = 0.07,
                 learnable_temperature: bool = True,
                 max_logit_scale: float = 100.0,
                 freeze_image_encoder: bool = False,
                 freeze_text_encoder: bool = False,
                 data_preprocessor: Optional[dict] = None,
                 compile: Union[bool, dict] = False,
                 init_cfg: Optional[dict] = None) -> None:
        check_values(
            'DualEncoderRetriever',
            embed_dim=(embed_dim, 'int>=1'),
            image_in_channels=(image_in_channels, 'int>=1'),
            text_in_channels=(text_in_channels, 'int>=1'),
            temperature=(temperature, '>0'),
            max_logit_scale=(max_logit_scale, '>0'))
        if data_preprocessor is None:
            data_preprocessor = dict(
                type='RetrievalDataPreprocessor',
                mean=CLIP_MEAN,
                std=CLIP_STD,
                to_rgb=True)
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        # host->device copies of the batch without blocking the host (the
        # train loaders pin memory on CUDA); mmpretrain's multimodal
        # preprocessor has no argument for it, mmengine's base class reads
        # this attribute
        if hasattr(self.data_preprocessor, '_non_blocking'):
            self.data_preprocessor._non_blocking = True

        self.image_encoder = _build(image_encoder)
        self.image_neck = _build(image_neck)
        self.text_encoder = _build(text_encoder)
        self.embed_dim = embed_dim

        _check_neck_input(self.image_encoder, self.image_neck)
        image_in_channels = _agreed_channels(
            'image_in_channels', image_in_channels,
            *((self.image_neck, 'image_neck') if self.image_neck is not None
              else (self.image_encoder, 'image_encoder')))
        text_in_channels = _agreed_channels(
            'text_in_channels', text_in_channels, self.text_encoder,
            'text_encoder')
        self.image_proj = self._make_proj(image_proj, image_in_channels,
                                          'image')
        self.text_proj = self._make_proj(text_proj, text_in_channels, 'text')

        self.heads = nn.ModuleList([_build(h) for h in (heads or [])])
        if losses is None:
            losses = [dict(type='MultiPositiveInfoNCELoss')]
        self.losses = nn.ModuleList([_build(loss) for loss in losses])
        if not self.losses and not self.heads:
            raise ValueError('DualEncoderRetriever needs at least one loss '
                             'or head to train.')

        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        log_scale = torch.tensor(math.log(1.0 / temperature))
        self._scale_users = [
            bool(getattr(loss, 'uses_logit_scale', False))
            for loss in self.losses
        ]
        if not any(self._scale_users):
            self.logit_scale = None
        elif learnable_temperature:
            self.logit_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer('logit_scale', log_scale)
        self.max_logit_scale = max_logit_scale
        self._head_takes_labels = [
            hasattr(h, 'loss') and _accepts_kwarg(h.loss, 'labels')
            for h in self.heads
        ]
        self._head_takes_text_data = [
            hasattr(h, 'loss') and _accepts_kwarg(h.loss, 'text_data')
            for h in self.heads
        ]

        self.freeze_image_encoder = freeze_image_encoder
        self.freeze_text_encoder = freeze_text_encoder
        for flag, module in ((freeze_image_encoder, self.image_encoder),
                             (freeze_text_encoder, self.text_encoder)):
            if flag:
                for p in module.parameters():
                    p.requires_grad_(False)
        if compile:
            self.compile_regions({} if compile is True else dict(compile))

    #: the modules :meth:`compile_regions` compiles
    COMPILED_REGIONS = ('image_encoder', 'image_neck', 'text_encoder',
                        'image_proj', 'text_proj', 'losses')

    def compile_regions(self, options: Optional[dict] = None) -> List[str]:
        """Compile the tensor regions in place (see ``compile``).

        Args:
            options (dict, optional): ``torch.compile`` arguments.

        Returns:
            list[str]: The compiled module names.
        """
        if not isinstance(options, (dict, type(None))):
            raise TypeError('DualEncoderRetriever: compile must be a bool '
                            f'or a dict of torch.compile arguments, got '
                            f'{type(options).__name__}.')
        done = []
        for name in self.COMPILED_REGIONS:
            module = getattr(self, name, None)
            if module is None:
                continue
            parts = module if isinstance(module, nn.ModuleList) else [module]
            for i, part in enumerate(parts):
                if isinstance(part, nn.Identity):
                    continue
                part.compile(**(options or {}))
                done.append(name if part is module else f'{name}.{i}')
        return done

    def _make_proj(self, kind: str, in_channels: Optional[int],
                   name: str) -> nn.Module:
        if kind == 'identity':
            if in_channels is not None and in_channels != self.embed_dim:
                raise ValueError(
                    f'{name}_proj="identity" needs the {name} features to be '
                    f'{self.embed_dim}-d (embed_dim), got {in_channels}')
            return nn.Identity()
        if kind not in ('linear', 'mlp'):
            raise ValueError(f'{name}_proj must be "linear", "mlp" or '
                             f'"identity", got {kind!r}')
        if in_channels is None:
            raise ValueError(
                f'Cannot infer the width of the {name} features: set '
                f'{name}_in_channels in the model config.')
        if kind == 'linear':
            return nn.Linear(in_channels, self.embed_dim)
        return nn.Sequential(
            nn.Linear(in_channels, self.embed_dim), nn.GELU(),
            nn.Linear(self.embed_dim, self.embed_dim))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints from before "logit_scale only when a loss uses it"
        if self.logit_scale is None:
            state_dict.pop(prefix + 'logit_scale', None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def train(self, mode: bool = True) -> 'DualEncoderRetriever':
        """Set train mode, keeping frozen encoders in eval mode."""
        super().train(mode)
        if self.freeze_image_encoder:
            self.image_encoder.eval()
        if self.freeze_text_encoder:
            self.text_encoder.eval()
        return self

    # ------------------------------------------------------------------ #
    # Encoding
    # ------------------------------------------------------------------ #
    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """Projected (not yet normalised) image embeddings.

        Args:
            images (torch.Tensor): (B, 3, H, W) normalised images.

        Returns:
            torch.Tensor: (B, embed_dim).
        """
        feats = self.image_encoder(images)
        if self.image_neck is not None:
            x = self.image_neck(feats)
        else:
            x = feats[-1] if isinstance(feats, (tuple, list)) else feats
        if isinstance(x, (tuple, list)):
            x = x[-1]
        if x.dim() == 4:
            x = x.mean(dim=(2, 3))
        return self.image_proj(x)

    def text_features(
            self, texts: Union[List[str], Dict[str, torch.Tensor]]
    ) -> torch.Tensor:
        """Projected (not yet normalised) caption embeddings.

        Args:
            texts (list[str] | dict): T captions, or their token batch
                from the data pipeline (``input_ids`` (T, L), with
                ``attention_mask`` and ``lengths``).

        Returns:
            torch.Tensor: (T, embed_dim).
        """
        if not is_token_batch(texts):
            texts = list(texts)
        return self.text_proj(self.text_encoder(texts))

    def caption_data_preparers(self) -> list:
        """The per-sample preparers of
        :class:`~rsitr_mm.datasets.transforms.PrepareCaptionData` for this
        model: the sample ids, the text encoder's caption tokenizer and
        every head's (e.g. OSFCM's targets). Host objects only (no
        weights), picklable to the data-loader workers. Empty when the text
        encoder has no ``caption_tokenizer`` (its forward then gets
        strings).
        """
        tokenizer = getattr(self.text_encoder, 'caption_tokenizer', None)
        if tokenizer is None:
            return []
        from rsitr_mm.datasets.transforms import SampleIds
        preparers = [SampleIds(), tokenizer]
        for head in self.heads:
            make = getattr(head, 'caption_data_preparer', None)
            prep = make() if callable(make) else None
            if prep is not None:
                preparers.append(prep)
        return preparers

    def _apply_heads(
        self, image_emb: Optional[torch.Tensor],
        text_emb: Optional[torch.Tensor]
    ) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        for head in self.heads:
            if hasattr(head, 'embed'):
                image_emb, text_emb = head.embed(image_emb, text_emb)
        return image_emb, text_emb

    @staticmethod
    def _texts_of(data_samples: Sequence[BaseDataElement]) -> List[str]:
        texts: List[str] = []
        for sample in data_samples:
            text = _read(sample, 'text')
            if text is None:
                continue
            texts.extend([text] if isinstance(text, str) else list(text))
        return texts

    def extract_feat(
            self,
            images: Optional[torch.Tensor] = None,
            data_samples: Optional[Sequence[BaseDataElement]] = None
    ) -> Dict[str, torch.Tensor]:
        """L2-normalised retrieval embeddings of images and/or captions.

        Args:
            images (torch.Tensor, optional): (B, 3, H, W) images.
            data_samples (list[DataSample], optional): samples whose
                ``text`` (a caption or a list of captions) is encoded, in
                order.

        Returns:
            dict: ``image_feat`` (B, D) and/or ``text_feat`` (T, D).
        """
        # text first: the tokenizer's host->device copy then happens before
        # the image branch is queued, not in the middle of it
        texts = self._texts_of(data_samples) if data_samples else []
        text_emb = self.text_features(texts) if texts else None
        image_emb = self.image_features(images) if images is not None \
            else None
        image_emb, text_emb = self._apply_heads(image_emb, text_emb)
        out = {}
        if image_emb is not None:
            out['image_feat'] = F.normalize(image_emb, dim=-1)
        if text_emb is not None:
            out['text_feat'] = F.normalize(text_emb, dim=-1)
        return out

    def compute_similarity(self, image_feat: torch.Tensor,
                           text_feat: torch.Tensor) -> torch.Tensor:
        """Cosine similarity matrix (N, T) of normalised features."""
        return image_feat @ text_feat.t()

    # ------------------------------------------------------------------ #
    # Forward
    # ------------------------------------------------------------------ #
    def parse_losses(
        self, losses: Dict[str, torch.Tensor]
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """mmengine's ``parse_losses`` without the kernels that compute
        nothing: a 0-d loss is logged as it is (mmengine takes its
        ``mean()``, a copy) and the total starts from the first term (not
        from ``0 +``). Same total and same ``log_vars`` keys and values.

        Args:
            losses (dict[str, Tensor | list[Tensor]]): named losses.

        Returns:
            tuple[Tensor, dict]: the total of the keys containing ``loss``
            and the ``log_vars`` (``loss`` first).
        """
        log_vars = []
        for name, value in losses.items():
            if isinstance(value, torch.Tensor):
                log_vars.append(
                    [name, value if value.dim() == 0 else value.mean()])
            elif is_list_of(value, torch.Tensor):
                log_vars.append([name, sum(v.mean() for v in value)])
            else:
                raise TypeError(
                    f'{name} is not a tensor or list of tensors')
        total = None
        for name, value in log_vars:
            if 'loss' in name:
                total = value if total is None else total + value
        total = 0 if total is None else total  # as mmengine: sum([]) == 0
        log_vars.insert(0, ['loss', total])
        return total, OrderedDict(log_vars)

    def forward(self,
                images: Optional[torch.Tensor] = None,
                data_samples: Optional[list] = None,
                mode: str = 'tensor',
                text_data: Optional[Dict[str, torch.Tensor]] = None):
        """Dispatch on ``mode``: ``'tensor'``, ``'loss'`` or ``'predict'``.

        Args:
            images (torch.Tensor, optional): (B, 3, H, W) images.
            data_samples (list[DataSample], optional): the samples.
            mode (str): what to return.
            text_data (dict, optional): the batch's tensors prepared by the
                data pipeline (:meth:`caption_data_preparers`); read by
                ``'loss'`` only.

        Returns:
            dict | list: features (``tensor``), losses (``loss``) or the
            samples with ``image_feat``/``text_feat`` set (``predict``).
        """
        if mode == 'tensor':
            return self.extract_feat(images, data_samples)
        if mode == 'loss':
            return self.loss(images, data_samples, text_data)
        if mode == 'predict':
            return self.predict(images, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}".')

    def loss(self,
             images: torch.Tensor,
             data_samples: Sequence[BaseDataElement],
             text_data: Optional[Dict[str, torch.Tensor]] = None
             ) -> Dict[str, torch.Tensor]:
        """Losses of one batch of (image, caption) pairs.

        Args:
            images (torch.Tensor): (B, 3, H, W) images.
            data_samples (list[DataSample]): B samples, each with one
                caption in ``text``, its ``image_id`` and ``gt_label``.
            text_data (dict, optional): the batch as tensors from the data
                pipeline: ``input_ids`` / ``attention_mask`` / ``lengths``
                (T, L), ``image_ids`` and ``labels`` (B,), and the heads'
                fields. With it, nothing is read from ``data_samples``
                here and no caption is tokenised.

        Returns:
            dict[str, torch.Tensor]: named losses.
        """
        if text_data is not None and is_token_batch(text_data):
            return self._loss(images, data_samples, text_data,
                              text_data['image_ids'], text_data['labels'],
                              text_data)
        texts = []
        for i, sample in enumerate(data_samples):
            text = _read(sample, 'text')
            if not isinstance(text, str):
                raise ValueError(
                    f'training sample {i} must carry one caption string in '
                    f'"text", got {type(text).__name__}; use a train-mode '
                    'dataset (test_mode=False).')
            texts.append(text)
        device = images.device
        num = len(data_samples)
        image_ids = _first_values([_read(s, 'image_id') for s in data_samples],
                                  range(num), device)
        labels = _first_values([_read(s, 'gt_label') for s in data_samples],
                               [-1] * num, device)
        return self._loss(images, data_samples, texts, image_ids, labels,
                          None)

    def _loss(self, images: torch.Tensor,
              data_samples: Sequence[BaseDataElement],
              texts: Union[List[str], Dict[str, torch.Tensor]],
              image_ids: torch.Tensor, labels: torch.Tensor,
              text_data: Optional[Dict[str, torch.Tensor]]
              ) -> Dict[str, torch.Tensor]:
        """:meth:`loss` once captions, ids and labels are known."""
        # text first (see extract_feat)
        text_emb = self.text_features(texts)
        image_emb = self.image_features(images)
        losses: Dict[str, torch.Tensor] = {}
        for head, takes_labels, takes_data in zip(
                self.heads, self._head_takes_labels,
                self._head_takes_text_data):
            if hasattr(head, 'loss'):
                extra = dict(labels=labels) if takes_labels else {}
                if takes_data and text_data is not None:
                    extra['text_data'] = text_data
                for k, v in head.loss(image_emb, text_emb, data_samples,
                                      **extra).items():
                    losses[k] = losses[k] + v if k in losses else v
            if hasattr(head, 'embed'):
                image_emb, text_emb = head.embed(image_emb, text_emb)

        image_emb, text_emb = _normalize_pair(image_emb, text_emb)
        logit_scale = None
        if self.logit_scale is not None:
            logit_scale = self.logit_scale.exp().clamp(
                max=self.max_logit_scale)
        for loss_module, uses_scale in zip(self.losses, self._scale_users):
            name = getattr(loss_module, 'loss_name', None) or \
                'loss_' + type(loss_module).__name__.replace('Loss', '') \
                .lower()
            value = loss_module(
                image_emb,
                text_emb,
                image_ids=image_ids,
                labels=labels,
                logit_scale=logit_scale if uses_scale else None)
            losses[name] = losses[name] + value if name in losses else value
        return losses

    def predict(self, images: Optional[torch.Tensor],
                data_samples: Optional[list]) -> list:
        """Attach retrieval embeddings to the samples.

        Each sample gets ``image_feat`` (D,) when images are given and
        ``text_feat`` (k, D) for its k captions.
        """
        feats = self.extract_feat(images, data_samples)
        if data_samples is None:
            data_samples = [BaseDataElement() for _ in range(len(images))]
        offset = 0
        for i, sample in enumerate(data_samples):
            if 'image_feat' in feats:
                sample.set_field(feats['image_feat'][i], 'image_feat')
            text = _read(sample, 'text')
            if text is not None and 'text_feat' in feats:
                k = 1 if isinstance(text, str) else len(text)
                sample.set_field(feats['text_feat'][offset:offset + k],
                                 'text_feat')
                offset += k
        return data_samples

    def predict_all(self,
                    feats: Dict[str, torch.Tensor],
                    data_samples: list,
                    num_images: Optional[int] = None,
                    num_texts: Optional[int] = None,
                    cal_i2t: bool = True,
                    cal_t2i: bool = True) -> tuple:
        """mmpretrain ``BlipRetrieval``-compatible scoring of all features.

        Gathers image and caption features from every rank (rank-blocked
        order, as mmpretrain's retrieval loop expects with its sequential
        sampler) and truncates to ``num_images``/``num_texts``. As
        ``BlipRetrieval.predict_all``, it returns only what was asked, in
        the order (i2t, t2i), so mmpretrain's
        ``TextToImageRetrievalInferencer`` (``cal_i2t=False``, element 0)
        and ``ImageToTextRetrievalInferencer`` (``cal_t2i=False``) work.

        Returns:
            tuple: with ``cal_i2t``, one sample per local image whose
            ``pred_score`` is its row over all captions (``gt_label`` =
            ``gt_text_id`` when known); with ``cal_t2i``, one
            :class:`DataSample` per local caption (free-text queries
            included) with ``text``, ``pred_score`` over all images and
            ``gt_label`` = its ``gt_image_id`` when known.
        """
        from mmpretrain.structures import DataSample
        results = []
        if cal_i2t:
            txt_all = torch.cat(all_gather_variable(
                feats['text_feat']))[:num_texts]
            scores = self.compute_similarity(feats['image_feat'], txt_all)
            i2t_samples = []
            for sample, row in zip(data_samples, scores):
                out = sample.clone() if hasattr(sample, 'clone') else sample
                out.set_field(row, 'pred_score')
                if 'gt_text_id' in sample:
                    out.set_field(sample.gt_text_id, 'gt_label')
                i2t_samples.append(out)
            results.append(i2t_samples)
        if cal_t2i:
            img_all = torch.cat(all_gather_variable(
                feats['image_feat']))[:num_images]
            scores = self.compute_similarity(img_all,
                                             feats['text_feat']).t()
            t2i_samples, row = [], 0
            for sample in data_samples:
                texts = _read(sample, 'text', None)
                texts = list(texts) if isinstance(texts,
                                                  (list, tuple)) else [texts]
                gt_image = _read(sample, 'gt_image_id', None)
                if isinstance(gt_image, torch.Tensor):
                    gt_image = gt_image.reshape(-1).tolist()
                elif gt_image is not None and not isinstance(
                        gt_image, (list, tuple)):
                    gt_image = [gt_image] * len(texts)
                for i, text in enumerate(texts):
                    out = DataSample()
                    if text is not None:
                        out.set_field(text, 'text', field_type='metainfo')
                    out.set_field(scores[row], 'pred_score')
                    if gt_image is not None and i < len(gt_image):
                        out.set_field(
                            torch.tensor([int(gt_image[i])]), 'gt_label')
                    t2i_samples.append(out)
                    row += 1
            results.append(t2i_samples)
        return tuple(results)
