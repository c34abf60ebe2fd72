# Copyright (c) rsitr_mm contributors. All rights reserved.
"""OSFCM: Object Semantic-aware Feature Clustering Module (our reading).

OSDPM counts object nouns in each image's captions and uses the frequent ones
as a semantic prior that guides the clustering of image features in the
shared space. We implement it as a soft prototype ("affiliation") contrastive
loss: one prototype per vocabulary noun, and each image embedding is pulled
towards the prototypes of its prior, weighted by the prior.
"""
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.dist import all_reduce, is_distributed
from mmengine.model import BaseModule

from mmpretrain.registry import MODELS
from rsitr_mm.datasets.object_priors import ObjectPriors, build_object_priors
from ...utils.validation import check_values

_PROTOTYPES = ('learnable', 'ema')


def _img_path_of(sample) -> Optional[str]:
    """``img_path`` (else ``filename``) of a DataSample or a plain dict."""
    if sample is None:
        return None
    meta = getattr(sample, 'metainfo', None)
    for key in ('img_path', 'filename'):
        if isinstance(meta, dict) and meta.get(key) is not None:
            return meta[key]
        if isinstance(sample, dict) and sample.get(key) is not None:
            return sample[key]
        value = getattr(sample, key, None)
        if isinstance(value, str):
            return value
    return None


