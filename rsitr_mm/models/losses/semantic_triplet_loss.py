# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Semantic-guided Triplet Loss (STL) of SSJDN, our reading.

SSJDN (Zheng et al., ACM TOMM 2024, arXiv 2212.05752) says only that STL
"adaptively generates a constant" from semantic agreement to adjust the
triplet loss. Here that constant is the margin of each (anchor, negative)
pair. With cosine similarities ``S = I @ T^T`` of L2-normalised embeddings,
positives on the diagonal and negatives the pairs with a different
``image_id``::

    c_i2t[i, j] = relu(m_ij + S[i, j] - S[i, i])    # image anchor i
    c_t2i[i, j] = relu(m_ij + S[i, j] - S[j, j])    # text anchor j
    loss = loss_weight * mean_i(agg_j c_i2t[i, j] + agg_j' c_t2i[j', i])

``agg`` is ``max`` (hardest negative, VSE++) or ``sum``. The margin
``m_ij`` (symmetric in ``i, j``) depends on ``semantic``:

* ``'none'``: ``m_ij = m0`` (plain VSE++);
* ``'label'``: ``m0 * same_class_scale`` when ``y_i == y_j``, else
  ``m0 * diff_class_scale``; ``m0`` when either label is unknown (-1);
* ``'prototype'``: ``m0 * (d + (s - d) * clamp(cos(p_{y_i}, p_{y_j}), 0, 1))``
  with ``s, d`` the two scales and ``p_c`` a class prototype (an EMA of the
  class's embeddings, or a learned ``nn.Embedding``), detached;
* ``'amfmn'`` (default): ``gamma * (e^beta - e^(beta * P_ij)) / (e^beta -
  1)``, the dynamic margin of AMFMN, with prior similarity ``P_ij`` in
  ``[0, 1]`` from labels (1 same class, 0 different), prototypes, the
  captions (``'text'``: ``clamp(cos(t_i, t_j), 0, 1)`` of the detached
  caption embeddings) or, by default, ``'label_text'``:
  ``w * [y_i == y_j] + (1 - w) * clamp(cos(t_i, t_j), 0, 1)`` (a label
  alone gives only two fixed margins; the caption term makes the constant
  adapt to each pair; unknown labels use the caption term alone).

Warm-up: for the first ``warmup_iters`` training calls the negatives are
summed (VSE++'s warm start), then the hardest is kept (the count is saved
in checkpoints, so a resumed run does not warm up again): hardest-negative
training from a random start stalled near ``2 * margin`` for ~300
iterations. With ``gather_negatives=True`` the candidates (and their labels)
come from every rank (:func:`~.utils.candidate_pool`).
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmpretrain.registry import MODELS

from ...utils.dist import all_gather_variable
from ..utils.warmup_counter import WarmupCounterMixin
from .semantic_margins import SemanticMarginMixin
from .triplet_loss import hinge_triplet_costs
from ...utils.validation import check_values
from .utils import as_id_tensor, candidate_pool

_SEMANTICS = ('none', 'label', 'prototype', 'amfmn')
_PRIORS = ('label', 'prototype', 'text', 'label_text')


@MODELS.register_module()
class SemanticGuidedTripletLoss(WarmupCounterMixin, SemanticMarginMixin,
                                nn.Module):
    """Hinge triplet ranking loss with a semantic, per-pair margin.

    Args:
        margin (float): Base margin ``m0``. Defaults to 0.2.
        max_violation (bool): Hardest negative per anchor (VSE++) if True,
            sum over negatives otherwise. Defaults to True.
        semantic (str): ``'none'``, ``'label'``, ``'prototype'`` or
            ``'amfmn'`` (see the module docstring). Defaults to
            ``'amfmn'``.
        same_class_scale (float): Margin factor for same-class negatives.
            Defaults to 0.5.
        diff_class_scale (float): Margin factor for different-class
            negatives. Defaults to 1.0.
        num_classes (int, optional): Number of scene classes; required by
            ``'prototype'`` and by ``'amfmn'`` with ``amfmn_prior=
            'prototype'``.
        embed_dim (int, optional): Embedding width; required with
            prototypes.
        prototype (str): ``'ema'`` (buffer updated with the batch's
            per-class mean embedding in training; no gradient) or
            ``'learned'`` (``nn.Embedding`` trained by a prototype
            classification term, weighted by ``prototype_loss_weight``).
            Defaults to ``'ema'``.
        prototype_momentum (float): EMA momentum. Defaults to 0.9.
        prototype_loss_weight (float): Weight of the learned prototypes'
            cross-entropy term (added to the returned loss). Defaults to 0.1.
        prototype_temperature (float): Temperature of that term.
            Defaults to 0.1.
        gamma (float, optional): AMFMN's largest margin (at prior 0).
            Defaults to ``margin``.
        beta (float): AMFMN's curvature; 0 gives the linear limit
            ``gamma * (1 - P)``. Defaults to 3.0.
        amfmn_prior (str): ``'label'``, ``'prototype'``, ``'text'`` or
            ``'label_text'``. Defaults to ``'label_text'``.
        label_weight (float): ``w`` of ``'label_text'``. Defaults to 0.5.
        warmup_iters (int): Training calls that sum over negatives before
            ``max_violation`` applies. Defaults to 300.
        gather_negatives (bool): Draw negatives from every rank in
            distributed training. Defaults to False.
        loss_weight (float): Weight of the whole loss. Defaults to 1.0.
        loss_name (str): Key of this loss in the retriever's loss dict.
            Defaults to ``'loss_stl'``.
    """

    def __init__(self,
                 margin: float = 0.2,
                 max_violation: bool = True,
                 semantic: str = 'amfmn',
                 same_class_scale: float = 0.5,
                 diff_class_scale: float = 1.0,
                 num_classes: Optional[int] = None,
                 embed_dim: Optional[int] = None,
                 prototype: str = 'ema',
                 prototype_momentum: float = 0.9,
                 prototype_loss_weight: float = 0.1,
                 prototype_temperature: float = 0.1,
                 gamma: Optional[float] = None,
                 beta: float = 3.0,
                 amfmn_prior: str = 'label_text',
                 label_weight: float = 0.5,
                 warmup_iters: int = 300,
                 gather_negatives: bool = False,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_stl') -> None:
        check_values(
            'SemanticGuidedTripletLoss',
            margin=(margin, '>=0'),
            same_class_scale=(same_class_scale, '>=0'),
            diff_class_scale=(diff_class_scale, '>=0'),
            num_classes=(num_classes, 'int>=1'),
            embed_dim=(embed_dim, 'int>=1'),
            prototype_momentum=(prototype_momentum, '[0,1]'),
            prototype_loss_weight=(prototype_loss_weight, '>=0'),
            prototype_temperature=(prototype_temperature, '>0'),
            gamma=(gamma, '>=0'), beta=(beta, '>=0'),
            loss_weight=(loss_weight, '>=0'))
        super().__init__()
        name = 'SemanticGuidedTripletLoss'
        if semantic not in _SEMANTICS:
            raise ValueError(f'{name}: `semantic` must be one of '
                             f'{_SEMANTICS}, got {semantic!r}.')
        if prototype not in ('ema', 'learned'):
            raise ValueError(f'{name}: `prototype` must be "ema" or '
                             f'"learned", got {prototype!r}.')
        if amfmn_prior not in _PRIORS:
            raise ValueError(f'{name}: `amfmn_prior` must be one of '
                             f'{_PRIORS}, got {amfmn_prior!r}.')
        if not 0 <= label_weight <= 1:
            raise ValueError(f'{name}: `label_weight` must be in [0, 1], '
                             f'got {label_weight}.')
        if not 0 <= prototype_momentum < 1:
            raise ValueError(f'{name}: `prototype_momentum` must be in '
                             f'[0, 1), got {prototype_momentum}.')
        self.margin = float(margin)
        self.max_violation = max_violation
        self.semantic = semantic
        self.same_class_scale = float(same_class_scale)
        self.diff_class_scale = float(diff_class_scale)
        self.num_classes = num_classes
        self.embed_dim = embed_dim
        self.prototype = prototype
        self.prototype_momentum = prototype_momentum
        self.prototype_loss_weight = prototype_loss_weight
        self.prototype_temperature = prototype_temperature
        self.gamma = self.margin if gamma is None else float(gamma)
        self.beta = float(beta)
        self.amfmn_prior = amfmn_prior
        self.label_weight = float(label_weight)
        self.warmup_iters = int(warmup_iters)
        self.gather_negatives = gather_negatives
        self.loss_weight = loss_weight
        self.loss_name = loss_name
        # training calls seen (warm-up); saved in checkpoints
        self._init_warmup_counter()

        self.use_prototypes = semantic == 'prototype' or (
            semantic == 'amfmn' and amfmn_prior == 'prototype')
        if self.use_prototypes:
            if not num_classes or not embed_dim:
                raise ValueError(
                    f'{name}: `num_classes` and `embed_dim` are required '
                    f'with prototypes (semantic={semantic!r}), got '
                    f'num_classes={num_classes}, embed_dim={embed_dim}.')
            if prototype == 'learned':
                self.prototypes = nn.Embedding(num_classes, embed_dim)
            else:
                self.register_buffer('proto_ema',
                                     torch.zeros(num_classes, embed_dim))
                self.register_buffer(
                    'proto_seen', torch.zeros(num_classes, dtype=torch.bool))

    # ---------------------------------------------------------- prototypes
    @torch.no_grad()
    def _update_ema(self, emb: torch.Tensor, labels: torch.Tensor) -> None:
        """Per-class mean update without host synchronisation."""
        known = (labels >= 0).to(emb.dtype)
        safe = labels.clamp_min(0)
        emb = F.normalize(emb.detach().float(), dim=-1) * known[:, None]
        sums = torch.zeros_like(self.proto_ema).index_add_(0, safe, emb)
        count = torch.zeros(self.proto_ema.size(0), device=emb.device)
        count.index_add_(0, safe, known.float())
        present = (count > 0)[:, None]
        mean = sums / count.clamp_min(1.0)[:, None]
        m = self.prototype_momentum
        seen = self.proto_seen[:, None]
        new = torch.where(seen, m * self.proto_ema + (1.0 - m) * mean, mean)
        self.proto_ema.copy_(torch.where(present, new, self.proto_ema))
        self.proto_seen |= present.squeeze(1)

    def _prototype_ce(self, image_emb: torch.Tensor, text_emb: torch.Tensor,
                      labels: torch.Tensor) -> torch.Tensor:
        protos = F.normalize(self.prototypes.weight, dim=-1)
        emb = torch.cat([image_emb, text_emb], dim=0)
        target = torch.cat([labels, labels], dim=0)
        weight = (target >= 0).to(emb.dtype)
        logits = emb @ protos.t() / self.prototype_temperature
        ce = F.cross_entropy(logits, target.clamp_min(0), reduction='none')
        return (ce * weight).sum() / weight.sum().clamp_min(1.0)

    # ------------------------------------------------------------- forward
    def forward(self,
                image_emb: torch.Tensor,
                text_emb: torch.Tensor,
                image_ids: Optional[torch.Tensor] = None,
                labels: Optional[torch.Tensor] = None,
                logit_scale: Optional[torch.Tensor] = None,
                **kwargs) -> torch.Tensor:
        """Compute the loss.

        Args:
            image_emb (Tensor): ``(B, D)`` L2-normalised image embeddings.
            text_emb (Tensor): ``(B, D)`` L2-normalised text embeddings;
                row ``i`` is a caption of image row ``i``.
            image_ids (Tensor, optional): ``(B,)`` image index of each row;
                rows with the same id are never negatives of each other.
                None means every row shows a different image.
            labels (Tensor, optional): ``(B,)`` scene labels, -1 unknown.
            logit_scale: Unused; accepted for the common loss signature.
            **kwargs: Ignored, for the same reason.

        Returns:
            Tensor: scalar loss, already multiplied by ``loss_weight``.
        """
        if image_emb.dim() != 2 or image_emb.shape != text_emb.shape:
            raise ValueError(
                'SemanticGuidedTripletLoss: image_emb and text_emb must both '
                f'be (B, D), got {tuple(image_emb.shape)} and '
                f'{tuple(text_emb.shape)}.')
        bsz = image_emb.shape[0]
        try:
            image_ids = as_id_tensor(image_ids, bsz, image_emb.device)
        except ValueError as err:
            raise ValueError(
                f'SemanticGuidedTripletLoss: image_ids: {err}') from err
        if labels is not None:
            labels = torch.as_tensor(
                labels, device=image_emb.device).long().view(-1)
            if labels.numel() != bsz:
                raise ValueError('SemanticGuidedTripletLoss: labels must have '
                                 f'{bsz} elements, got {labels.numel()}.')

        all_img, all_txt, all_ids, offset = candidate_pool(
            image_emb, text_emb, image_ids, self.gather_negatives)
        cand_labels = None
        if labels is not None and all_ids.numel() != bsz:
            cand_labels = torch.cat(all_gather_variable(labels))
        text_sim = text_emb.detach() @ all_txt.detach().t()
        margins = self.pair_margins(labels, bsz, image_emb.device, cand_labels,
                                    text_sim).to(image_emb.dtype)
        # the same hinge as TripletRankingLoss, with per-pair margins
        cost_i2t = hinge_triplet_costs(image_emb, image_ids, all_txt, all_ids,
                                       offset, margins)
        cost_t2i = hinge_triplet_costs(text_emb, image_ids, all_img, all_ids,
                                       offset, margins)
        hardest = self.max_violation and (not self.training
                                          or self._iter >= self.warmup_iters)
        if self.training:
            self._count_step()
        if hardest:
            i2t = cost_i2t.max(dim=1).values
            t2i = cost_t2i.max(dim=1).values
        else:
            i2t = cost_i2t.sum(dim=1)
            t2i = cost_t2i.sum(dim=1)
        loss = (i2t + t2i).mean()

        if self.use_prototypes and labels is not None:
            if self.prototype == 'learned':
                loss = loss + self.prototype_loss_weight * self._prototype_ce(
                    image_emb, text_emb, labels)
            elif self.training:
                self._update_ema(
                    torch.cat([image_emb, text_emb], dim=0),
                    torch.cat([labels, labels], dim=0))
        return self.loss_weight * loss
