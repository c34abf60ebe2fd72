# Copyright (c) rsitr_mm contributors. All rights reserved.
"""OSFCM: Object Semantic-aware Feature Clustering Module (our reading).

OSDPM counts object nouns in each image's captions and uses the frequent ones
as a semantic prior that guides the clustering of image features in the
shared space. We implement the paper's part as a soft prototype
("affiliation") clustering loss: one prototype per vocabulary noun; each
image embedding is pulled towards the prototypes of its prior (noun
frequencies in its captions). Three opt-in extensions of ours (off by
default, not in the paper): idf re-weighting of the targets (``idf=True``), a
caption-side term (``text_weight > 0``: each caption pulled towards the
prototypes of the nouns it mentions) and a cluster-aware residual
refinement of both embeddings (``refine=True``; see
:class:`ObjectSemanticClusterHead`). Provenance of every element and the
measurements: ``docs/methods/osdpm.md``.
"""
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.dist import all_reduce, is_distributed
from mmengine.model import BaseModule

from mmpretrain.registry import MODELS
from rsitr_mm.datasets.object_priors import (ObjectPriors, build_object_priors,
                                             load_lexicon)
from ..necks.switchable import SwitchableMixin
from ..utils.l2_normalize import l2_normalize, l2_normalize_with_norm
from ...utils.host_syncs import host_array
from ..losses.soft_target_ce import loss_dtype, scaled_soft_target_ce
from ..utils.warmup_counter import WarmupCounterMixin
from .noun_targets import (CaptionNounTargets, OSFCMSampleTargets,
                           _img_path_of, _text_of, idf_weights, reweight_rows)
from ...utils.validation import check_values

_PROTOTYPES = ('learnable', 'ema')


