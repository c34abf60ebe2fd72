# Copyright (c) rsitr_mm contributors. All rights reserved.
"""VSE++ hinge triplet ranking loss with hardest negatives."""
from typing import Optional

import torch
import torch.nn as nn
from mmpretrain.registry import MODELS

from ...utils.validation import check_values
from .utils import as_id_tensor, gather_pool, positive_mask, scores_fp32


def hinge_triplet_costs(anchor: torch.Tensor, anchor_ids: torch.Tensor,
                        cand: torch.Tensor, cand_ids: torch.Tensor,
                        offset: int, margin) -> torch.Tensor:
    """Hinge costs of every (anchor, negative candidate) pair.

    Args:
        anchor (torch.Tensor): (B, D) anchors; anchor ``i``'s positive is
            candidate ``offset + i``.
        anchor_ids (torch.Tensor): (B,) image ids of the anchors.
        cand (torch.Tensor): (M, D) candidates.
        cand_ids (torch.Tensor): (M,) image ids of the candidates.
        offset (int): index of the first local row among the candidates.
        margin (float | torch.Tensor): scalar or (B, M) margins.

    Returns:
        torch.Tensor: (B, M) float32 costs
        ``relu(margin + s(a, n) - s(a, p))``, zero where the candidate shows
        the anchor's own image. Scores are computed in float32 even under
        autocast, so hardest-negative mining is not done on fp16/bf16
        similarities.
    """
    scores = scores_fp32(anchor, cand)  # (B, M)
    rows = torch.arange(anchor.size(0), device=anchor.device)
    pos_scores = scores[rows, rows + offset].view(-1, 1)
    cost = (margin + scores - pos_scores).clamp(min=0)
    return cost.masked_fill(positive_mask(anchor_ids, cand_ids), 0)


@MODELS.register_module()
class TripletRankingLoss(nn.Module):
    """Bidirectional hinge triplet loss of VSE++ (Faghri et al., 2018).

    With cosine similarities ``S = V T^T`` of paired rows and negatives
    restricted to pairs of different images::

        c_i2t(i, j) = [m + S_ij - S_ii]_+        (caption j negative)
        c_t2i(i, j) = [m + S_ji - S_ii]_+        (image j negative)

    Each anchor keeps its hardest negative (``max_violation=True``) or the
    sum over negatives; the loss is
    ``loss_weight * mean_i (c_i2t(i) + c_t2i(i))``.

    Args:
        margin (float): the margin m. Defaults to 0.2.
        max_violation (bool): hardest negative only. Defaults to True.
        gather_negatives (bool): in distributed training, draw negatives
            from every rank's batch (with gradient, as
            :class:`MultiPositiveInfoNCELoss`): R processes of batch b then
            mine the same hardest negatives as one process of batch R * b.
            Defaults to False: each process mines in its own batch (the
            published setting is one batch of 100 on one GPU; see
            docs/distributed.md). Without a process group it is a no-op.
        loss_weight (float): weight of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 margin: float = 0.2,
                 max_violation: bool = True,
                 gather_negatives: bool = False,
                 loss_weight: float = 1.0) -> None:
        check_values(
            'TripletRankingLoss',
            margin=(margin, '>=0'), loss_weight=(loss_weight, '>=0'))
        super().__init__()
        self.margin = margin
        self.max_violation = max_violation
        self.gather_negatives = gather_negatives
        self.loss_weight = loss_weight
        self.loss_name = 'loss_triplet'

    #: the hinge works on cosine similarities; no ``logit_scale``
    uses_logit_scale = False

    def _reduce(self, cost: torch.Tensor) -> torch.Tensor:
        return cost.max(dim=1).values if self.max_violation else cost.sum(1)

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
            image_ids (torch.Tensor, optional): (B,) image ids; rows of the
                same image are never negatives of each other.
            labels (torch.Tensor, optional): unused.
            logit_scale (torch.Tensor, optional): unused.

        Returns:
            torch.Tensor: scalar loss.
        """
        ids = as_id_tensor(image_ids, image_embeds.size(0),
                           image_embeds.device)
        pool = gather_pool(image_embeds, text_embeds, ids, None,
                           self.gather_negatives)
        c_i2t = hinge_triplet_costs(image_embeds, ids, pool.texts,
                                    pool.image_ids, pool.offset, self.margin)
        c_t2i = hinge_triplet_costs(text_embeds, ids, pool.images,
                                    pool.image_ids, pool.offset, self.margin)
        return self.loss_weight * (self._reduce(c_i2t) +
                                   self._reduce(c_t2i)).mean()