@MODELS.register_module()
class ObjectSemanticClusterHead(BaseModule):
    """Object-prior guided clustering head (OSFCM) of OSDPM.

    Let ``e`` be a (L2-normalised) embedding, ``P`` the (K, D) prototypes and
    ``p`` the image's object prior (K,), summing to 1 (or all zero). Then::

        logits = normalise(e) @ normalise(P).T / temperature       # (K,)
        loss   = - sum_k p_k * log_softmax(logits)_k

    averaged over the images whose prior is non-empty (images with an empty
    prior contribute nothing; a batch without any gives a zero loss that keeps
    the graph valid). The text side, when ``text_weight > 0``, uses the same
    prototypes and the image's prior for the caption's embedding.

    Prototypes are either learnable parameters (``'learnable'``) or buffers
    (``'ema'``) updated without gradient during training as
    ``P_k <- m * P_k + (1 - m) * mean_k`` with ``mean_k`` the prior-weighted
    mean of the batch's image embeddings (a prototype is set directly the
    first time it is seen). Under distributed training the weighted sums are
    all-reduced (guarded by ``is_distributed()``), so every rank keeps the
    same prototypes; nothing else communicates.

    The head does not change the embeddings: :meth:`embed` is the identity.

    Args:
        embed_dim (int): Embedding dimension ``D``. Defaults to 512.
        ann_file (str | list[str], optional): Karpathy-format caption json(s)
            from which the priors are built.
        priors_file (str, optional): ``.npz`` priors. With ``ann_file`` it is
            the cache (loaded when its key matches, else rebuilt and saved);
            alone, it is loaded as is.
        top_k (int): Vocabulary size K. Defaults to 50.
        extra_nouns (Sequence[str]): Nouns added to the shipped lexicon.
        split (str | Sequence[str]): Split(s) of ``ann_file`` used for the
            vocabulary and priors. Defaults to ``'train'``.
        lexicon (str, optional): A lexicon file replacing the shipped one.
        prototype (str): ``'learnable'`` or ``'ema'``. Defaults to
            ``'learnable'``.
        ema_momentum (float): EMA momentum ``m``. Defaults to 0.9.
        temperature (float): Softmax temperature. Defaults to 0.1.
        loss_weight (float): Weight of ``loss_osfcm``. Defaults to 1.0.
        text_weight (float): Weight of ``loss_osfcm_txt`` relative to
            ``loss_weight``; 0 disables the text side. Defaults to 0.5.
        min_prior (float): Prior entries below this are zeroed and the row
            renormalised. Defaults to 0.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 embed_dim: int = 512,
                 ann_file: Union[None, str, Sequence[str]] = None,
                 priors_file: Optional[str] = None,
                 top_k: int = 50,
                 extra_nouns: Sequence[str] = (),
                 split: Union[str, Sequence[str]] = 'train',
                 lexicon: Optional[str] = None,
                 prototype: str = 'learnable',
                 ema_momentum: float = 0.9,
                 temperature: float = 0.1,
                 loss_weight: float = 1.0,
                 text_weight: float = 0.5,
                 min_prior: float = 0.0,
                 init_cfg: Optional[dict] = None) -> None:
        check_values(
            'ObjectSemanticClusterHead',
            embed_dim=(embed_dim, 'int>=1'), top_k=(top_k, 'int>=1'),
            ema_momentum=(ema_momentum, '[0,1]'),
            temperature=(temperature, '>0'),
            loss_weight=(loss_weight, '>=0'),
            text_weight=(text_weight, '>=0'),
            min_prior=(min_prior, '[0,1)'))
        super().__init__(init_cfg=init_cfg)
        if prototype not in _PROTOTYPES:
            raise ValueError(f'ObjectSemanticClusterHead: prototype must be '
                             f'one of {_PROTOTYPES}, got {prototype!r}.')
        if temperature <= 0:
            raise ValueError('ObjectSemanticClusterHead: temperature must be '
                             f'> 0, got {temperature}.')
        if not 0.0 <= ema_momentum < 1.0:
            raise ValueError('ObjectSemanticClusterHead: ema_momentum must be '
                             f'in [0, 1), got {ema_momentum}.')
        if ann_file is not None:
            priors = build_object_priors(
                ann_file,
                split=split,
                top_k=top_k,
                lexicon=lexicon,
                extra_nouns=tuple(extra_nouns),
                cache_file=priors_file)
        elif priors_file is not None:
            priors = ObjectPriors.load(priors_file)
        else:
            raise ValueError('ObjectSemanticClusterHead: give ann_file '
                             '(caption json to build the object priors '
                             'from) and/or priors_file (saved .npz).')
        if priors.num_nouns == 0:
            raise ValueError('ObjectSemanticClusterHead: the object '
                             'vocabulary is empty (no lexicon noun found in '
                             'the captions).')
        self.priors = priors
        self.vocab: List[str] = list(priors.vocab)
        self.embed_dim = embed_dim
        self.prototype = prototype
        self.ema_momentum = ema_momentum
        self.temperature = temperature
        self.loss_weight = loss_weight
        self.text_weight = text_weight
        self.min_prior = min_prior

        table = torch.from_numpy(
            self._filter_priors(priors.priors.astype(np.float32), min_prior))
        # Not saved in checkpoints (rebuilt from the annotations).
        self.register_buffer('prior_table', table, persistent=False)
        K = priors.num_nouns
        init = F.normalize(torch.randn(K, embed_dim), dim=1)
        if prototype == 'learnable':
            self.prototypes = nn.Parameter(init)
        else:
            self.register_buffer('prototypes', init)
            self.register_buffer('proto_seen', torch.zeros(K,
                                                           dtype=torch.bool))

    @staticmethod
    def _filter_priors(table: np.ndarray, min_prior: float) -> np.ndarray:
        if min_prior <= 0:
            return table
        table = np.where(table >= min_prior, table, 0.0).astype(np.float32)
        sums = table.sum(axis=1, keepdims=True)
        return np.divide(
            table, sums, out=np.zeros_like(table), where=sums > 0)

    @property
    def num_prototypes(self) -> int:
        return len(self.vocab)

    def get_priors(self, data_samples: Optional[Sequence]) -> torch.Tensor:
        """(B, K) priors of a batch, matched by the basename of ``img_path``.

        Samples without ``img_path`` or with an unknown image get zero rows.
        """
        if not data_samples:
            raise ValueError('ObjectSemanticClusterHead.loss needs '
                             'data_samples carrying img_path.')
        rows = [
            self.priors.index(p) if p is not None else -1
            for p in map(_img_path_of, data_samples)
        ]
        idx = torch.tensor(rows, device=self.prior_table.device)
        out = self.prior_table[idx.clamp(min=0)]
        return out * (idx >= 0).unsqueeze(1).to(out.dtype)

    def embed(self, image_emb: Optional[torch.Tensor],
              text_emb: Optional[torch.Tensor]):
        """Identity: the head only adds a training loss."""
        return image_emb, text_emb

    def _cluster_loss(self, emb: torch.Tensor, prior: torch.Tensor,
                      protos: torch.Tensor) -> torch.Tensor:
        logits = F.normalize(emb, dim=1) @ protos.t() / self.temperature
        valid = prior.sum(dim=1) > 0
        per_row = -(prior * logits.log_softmax(dim=1)).sum(dim=1)
        if not bool(valid.any()):
            return logits.sum() * 0.0
        return per_row[valid].mean()

    @torch.no_grad()
    def _update_ema(self, image_emb: torch.Tensor,
                    prior: torch.Tensor) -> None:
        emb = F.normalize(image_emb.detach().float(), dim=1)
        prior = prior.float()
        sums = prior.t() @ emb  # (K, D)
        mass = prior.sum(dim=0)  # (K,)
        if is_distributed():
            all_reduce(sums)
            all_reduce(mass)
        present = mass > 0
        if not bool(present.any()):
            return
        mean = sums[present] / mass[present].unsqueeze(1)
        old = self.prototypes[present]
        seen = self.proto_seen[present].unsqueeze(1)
        m = self.ema_momentum
        new = torch.where(seen, m * old + (1 - m) * mean, mean)
        self.prototypes[present] = F.normalize(new, dim=1).to(
            self.prototypes.dtype)
        self.proto_seen[present] = True

    def loss(self, image_emb: torch.Tensor, text_emb: Optional[torch.Tensor],
             data_samples: Sequence) -> Dict[str, torch.Tensor]:
        """Prototype clustering losses.

        Args:
            image_emb (Tensor): (B, D) image embeddings (one row per caption
                in training batches; repeated images are fine).
            text_emb (Tensor, optional): (B, D) caption embeddings, row-aligned
                with ``image_emb``.
            data_samples (list[DataSample]): B samples carrying ``img_path``.

        Returns:
            dict[str, Tensor]: ``loss_osfcm`` and, when ``text_weight > 0``
            and ``text_emb`` is given, ``loss_osfcm_txt``.
        """
        if image_emb.dim() != 2 or image_emb.size(1) != self.embed_dim:
            raise ValueError('ObjectSemanticClusterHead: image_emb must be '
                             f'(B, embed_dim={self.embed_dim}), got '
                             f'{tuple(image_emb.shape)}.')
        prior = self.get_priors(data_samples).to(image_emb.dtype)
        if prior.size(0) != image_emb.size(0):
            raise ValueError(f'ObjectSemanticClusterHead: {prior.size(0)} '
                             f'data samples for {image_emb.size(0)} '
                             'embeddings.')
        protos = F.normalize(self.prototypes, dim=1).to(image_emb.dtype)
        losses = dict(loss_osfcm=self.loss_weight *
                      self._cluster_loss(image_emb, prior, protos))
        if self.text_weight > 0 and text_emb is not None:
            if text_emb.shape != image_emb.shape:
                raise ValueError('ObjectSemanticClusterHead: text_emb must '
                                 'be row-aligned with image_emb, got '
                                 f'{tuple(text_emb.shape)} vs '
                                 f'{tuple(image_emb.shape)}.')
            losses['loss_osfcm_txt'] = (
                self.loss_weight * self.text_weight *
                self._cluster_loss(text_emb, prior, protos.to(text_emb)))
        if self.prototype == 'ema' and self.training:
            self._update_ema(image_emb, prior)
        return losses

    def extra_repr(self) -> str:
        return (f'num_prototypes={self.num_prototypes}, '
                f'prototype={self.prototype!r}, '
                f'temperature={self.temperature}')

