# Copyright (c) rsitr_mm contributors. All rights reserved.
"""SFE / SGS units and input checks of BSD (see ``bsd.py`` for the
equations). Kept apart so each file stays one concept."""
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


class SalienceUnitsMixin:
    """Salience extraction (SFE), suppression (SGS) and input checks.

    Expects the attributes set by
    :class:`~rsitr_mm.models.necks.bsd.BidirectionalScaleDecoupling`.
    """

    # ------------------------------------------------------------------ SFE
    def _salience_map(self, feat: torch.Tensor,
                      conv: nn.Module) -> torch.Tensor:
        """SFE map ``M`` of one scale, ``(B, C, H, W) -> (B, 1, H, W)``."""
        logits = conv(feat)
        if self.salience == 'conv':
            return logits.sigmoid()
        b, _, h, w = logits.shape
        prob = F.softmax(logits.flatten(1) / self.softmax_temperature, dim=1)
        prob = prob / prob.amax(dim=1, keepdim=True).clamp_min(self.eps)
        return prob.view(b, 1, h, w)

    def _pool(self, feat: torch.Tensor, sal: torch.Tensor) -> torch.Tensor:
        """Clue of one scale, ``(B, C, H, W), (B, 1, H, W) -> (B, C)``."""
        if self.pool == 'avg' or not self.enabled('salience'):
            return feat.mean(dim=(2, 3))
        num = (feat * sal).sum(dim=(2, 3))
        den = sal.sum(dim=(2, 3)).clamp_min(self.eps)
        return num / den

    # ------------------------------------------------------------------ SGS
    def _topk_mask(self, q: torch.Tensor) -> torch.Tensor:
        """0/1 mask of the top ``topk_ratio`` positions of ``q`` (B,1,H,W)."""
        b, _, h, w = q.shape
        k = max(1, int(round(self.topk_ratio * h * w)))
        idx = q.flatten(1).topk(k, dim=1).indices
        mask = torch.zeros_like(q.flatten(1)).scatter_(1, idx, 1.0)
        return mask.view(b, 1, h, w)

    def _suppress(
            self, feat: torch.Tensor,
            q: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Apply SGS. Returns the suppressed map and the amount ``alpha*Q``.

        Args:
            feat (Tensor): ``(B, C, H, W)`` lateral features of this scale.
            q (Tensor, optional): ``(B, 1, H, W)`` accumulated salience of
                the previous scales, resized to this scale; None at the
                first scale of a chain.
        """
        if q is None or not self.enabled('suppression'):
            b, _, h, w = feat.shape
            return feat, feat.new_zeros(b, 1, h, w)
        if self.suppression == 'topk':
            q = self._topk_mask(q)
        amount = self.suppress_strength * q
        return feat * (1.0 - amount), amount

    # --------------------------------------------------------------- inputs
    def _check_inputs(self, inputs) -> List[torch.Tensor]:
        if isinstance(inputs, torch.Tensor):
            inputs = (inputs, )
        if not isinstance(inputs, (tuple, list)):
            raise TypeError('BidirectionalScaleDecoupling: inputs must be a '
                            f'tuple of (B, C, H, W) tensors, got '
                            f'{type(inputs)}.')
        # CLIPVisionBackbone appends its (B, D) global embedding to the
        # patch grids; BSD works on the grids only.
        inputs = [x for x in inputs if x.dim() != 2]
        if len(inputs) != self.num_scales:
            raise ValueError(
                'BidirectionalScaleDecoupling: expected '
                f'{self.num_scales} scales (len(in_channels)), got '
                f'{len(inputs)} inputs.')
        for i, (x, c) in enumerate(zip(inputs, self.in_channels)):
            if x.dim() != 4 or x.shape[1] != c:
                raise ValueError(
                    'BidirectionalScaleDecoupling: input '
                    f'{i} must have shape (B, {c}, H, W) '
                    f'(in_channels[{i}]={c}), got {tuple(x.shape)}.')
        return list(inputs)
