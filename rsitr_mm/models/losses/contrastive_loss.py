# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Multi-positive InfoNCE (symmetric contrastive) loss."""
import math
from typing import Optional

import torch
import torch.nn as nn
from mmpretrain.registry import MODELS

from ...utils.validation import check_values
from .soft_target_ce import (loss_dtype, scaled_soft_target_ce,
                             symmetric_soft_target_ce)
from .utils import as_id_tensor, gather_pool, positive_mask


@MODELS.register_module()
class MultiPositiveInfoNCELoss(nn.Module):
    """Symmetric InfoNCE where captions of the same image are all positives.

    For image row ``i`` and candidate captions ``j`` (this batch, or every
    rank's batch with ``gather_negatives=True``) with logits
    ``l_ij = s * <v_i, t_j>``, the target distribution is uniform over the
    positives ``P(i) = {j : image_id_j == image_id_i}``::

        L_i2t(i) = - sum_{j in P(i)} log softmax_j(l_ij) / |P(i)|

    and symmetrically for text rows over images. Captions of the same image
    are therefore never pushed apart as negatives. The loss is
    ``loss_weight * (mean_i L_i2t + mean_j L_t2i) / 2``.

    The logits are computed in float32 (autocast disabled for the B x M
    product), so AMP does not round ``s * cos`` (``s`` up to 100) to
    fp16/bf16. Both directions run through
    :func:`~rsitr_mm.models.losses.soft_target_ce.scaled_soft_target_ce`,
    whose hand-written backward launches about ten kernels per direction
    instead of about twenty (the values and gradients are those of the
    ``log_softmax`` composite; ``tests/test_models/test_losses``); with
    local candidates both directions share one product.

    Temperature: with ``learnable=False`` (default) the loss reads the
    model's ``logit_scale`` (``uses_logit_scale`` is True, so
    :class:`DualEncoderRetriever` keeps one) and falls back to
    ``1 / temperature`` when called without it. With ``learnable=True`` the
    loss owns its temperature: ``uses_logit_scale`` is False, the model
    passes none, and every parameter it creates is used.

    Args:
        temperature (float): ``s = 1 / temperature`` when no
            ``logit_scale`` is passed. Defaults to 0.07.
        learnable (bool): own a learnable temperature instead of using the
            model's ``logit_scale``. Defaults to False.
        gather_negatives (bool): in distributed training, use every rank's
            embeddings as candidates. Defaults to True. Without a process
            group it is a no-op.
        loss_weight (float): weight of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 temperature: float = 0.07,
                 learnable: bool = False,
                 gather_negatives: bool = True,
                 loss_weight: float = 1.0) -> None:
        check_values(
            'MultiPositiveInfoNCELoss',
            temperature=(temperature, '>0'),
            loss_weight=(loss_weight, '>=0'))
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        log_scale = torch.tensor(math.log(1.0 / temperature))
        if learnable:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer('log_scale', log_scale, persistent=False)
        self.learnable = learnable
        self.gather_negatives = gather_negatives
        self.loss_weight = loss_weight
        self.loss_name = 'loss_infonce'

    @property
    def uses_logit_scale(self) -> bool:
        """Whether the model's ``logit_scale`` should be passed in."""
        return not self.learnable

    def forward(self,
                image_embeds: torch.Tensor,
                text_embeds: torch.Tensor,
                image_ids: Optional[torch.Tensor] = None,
                labels: Optional[torch.Tensor] = None,
                logit_scale: Optional[torch.Tensor] = None,
                **kwargs) -> torch.Tensor:
        """Compute the loss.

        Args:
            image_embeds (torch.Tensor): (B, D) L2-normalised image
                embeddings, row ``i`` paired with caption row ``i``.
            text_embeds (torch.Tensor): (B, D) L2-normalised caption
                embeddings.
            image_ids (torch.Tensor, optional): (B,) image id of each row;
                ``None`` means every row is a different image.
            labels (torch.Tensor, optional): unused (scene labels).
            logit_scale (torch.Tensor, optional): scalar multiplier of the
                cosine similarities (e.g. CLIP's ``exp(logit_scale)``);
                ignored with ``learnable=True``.

        Returns:
            torch.Tensor: scalar loss.
        """
        if image_embeds.shape != text_embeds.shape:
            raise ValueError('image and text embeddings must have the same '
                             f'shape, got {tuple(image_embeds.shape)} and '
                             f'{tuple(text_embeds.shape)}')
        ids = as_id_tensor(image_ids, image_embeds.size(0),
                           image_embeds.device)
        if self.learnable or logit_scale is None:
            scale = self.log_scale.exp()
        else:
            scale = torch.as_tensor(logit_scale, device=image_embeds.device)
        pool = gather_pool(image_embeds, text_embeds, ids, None,
                           self.gather_negatives)
        # both directions share the target: rows uniform over the
        # positives (every row has one: its own pair), each weighted
        # loss_weight / (2 B) (half the mean over the anchors)
        pos = positive_mask(ids, pool.image_ids)
        count = pos.sum(dim=1, keepdim=True,
                        dtype=loss_dtype(image_embeds, text_embeds))
        target = pos / (count * (2 * len(ids) / self.loss_weight)) \
            if self.loss_weight > 0 else pos * 0.0
        if pool.offset == 0 and pool.texts is text_embeds:
            # local candidates: one product serves both directions (the
            # target is symmetric: positives are mutual, with equal counts)
            return symmetric_soft_target_ce(image_embeds, text_embeds, scale,
                                            target)
        loss_i2t = scaled_soft_target_ce(image_embeds, pool.texts, scale,
                                         target)
        loss_t2i = scaled_soft_target_ce(text_embeds, pool.images, scale,
                                         target)
        return loss_i2t + loss_t2i