@MODELS.register_module()
class ObjectSemanticClusterHead(WarmupCounterMixin, SwitchableMixin,
                                BaseModule):
    """Object-prior guided clustering head (OSFCM) of OSDPM.

    Let ``e`` be an embedding, ``P`` the (K, D) prototypes (L2-normalised)
    and ``q`` a target distribution over the K nouns. Then::

        logits = normalise(e) @ P.T / temperature                  # (K,)
        loss   = - sum_k q_k * log_softmax(logits)_k

    averaged over the rows with a non-empty target. Image rows use the
    image's prior re-weighted by idf; caption rows (``text_weight > 0``) use
    the nouns the caption itself mentions, idf weighted
    (:mod:`.noun_targets`). Both terms ramp up linearly over
    ``warmup_iters`` training steps.

    Prototypes start from data, not noise: the first time a noun occurs in
    a training batch its prototype is set to the prior-weighted mean of the
    batch's normalised image embeddings (both modes), so the loss starts
    consistent with the pretrained space instead of pulling it towards
    random directions. ``'ema'`` then follows
    ``P_k <- m * P_k + (1 - m) * mean_k`` without gradient; ``'learnable'``
    learns them. Under distributed training the weighted sums are
    all-reduced, so every rank keeps the same prototypes. In a single
    process, a ``'learnable'`` head skips that update when the batch brings
    no noun it has not seen (checked on the host from the batch's prior
    indices; the result is the same).

    The clustering runs in float32 under AMP, through
    :func:`~rsitr_mm.models.losses.soft_target_ce.scaled_soft_target_ce`
    (hand-written backward).

    **Refinement** (``refine=True``, our opt-in extension, not the
    paper's: it changes the embedding of images and captions alike)::

        a   = softmax(normalise(e) @ P.T / temperature)            # (K,)
        out = e + |e| * W (a @ P)          # W (D, D) zero-initialised

    so the head starts as the identity and ``W`` gets gradient from the
    retrieval loss at the first step. ``disable('osfcm')`` turns it off.

    With ``refine_centered=True`` the mixed prototypes are centred first
    (the assignment ``a`` is unchanged)::

        Pc  = P - mean_k P                 # (K, D), rows sum to zero
        out = e + |e| * W (a @ Pc)    # = e + |e| (W (a @ P) - W mean_k P)

    Because ``a`` sums to 1, ``a @ Pc = a @ P - mean_k P``: the component
    shared by every prototype is removed from what ``W`` reads, leaving how
    ``a`` departs from the average noun. ``W``'s bias can still learn a
    constant residual, so both forms span the same functions for fixed
    ``P``; what changes is how the training signal reaches ``W``.

    Args:
        embed_dim (int): Embedding dimension ``D``. Defaults to 512.
        ann_file (str | list[str], optional): Karpathy-format caption json(s)
            from which the priors are built. Leave it and ``priors_file``
            unset (as the shipped configs do) to build the priors from the
            training dataset the runner builds
            (:class:`~rsitr_mm.engine.hooks.TrainDataToModelHook`); for
            inference only the prototypes are needed, and their count comes
            from the checkpoint.
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
        loss_weight (float): Weight of ``loss_osfcm``. Defaults to 0.1.
        text_weight (float): Weight of ``loss_osfcm_txt`` relative to
            ``loss_weight``; 0 disables the text side. The caption-side term
            is our extension (the paper clusters image features only), so
            it is opt-in. Defaults to 0.
        min_prior (float): Prior entries below this are zeroed and the row
            renormalised. Defaults to 0.
        idf (bool): Re-weight targets by idf. Our extension (the paper
            speaks of high-probability priors from noun frequencies, not of
            re-weighting them), so it is opt-in. Defaults to False.
        caption_targets (bool): Caption rows use their own nouns (else the
            image's prior). Defaults to True.
        warmup_iters (int): Linear warm-up of the loss weight, in training
            steps of this process. Defaults to 500.
        refine (bool): Build the residual refinement. Our extension (the
            paper describes a clustering objective, not a change of the
            embedding), so it is opt-in. Defaults to False.
        refine_centered (bool): Mix the centred prototypes
            ``P - mean_k P`` in the refinement instead of ``P`` (needs
            ``refine=True``; the clustering loss is unchanged). Defaults to
            False (the original refinement).
        init_cfg (dict, optional): Initialisation config.
    """

    SWITCHES = ('osfcm', )

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
                 loss_weight: float = 0.1,
                 text_weight: float = 0.0,
                 min_prior: float = 0.0,
                 idf: bool = False,
                 caption_targets: bool = True,
                 warmup_iters: int = 500,
                 refine: bool = False,
                 refine_centered: bool = False,
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
        name = 'ObjectSemanticClusterHead'
        if prototype not in _PROTOTYPES:
            raise ValueError(f'{name}: prototype must be one of '
                             f'{_PROTOTYPES}, got {prototype!r}.')
        if temperature <= 0:
            raise ValueError(f'{name}: temperature must be > 0, got '
                             f'{temperature}.')
        if not 0.0 <= ema_momentum < 1.0:
            raise ValueError(f'{name}: ema_momentum must be in [0, 1), got '
                             f'{ema_momentum}.')
        if warmup_iters < 0:
            raise ValueError(f'{name}: warmup_iters must be >= 0, got '
                             f'{warmup_iters}.')
        if not isinstance(refine_centered, bool):
            raise ValueError(f'{name}: refine_centered must be a bool, got '
                             f'{refine_centered!r}.')
        if refine_centered and not refine:
            raise ValueError(f'{name}: refine_centered=True needs '
                             'refine=True (it changes the refinement only).')
        self.split = split
        self.top_k = top_k
        self.lexicon = lexicon
        self.extra_nouns = tuple(extra_nouns)
        self.idf = idf
        # explicit paths override the training dataset's annotations
        self.priors_from_config = ann_file is not None or \
            priors_file is not None
        priors: Optional[ObjectPriors] = None
        if ann_file is not None:
            priors = self._build_priors(ann_file, cache_file=priors_file)
        elif priors_file is not None:
            priors = ObjectPriors.load(priors_file)
        self.embed_dim = embed_dim
        self.prototype = prototype
        self.ema_momentum = ema_momentum
        self.temperature = temperature
        self.loss_weight = loss_weight
        self.text_weight = text_weight
        self.min_prior = min_prior
        self.caption_targets = caption_targets
        self.warmup_iters = int(warmup_iters)
        # training steps seen (warm-up); saved in checkpoints
        self._init_warmup_counter()

        # Until priors arrive (from the training dataset or the config),
        # top_k prototypes; a checkpoint brings its own count.
        K = priors.num_nouns if priors is not None else top_k
        # Not saved in checkpoints (rebuilt from the annotations; inference
        # needs only the prototypes). (images + 1, K): the last row is zero,
        # so the index -1 (an image without priors) reads a zero row.
        self.register_buffer(
            'prior_table', torch.zeros(1, K), persistent=False)
        self.priors: Optional[ObjectPriors] = None
        self.vocab: List[str] = []
        self.caption_nouns: Optional[CaptionNounTargets] = None
        init = F.normalize(torch.randn(K, embed_dim), dim=1)
        if prototype == 'learnable':
            self.prototypes = nn.Parameter(init)
        else:
            self.register_buffer('prototypes', init)
        self.register_buffer('proto_seen', torch.zeros(K, dtype=torch.bool))
        # host copies (see _needs_update): which table rows name which
        # nouns, and which prototypes are initialised (None: not known)
        self._table_host: Optional[np.ndarray] = None
        self._seen_host: Optional[np.ndarray] = np.zeros(K, bool)
        self.refine = refine
        self.refine_centered = refine_centered
        if refine:
            self.refine_proj = nn.Linear(embed_dim, embed_dim)
            self._zero_refine()
        if priors is not None:
            self._set_priors(priors)

    def _set_priors(self, priors: ObjectPriors) -> bool:
        """Use ``priors``: the prior table, the caption noun targets and
        ``K = priors.num_nouns`` prototypes (resized in place when K
        changes, keeping the ``Parameter`` object an optimizer may hold;
        all prototypes then restart unseen).

        Returns:
            bool: Whether the prototypes changed shape.
        """
        name = type(self).__name__
        if priors.num_nouns == 0:
            raise ValueError(f'{name}: the object vocabulary is empty (no '
                             'lexicon noun found in the captions).')
        K = priors.num_nouns
        self.priors = priors
        self.vocab = list(priors.vocab)
        idf_w = idf_weights(priors) if self.idf else np.ones(K, np.float32)
        table = self._filter_priors(
            priors.priors.astype(np.float32), self.min_prior)
        device = self.prototypes.device
        table = reweight_rows(table, idf_w)
        padded = np.concatenate([table, np.zeros((1, K), table.dtype)])
        self.prior_table = torch.from_numpy(padded).to(device)
        self._table_host = padded > 0
        self.caption_nouns = CaptionNounTargets(
            self.vocab,
            load_lexicon(self.lexicon, self.extra_nouns + tuple(self.vocab)),
            idf_w)
        return self._resize_prototypes(K)

    def _resize_prototypes(self, K: int) -> bool:
        if K == self.prototypes.shape[0]:
            return False
        protos = self.prototypes
        init = F.normalize(torch.randn(K, self.embed_dim), dim=1).to(
            device=protos.device, dtype=protos.dtype)
        if isinstance(protos, nn.Parameter):
            protos.data = init
            protos.grad = None
        else:
            self.prototypes = init
        self.proto_seen = torch.zeros(
            K, dtype=torch.bool, device=self.proto_seen.device)
        self._seen_host = np.zeros(K, bool)
        return True

    def checkpoint_sized_keys(self) -> List[str]:
        """State keys whose shape a checkpoint decides (no priors yet); see
        :func:`rsitr_mm.utils.safe_load.state_dict_mismatch`."""
        return [] if self.priors is not None else ['prototypes',
                                                   'proto_seen']

    @property
    def data_from_config(self) -> bool:
        """Whether the config named the priors' source, so that
        :meth:`setup_from_train_data` needs no training files."""
        return self.priors_from_config

    def setup_from_train_data(self, ann_files: Sequence[str]) -> bool:
        """Build the object priors from the training dataset's annotation
        files (split ``split``), unless the config gave ``ann_file`` or
        ``priors_file``.

        Called by :class:`~rsitr_mm.engine.hooks.TrainDataToModelHook`
        before training (and before a checkpoint is resumed).

        Args:
            ann_files (Sequence[str]): Karpathy json files of the training
                dataset.

        Returns:
            bool: Whether a parameter changed shape.
        """
        if self.priors_from_config:
            return False
        return self._set_priors(self._build_priors(list(ann_files)))

    def _build_priors(self,
                      ann_files: Union[str, Sequence[str]],
                      cache_file: Optional[str] = None) -> ObjectPriors:
        """Object priors of ``ann_files`` under this head's split, top-k,
        lexicon and extra nouns (``cache_file``: see
        :func:`build_object_priors`)."""
        return build_object_priors(
            ann_files,
            split=self.split,
            top_k=self.top_k,
            lexicon=self.lexicon,
            extra_nouns=self.extra_nouns,
            cache_file=cache_file)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs) -> None:
        """Without priors yet (test-only runs, ``init_retriever``), take the
        prototype count from the checkpoint."""
        saved = state_dict.get(prefix + 'prototypes')
        if (self.priors is None and isinstance(saved, torch.Tensor)
                and saved.dim() == 2 and saved.shape[1] == self.embed_dim):
            self._resize_prototypes(saved.shape[0])
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)
        seen = state_dict.get(prefix + 'proto_seen')
        self._seen_host = None  # unknown: every step updates
        if isinstance(seen, torch.Tensor) and \
                tuple(seen.shape) == tuple(self.proto_seen.shape):
            self._seen_host = seen.detach().cpu().numpy().astype(bool)

    def _zero_refine(self) -> None:
        if self.refine:
            nn.init.zeros_(self.refine_proj.weight)
            nn.init.zeros_(self.refine_proj.bias)

    def init_weights(self) -> None:
        """Initialise; the refinement restarts at zero (identity)."""
        super().init_weights()
        self._zero_refine()

    @staticmethod
    def _filter_priors(table: np.ndarray, min_prior: float) -> np.ndarray:
        if min_prior <= 0:
            return table
        table = np.where(table >= min_prior, table, 0.0).astype(np.float32)
        sums = table.sum(axis=1, keepdims=True)
        return np.divide(table, sums, out=np.zeros_like(table), where=sums > 0)

    @property
    def num_prototypes(self) -> int:
        return int(self.prototypes.shape[0])

    def caption_data_preparer(self) -> Optional[OSFCMSampleTargets]:
        """What the data pipeline computes for this head per sample (prior
        row index, caption target), or None without priors."""
        if self.priors is None:
            return None
        uses_text = self.text_weight > 0 and self.caption_targets
        return OSFCMSampleTargets(self.priors,
                                  self.caption_nouns if uses_text else None)

    def _rows_of(self, index: torch.Tensor) -> torch.Tensor:
        """(B, K) rows of the prior table; index -1 gives a zero row (the
        table's last)."""
        return self.prior_table[index.to(self.prior_table.device,
                                         non_blocking=True)]

    def get_priors(self, data_samples: Optional[Sequence]) -> torch.Tensor:
        """(B, K) idf-weighted priors of a batch, matched by the basename of
        ``img_path``. Samples without ``img_path`` or with an unknown image
        get zero rows."""
        return self._rows_of(self._index_of(data_samples))

    def _index_of(self, data_samples: Optional[Sequence]) -> torch.Tensor:
        """(B,) host row indices of the samples' priors (-1: none)."""
        if not data_samples:
            raise ValueError('ObjectSemanticClusterHead.loss needs '
                             'data_samples carrying img_path.')
        if self.priors is None:
            raise RuntimeError(
                'ObjectSemanticClusterHead has no object priors: train '
                'through the Runner with '
                "custom_hooks=[dict(type='TrainDataToModelHook')] "
                '(configs/_base_/default_runtime.py has it), which builds '
                "them from the training dataset, or set the head's ann_file "
                '/ priors_file.')
        return torch.tensor([
            self.priors.index(p) if p is not None else -1
            for p in map(_img_path_of, data_samples)
        ])

    def _host_rows(self, index: torch.Tensor) -> Optional[np.ndarray]:
        """(B, K) bool: which nouns each row's prior names, read on the
        host; None when the indices are on the device (or no priors)."""
        if self._table_host is None or index.device.type != 'cpu':
            return None
        return self._table_host[host_array(index)]

    def _needs_update(self, rows: Optional[np.ndarray]) -> bool:
        """Whether this batch's prototype update can change anything.

        ``'learnable'`` prototypes change in the update only when first
        seen. With the batch's row indices on the host, the host copy of
        ``proto_seen`` tells whether a noun of the batch is new; when none
        is, the update (about ten kernels) is skipped. Always True for
        ``'ema'``, under distributed training (the update's all-reduce
        must run on every rank, and another rank's batch may bring a new
        noun), for indices on the device (``rows`` None), and when the
        host copy is not known (then every step updates, as before).
        """
        if (self.prototype != 'learnable' or is_distributed()
                or self._seen_host is None or rows is None):
            return True
        present = rows.any(axis=0)
        if not (present & ~self._seen_host).any():
            return False
        self._seen_host |= present  # the update marks them seen
        return True

    # ----------------------------------------------------------- embedding
    def _refine(self, emb: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        """Cluster-aware residual refinement of one embedding.

        Args:
            emb (Tensor, optional): (..., D) embeddings.

        Returns:
            Tensor, optional: (..., D) ``emb + |emb| * W (a @ M)`` with
            ``a (..., K)`` the soft assignment to the normalised prototypes
            ``P (K, D)`` and ``M = P``, or ``M = P - mean_k P`` with
            ``refine_centered``; ``emb`` unchanged (the same object) when
            it is None, ``refine=False`` or under ``disable('osfcm')``.
        """
        if emb is None or not self.refine or not self.enabled('osfcm'):
            return emb
        protos = l2_normalize(self.prototypes, dim=1).to(emb.dtype)
        # |e| once, for both the normalisation and the residual's scale
        unit, scale = l2_normalize_with_norm(emb, dim=-1)
        assign = (unit @ protos.t() / self.temperature).softmax(dim=-1)
        mixed = protos
        if self.refine_centered:
            mixed = protos - protos.mean(dim=0, keepdim=True)
        return emb + scale * self.refine_proj(assign @ mixed)

    def embed(self, image_emb: Optional[torch.Tensor],
              text_emb: Optional[torch.Tensor]):
        """Cluster-aware residual refinement of both embeddings (identity at
        initialisation, with ``refine=False`` or ``disable('osfcm')``).

        Image and caption rows of the same width and dtype are refined in
        one pass (the refinement is row-wise).
        """
        if (image_emb is not None and text_emb is not None
                and image_emb.dim() == text_emb.dim() == 2
                and image_emb.dtype == text_emb.dtype
                and image_emb.shape[1] == text_emb.shape[1]
                and self.refine and self.enabled('osfcm')):
            both = self._refine(torch.cat([image_emb, text_emb]))
            return both[:len(image_emb)], both[len(image_emb):]
        return self._refine(image_emb), self._refine(text_emb)

    # --------------------------------------------------------------- losses
    def _cluster_loss(self, unit: torch.Tensor, target: torch.Tensor,
                      protos: torch.Tensor, weight: float,
                      num_valid: Optional[int] = None) -> torch.Tensor:
        """``weight`` times the mean soft cross-entropy of the rows with a
        non-empty target.

        Args:
            unit (Tensor): (B, D) L2-normalised embeddings.
            target (Tensor): (B, K) non-negative prior rows.
            protos (Tensor): (K, D) L2-normalised prototypes.
            weight (float): loss weight.
            num_valid (int, optional): the number of non-empty rows when
                the host knows it (counted on the device otherwise).

        Returns:
            Tensor: 0-d float32 loss.
        """
        # an empty row adds nothing to the sum: dividing the whole target
        # by the number of non-empty rows gives their mean
        if num_valid is not None:
            target = target * (weight / max(num_valid, 1))
        else:
            count = (target.sum(dim=1) > 0).sum(dtype=target.dtype)
            target = target * (weight / count.clamp_min(1))
        return scaled_soft_target_ce(unit, protos, 1.0 / self.temperature,
                                     target)

    @torch.no_grad()
    def _update_prototypes(self, unit: torch.Tensor,
                           prior: torch.Tensor) -> None:
        """First-seen initialisation (both modes) and EMA (``'ema'``).

        Args:
            unit (Tensor): (B, D) L2-normalised image embeddings.
            prior (Tensor): (B, K) prior rows (``unit``'s dtype).
        """
        sums = prior.t() @ unit.detach()  # (K, D)
        mass = prior.sum(dim=0)  # (K,)
        if is_distributed():  # one collective: sums and masses packed
            packed = torch.cat([sums, mass.unsqueeze(1)], dim=1)
            all_reduce(packed)
            sums, mass = packed[:, :-1], packed[:, -1]
        present = (mass > 0).unsqueeze(1)
        # the direction of the prior-weighted mean (the mass does not
        # change it)
        mean = F.normalize(sums, dim=1)
        old = self.prototypes.data.to(sums.dtype)
        seen = self.proto_seen.unsqueeze(1)
        if self.prototype == 'ema':
            m = self.ema_momentum
            upd = torch.where(seen,
                              F.normalize(m * old + (1 - m) * mean,
                                          dim=1), mean)
        else:
            upd = torch.where(seen, old, mean)
        self.prototypes.data.copy_(torch.where(present, upd, old))
        self.proto_seen |= present.squeeze(1)

    def loss(self,
             image_emb: torch.Tensor,
             text_emb: Optional[torch.Tensor],
             data_samples: Sequence,
             text_data: Optional[Dict[str, torch.Tensor]] = None
             ) -> Dict[str, torch.Tensor]:
        """Prototype clustering losses.

        Args:
            image_emb (Tensor): (B, D) image embeddings (one row per caption
                in training batches; repeated images are fine).
            text_emb (Tensor, optional): (B, D) caption embeddings, row-aligned
                with ``image_emb``.
            data_samples (list[DataSample]): B samples carrying ``img_path``
                (and ``text``, the caption, for caption targets).
            text_data (dict, optional): the batch's prepared fields (see
                :meth:`caption_data_preparer`): ``osfcm_prior_index`` (B,)
                and ``osfcm_caption_target`` (B, K), used instead of
                reading the samples.

        Returns:
            dict[str, Tensor]: ``loss_osfcm`` and, when ``text_weight > 0``
            and ``text_emb`` is given, ``loss_osfcm_txt``.
        """
        if image_emb.dim() != 2 or image_emb.size(1) != self.embed_dim:
            raise ValueError('ObjectSemanticClusterHead: image_emb must be '
                             f'(B, embed_dim={self.embed_dim}), got '
                             f'{tuple(image_emb.shape)}.')
        text_data = text_data or {}
        if 'osfcm_prior_index' in text_data and self.priors is not None:
            index = text_data['osfcm_prior_index']
        else:
            index = self._index_of(data_samples)
        prior = self._rows_of(index)
        # float32 from here (float64 for float64 embeddings)
        dtype = loss_dtype(image_emb)
        prior = prior.to(dtype)
        if prior.size(0) != image_emb.size(0):
            raise ValueError(f'ObjectSemanticClusterHead: {prior.size(0)} '
                             f'data samples for {image_emb.size(0)} '
                             'embeddings.')
        # the clustering runs in float32 also under AMP: its products are
        # small, and autocast would add a cast per operand
        with torch.autocast(image_emb.device.type, enabled=False):
            return self._losses(image_emb, text_emb, prior, data_samples,
                                text_data, index)

    def _losses(self, image_emb: torch.Tensor,
                text_emb: Optional[torch.Tensor], prior: torch.Tensor,
                data_samples: Sequence,
                text_data: Dict[str, torch.Tensor], index: torch.Tensor
                ) -> Dict[str, torch.Tensor]:
        """:meth:`loss` once the (B, K) ``prior`` rows (in the loss dtype)
        and their (B,) table ``index`` are known."""
        dtype = prior.dtype
        unit = l2_normalize(image_emb.to(dtype), dim=1)
        rows = self._host_rows(index)
        if self.training:
            if self._needs_update(rows):
                self._update_prototypes(unit, prior)
            self._count_step()
        ramp = 1.0 if self.warmup_iters == 0 else min(
            1.0,
            max(self._iter, 1) / self.warmup_iters)
        weight = self.loss_weight * ramp
        protos = l2_normalize(self.prototypes.to(dtype), dim=1)
        loss = self._cluster_loss(
            unit, prior, protos, weight,
            None if rows is None else int(rows.any(axis=1).sum()))
        if not (self.text_weight > 0 and text_emb is not None):
            return dict(loss_osfcm=loss)
        if text_emb.shape != image_emb.shape:
            raise ValueError('ObjectSemanticClusterHead: text_emb must '
                             'be row-aligned with image_emb, got '
                             f'{tuple(text_emb.shape)} vs '
                             f'{tuple(image_emb.shape)}.')
        target = prior
        if self.caption_targets and 'osfcm_caption_target' in text_data:
            target = text_data['osfcm_caption_target'].to(
                text_emb.device, dtype, non_blocking=True)
        elif self.caption_targets:
            target = self.caption_nouns(
                [_text_of(s) for s in data_samples],
                text_emb.device).to(dtype)
        text_unit = l2_normalize(text_emb.to(dtype), dim=1)
        return dict(
            loss_osfcm=loss,
            loss_osfcm_txt=self._cluster_loss(text_unit, target, protos,
                                              weight * self.text_weight))

    def extra_repr(self) -> str:
        return (f'num_prototypes={self.num_prototypes}, '
                f'prototype={self.prototype!r}, '
                f'temperature={self.temperature}, refine={self.refine}, '
                f'refine_centered={self.refine_centered}')
