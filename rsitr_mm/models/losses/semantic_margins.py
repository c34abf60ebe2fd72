# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Per-pair margins of the Semantic-guided Triplet Loss (see
``semantic_triplet_loss.py`` for the equations)."""
import math
from typing import Optional

import torch
import torch.nn.functional as F


class SemanticMarginMixin:
    """``pair_margins`` and its helpers; expects the attributes set by
    :class:`~rsitr_mm.models.losses.SemanticGuidedTripletLoss`."""

    # ------------------------------------------------------------ margins
    @staticmethod
    def _known(labels: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
        """``(B, M)`` bool, True where both labels are known (>= 0)."""
        return (labels >= 0)[:, None] & (cand >= 0)[None, :]

    def _prototype_similarity(self, labels: torch.Tensor,
                              cand: torch.Tensor) -> tuple:
        """Detached prototype cosine in ``[0, 1]`` and its validity mask."""
        if self.prototype == 'learned':
            protos = self.prototypes.weight
            seen = torch.ones_like(labels, dtype=torch.bool)
            seen_c = torch.ones_like(cand, dtype=torch.bool)
        else:
            protos = self.proto_ema
            seen = self.proto_seen[labels.clamp_min(0)]
            seen_c = self.proto_seen[cand.clamp_min(0)]
        protos = F.normalize(protos.detach(), dim=-1)
        p, q = protos[labels.clamp_min(0)], protos[cand.clamp_min(0)]
        sim = (p @ q.t()).clamp(0.0, 1.0)
        # same class is always fully similar, whatever the prototype
        sim = torch.where(labels[:, None] == cand[None, :],
                          torch.ones_like(sim), sim)
        valid = self._known(labels, cand) & seen[:, None] & seen_c[None, :]
        return sim, valid

    def _amfmn(self, prior: torch.Tensor) -> torch.Tensor:
        if abs(self.beta) < 1e-8:
            return self.gamma * (1.0 - prior)
        eb = math.exp(self.beta)
        return self.gamma * (eb - torch.exp(self.beta * prior)) / (eb - 1.0)

    def pair_margins(self,
                     labels: Optional[torch.Tensor],
                     batch_size: int,
                     device: torch.device,
                     cand_labels: Optional[torch.Tensor] = None,
                     text_sim: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Margin ``m_ij`` of every (anchor, negative) pair, ``(B, M)``.

        Args:
            labels (Tensor, optional): ``(B,)`` anchor labels, -1 unknown.
            batch_size (int): ``B``.
            device: Device of the result.
            cand_labels (Tensor, optional): ``(M,)`` candidate labels;
                defaults to ``labels`` (``M = B``).
            text_sim (Tensor, optional): ``(B, M)`` caption cosine
                similarities, used by the ``'text'`` priors.

        Unknown labels (-1), ``labels=None`` or a missing ``text_sim`` give
        the base margin (or the caption term alone for ``'label_text'``).
        """
        m = batch_size if cand_labels is None else cand_labels.numel()
        base = torch.full((batch_size, m), self.margin, device=device)
        if self.semantic == 'none':
            return base
        txt = None if text_sim is None else text_sim.detach().to(base).clamp(
            0.0, 1.0)
        if labels is None:
            if self.semantic == 'amfmn' and txt is not None and \
                    self.amfmn_prior in ('text', 'label_text'):
                return self._amfmn(txt)
            return base
        labels = labels.to(device=device, dtype=torch.long).view(-1)
        cand = labels if cand_labels is None else cand_labels.to(
            device=device, dtype=torch.long).view(-1)
        same = labels[:, None] == cand[None, :]
        valid = self._known(labels, cand)
        if self.semantic == 'label':
            scale = torch.where(same,
                                torch.full_like(base, self.same_class_scale),
                                torch.full_like(base, self.diff_class_scale))
            margins = self.margin * scale
        elif self.semantic == 'prototype':
            sim, valid = self._prototype_similarity(labels, cand)
            scale = self.diff_class_scale + (self.same_class_scale -
                                             self.diff_class_scale) * sim
            margins = self.margin * scale
        else:  # amfmn
            prior_kind = self.amfmn_prior
            if prior_kind in ('text', 'label_text') and txt is None:
                prior_kind = 'label'
            if prior_kind == 'label':
                prior = same.to(base.dtype)
            elif prior_kind == 'prototype':
                prior, valid = self._prototype_similarity(labels, cand)
            elif prior_kind == 'text':
                prior, valid = txt, torch.ones_like(valid)
            else:
                w = self.label_weight
                prior = torch.where(valid,
                                    w * same.to(base.dtype) + (1 - w) * txt,
                                    txt)
                valid = torch.ones_like(valid)
            margins = self._amfmn(prior)
        return torch.where(valid, margins, base)
