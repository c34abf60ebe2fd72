# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Label-supervised Semantic Decoupling (LSD) head of SSJDN, our reading.

SSJDN (Zheng et al., ACM TOMM 2024, arXiv 2212.05752) uses scene-category
labels as prior knowledge that supervises both the image and the text branch
to probe category-related information. No code is public. Here, for an
embedding ``x`` of either modality (``(N, D)``):

* semantic part ``s = P_sem(x)`` (``(N, d_s)``, ``d_s = semantic_dim``) and
  residual part ``r = P_res(x)`` (``(N, D - d_s)``), both projections
  shared by the two modalities so the parts live in one space;
* a COSINE classifier on ``s`` (shared by the modalities or one each):
  ``logits = scale * normalize(W_cls) @ normalize(s)``, trained with the
  configured classification loss on labelled rows only (label -1 is
  ignored). A plain Linear on un-normalised embeddings let the cross-entropy
  fall by growing norms, which retrieval (cosine) discards; the default
  weights (0.1 each) keep the classification terms below the retrieval
  loss (an ln(33)=3.5 CE at weight 1+1 swamped STL's <= 0.4);
* a decoupling loss: the mean squared cross-correlation between the
  batch-standardised ``s`` and ``r`` (``decouple='corr'``), or the squared
  cosines between the rows of ``P_sem`` and ``P_res`` (``'weight'``);
* the retrieval embedding (:meth:`LabelSemanticHead.embed`):
  ``'full'`` leaves ``x`` unchanged, ``'residual'`` returns
  ``x + W_back(s)`` with ``W_back`` zero-initialised (exactly the identity at
  initialisation), ``'concat'`` returns
  ``[normalize(s), normalize(r)] / sqrt(2)`` (width ``D``, unit norm).

``semantic_dim=0`` disables decoupling: the classifier reads ``x`` itself,
the decoupling loss is zero and ``embed`` is the identity.

Switch (:class:`~rsitr_mm.models.necks.switchable.SwitchableMixin`):
``disable('lsd')`` makes ``embed`` the identity. Labels are handled as
device tensors without host synchronisation (unknown rows are masked with
``torch.where``, not selected with Python branches).
"""
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from mmpretrain.registry import MODELS
from ...utils.validation import check_values

from ..necks.switchable import SwitchableMixin

_MODES = ('residual', 'concat', 'full')


@MODELS.register_module()
class LabelSemanticHead(SwitchableMixin, BaseModule):
    """Label-supervised semantic decoupling head for a dual encoder.

    Args:
        num_classes (int): Number of scene classes.
        in_channels (int): Width ``D`` of the retrieval embeddings.
            Defaults to 512.
        share_classifier (bool): One classifier for both modalities.
            Defaults to True.
        semantic_dim (int): Width of the semantic part; 0 disables the
            decoupling. Must be ``< in_channels``. Defaults to 128.
        loss (dict | nn.Module): Classification loss (mmpretrain's
            ``CrossEntropyLoss`` by default), called with per-row weights
            (0 on unlabelled rows) and ``avg_factor``.
        cls_scale (float): Scale ``s`` of the cosine logits. Defaults to 16.
        loss_weight_image (float): Weight of the image classification loss.
            Defaults to 0.1.
        loss_weight_text (float): Weight of the text classification loss.
            Defaults to 0.1.
        decouple_weight (float): Weight of the decoupling loss.
            Defaults to 0.1.
        decouple (str): ``'corr'`` or ``'weight'``. Defaults to ``'corr'``.
        retrieval_mode (str): ``'full'`` (the embedding is left unchanged:
            the head acts through its losses only, our reading of the
            paper), or our extensions ``'residual'`` / ``'concat'``.
            Defaults to ``'full'``.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int = 512,
                 share_classifier: bool = True,
                 semantic_dim: int = 128,
                 loss: Union[dict, nn.Module] = dict(
                     type='CrossEntropyLoss', loss_weight=1.0),
                 cls_scale: float = 16.0,
                 loss_weight_image: float = 0.1,
                 loss_weight_text: float = 0.1,
                 decouple_weight: float = 0.1,
                 decouple: str = 'corr',
                 retrieval_mode: str = 'full',
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        check_values(
            'LabelSemanticHead',
            num_classes=(num_classes, 'int>=1'),
            in_channels=(in_channels, 'int>=1'),
            semantic_dim=(semantic_dim, 'int>=0'),
            loss_weight_image=(loss_weight_image, '>=0'),
            loss_weight_text=(loss_weight_text, '>=0'),
            decouple_weight=(decouple_weight, '>=0'))
        super().__init__(init_cfg=init_cfg)
        name = 'LabelSemanticHead'
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f'{name}: `num_classes` must be a positive int, '
                             f'got {num_classes}.')
        if not 0 <= semantic_dim < in_channels:
            raise ValueError(f'{name}: `semantic_dim` must be in [0, '
                             f'in_channels={in_channels}), got '
                             f'{semantic_dim}.')
        if retrieval_mode not in _MODES:
            raise ValueError(f'{name}: `retrieval_mode` must be one of '
                             f'{_MODES}, got {retrieval_mode!r}.')
        if decouple not in ('corr', 'weight'):
            raise ValueError(f'{name}: `decouple` must be "corr" or '
                             f'"weight", got {decouple!r}.')
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.semantic_dim = semantic_dim
        self.share_classifier = share_classifier
        self.cls_scale = float(cls_scale)
        self.loss_weight_image = loss_weight_image
        self.loss_weight_text = loss_weight_text
        self.decouple_weight = decouple_weight
        self.decouple = decouple
        self.retrieval_mode = retrieval_mode
        if not isinstance(loss, nn.Module):
            loss = MODELS.build(loss)
        self.loss_module = loss

        cls_in = semantic_dim if semantic_dim > 0 else in_channels
        if semantic_dim > 0:
            self.sem_proj = nn.Linear(in_channels, semantic_dim)
            self.res_proj = nn.Linear(in_channels, in_channels - semantic_dim)
            if retrieval_mode == 'residual':
                self.back_proj = nn.Linear(semantic_dim, in_channels)
                nn.init.zeros_(self.back_proj.weight)
                nn.init.zeros_(self.back_proj.bias)
        self.cls_image = nn.Linear(cls_in, num_classes, bias=False)
        self.cls_text = (
            self.cls_image if share_classifier else nn.Linear(
                cls_in, num_classes, bias=False))

    SWITCHES = ('lsd', )

    def _classify(self, cls: nn.Linear, sem: torch.Tensor) -> torch.Tensor:
        """Cosine logits ``s * normalize(W) @ normalize(x)``, (N, K)."""
        return self.cls_scale * F.linear(
            F.normalize(sem, dim=-1), F.normalize(cls.weight, dim=-1))

    def init_weights(self) -> None:
        """Initialise; ``back_proj`` always restarts at zero, so the
        ``'residual'`` embedding is the identity at initialisation whatever
        ``init_cfg`` says."""
        super().init_weights()
        if hasattr(self, 'back_proj'):
            nn.init.zeros_(self.back_proj.weight)
            nn.init.zeros_(self.back_proj.bias)

    # --------------------------------------------------------------- parts
    def decompose(
            self,
            emb: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Split ``(N, D)`` into semantic ``(N, d_s)`` and residual parts.

        With ``semantic_dim=0`` returns ``(emb, None)``.
        """
        if self.semantic_dim == 0:
            return emb, None
        return self.sem_proj(emb), self.res_proj(emb)

    def forward(self,
                emb: torch.Tensor,
                modality: str = 'image') -> torch.Tensor:
        """Class logits ``(N, num_classes)`` of one modality's embeddings."""
        sem, _ = self.decompose(emb)
        cls = self.cls_image if modality == 'image' else self.cls_text
        return self._classify(cls, sem)

    def embed(
        self, image_emb: Optional[torch.Tensor],
        text_emb: Optional[torch.Tensor]
    ) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        """Retrieval embeddings after the head, width unchanged.

        Args:
            image_emb (Tensor, optional): ``(N, D)``.
            text_emb (Tensor, optional): ``(T, D)``.

        Returns:
            tuple: ``(image_emb, text_emb)`` of the same shapes (None stays
            None). ``'residual'`` and ``'full'`` do not normalise; the
            retriever re-normalises after its heads.
        """
        return self._embed_one(image_emb), self._embed_one(text_emb)

    def _embed_one(self,
                   emb: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        if emb is None or self.semantic_dim == 0 or \
                self.retrieval_mode == 'full' or not self.enabled('lsd'):
            return emb
        sem, res = self.decompose(emb)
        if self.retrieval_mode == 'residual':
            return emb + self.back_proj(sem)
        return torch.cat([F.normalize(sem, dim=-1),
                          F.normalize(res, dim=-1)],
                         dim=-1) / (2**0.5)

    # --------------------------------------------------------------- losses
    def _decouple_loss(self, sem: torch.Tensor,
                       res: torch.Tensor) -> torch.Tensor:
        if self.decouple == 'weight':
            ws = F.normalize(self.sem_proj.weight, dim=1)
            wr = F.normalize(self.res_proj.weight, dim=1)
            return (ws @ wr.t()).pow(2).mean()
        if sem.shape[0] < 2:
            return (sem.sum() + res.sum()) * 0.0
        sz = (sem - sem.mean(0)) / (sem.std(0) + 1e-5)
        rz = (res - res.mean(0)) / (res.std(0) + 1e-5)
        corr = sz.t() @ rz / (sem.shape[0] - 1)
        return corr.pow(2).mean()

    @staticmethod
    def get_labels(data_samples: list, device: torch.device) -> torch.Tensor:
        """``(B,)`` long tensor of ``gt_label`` on ``device``; -1 if absent.

        Tensors already on ``device`` are concatenated there (no host
        synchronisation).
        """
        labels = []
        for ds in data_samples:
            lab = ds.get('gt_label', None) if hasattr(ds, 'get') else None
            lab = torch.as_tensor(-1 if lab is None else lab)
            lab = lab.reshape(-1)[:1].to(device=device, dtype=torch.long)
            labels.append(lab if lab.numel() else lab.new_full((1, ), -1))
        if not labels:
            return torch.zeros(0, dtype=torch.long, device=device)
        return torch.cat(labels)

    def _check_labels(self, labels: torch.Tensor) -> None:
        bad = labels >= self.num_classes
        msg = ('LabelSemanticHead.loss: gt_label must be -1 or in [0, '
               f'num_classes={self.num_classes})')
        # checked by the device itself (no host read on any device); on CPU
        # the assertion fails at once and is re-raised as a ValueError
        try:
            torch._assert_async(~bad.any(), msg)
        except RuntimeError as err:
            raise ValueError(f'{msg}; labels: {labels.tolist()}.') from err

    def _cls_loss(self, logits: torch.Tensor,
                  labels: torch.Tensor) -> torch.Tensor:
        """Loss over the labelled rows; 0 (graph kept) without any."""
        known = labels >= 0
        weight = known.to(logits.dtype)
        return self.loss_module(
            logits,
            labels.clamp_min(0),
            weight=weight,
            avg_factor=weight.sum().clamp_min(1.0))

    def loss(self, image_emb: torch.Tensor, text_emb: torch.Tensor,
             data_samples: list) -> Dict[str, torch.Tensor]:
        """Classification losses on both modalities and the decoupling loss.

        Args:
            image_emb (Tensor): ``(B, D)`` image embeddings.
            text_emb (Tensor): ``(B, D)`` text embeddings, row ``i`` a
                caption of image row ``i``.
            data_samples (list[DataSample]): ``B`` samples carrying
                ``gt_label`` (one element; -1 or absent is ignored).

        Returns:
            dict[str, Tensor]: ``loss_lsd_img``, ``loss_lsd_txt`` and
            ``loss_lsd_orth``, already weighted.
        """
        bsz = len(data_samples)
        if image_emb.shape[0] != bsz or text_emb.shape[0] != bsz:
            raise ValueError(
                'LabelSemanticHead.loss: expected image_emb and text_emb '
                f'with {bsz} rows (len(data_samples)), got '
                f'{tuple(image_emb.shape)} and {tuple(text_emb.shape)}.')
        labels = self.get_labels(data_samples, image_emb.device)
        self._check_labels(labels)
        sem_i, res_i = self.decompose(image_emb)
        sem_t, res_t = self.decompose(text_emb)
        loss_img = self._cls_loss(
            self._classify(self.cls_image, sem_i), labels)
        loss_txt = self._cls_loss(self._classify(self.cls_text, sem_t), labels)
        if self.semantic_dim == 0:
            loss_orth = image_emb.sum() * 0.0 + text_emb.sum() * 0.0
        else:
            loss_orth = self._decouple_loss(
                torch.cat([sem_i, sem_t], 0), torch.cat([res_i, res_t], 0))
        return dict(
            loss_lsd_img=self.loss_weight_image * loss_img,
            loss_lsd_txt=self.loss_weight_text * loss_txt,
            loss_lsd_orth=self.decouple_weight * loss_orth)
