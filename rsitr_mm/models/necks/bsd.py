# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Bidirectional Scale Decoupling (BSD), the image neck of SSJDN.

SSJDN (Zheng et al., ACM TOMM 2024, arXiv 2212.05752) describes BSD only in
words: per scale, a Salience Feature Extraction (SFE) unit finds the salient
features of that scale and a Salience-Guided Suppression (SGS) unit uses the
salience found at one scale to suppress those features at the other scales,
in both directions over the pyramid. No code or equations are public; the
equations below are this project's reading (see ``docs/methods/ssjdn.md``).

Notation for one chain over ``S`` scales visited in order ``k = 1..S``
(fine-to-coarse ``'f2c'`` visits the inputs in the given order, coarse-to-fine
``'c2f'`` in reverse):

* lateral projection: ``F_k = Conv1x1(X_k)``, ``(B, C, H_k, W_k)``;
* suppression input: ``Q_1 = 0``, ``Q_k = resize(A_{k-1}, H_k x W_k)``;
* SGS: ``F'_k = F_k * (1 - alpha * Q_k)`` (soft) or
  ``F'_k = F_k * (1 - alpha * T_k(Q_k))`` with ``T_k`` the 0/1 mask of the
  top ``topk_ratio`` share of positions of ``Q_k`` (topk);
* SFE: ``M_k = sigmoid(w_k * F'_k)`` (conv) or
  ``M_k = softmax_HW(w_k * F'_k / tau) / max(...)`` (softmax), in ``[0, 1]``;
  the scale's clue is ``f_k = sum_HW(F'_k * M_k) / (sum_HW(M_k) + eps)``;
* accumulation: ``A_k = max(Q_k, M_k)`` (``accumulate='max'``) or
  ``A_k = M_k`` (``accumulate='last'``).

All clues of all chains (``len(directions) * S`` vectors of width ``C``)
join a MAIN path, the plain average pooling of the deepest stage (the last
input, i.e. exactly the no-BSD model's feature)::

    out = avgpool(X_S) + clue_scale * W_c(fused) + b_c

with ``fused`` the concatenation of the clues (``concat``, ``W_c`` of shape
``(out, n * C)``) or ``sum_n softmax(w)_n f_n`` with learned scalars ``w``
(``weighted``). ``W_c, b_c`` start at zero: BSD starts as the identity of
plain pooling and ``W_c`` gets gradient from the first step (the earlier
design replaced the pooled stage by fresh convs and a new Linear; its
embedding started 3.6x smaller and far from the no-BSD model). The salience
convs start with a negative bias (``salience_bias``): a position is salient
only where the conv response overcomes it (``sigmoid(-3) = 0.05`` elsewhere),
so suppression starts near 5% instead of ~50% everywhere (which shrank whole
later scales by 31-52%) and grows only where the maps learn to peak.

Switches (:class:`SwitchableMixin`): ``disable('clues')`` returns the main
path only; ``disable('suppression')`` sets ``alpha = 0``;
``disable('salience')`` pools each scale with a plain average.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from mmpretrain.registry import MODELS
from ...utils.validation import check_values

from .bsd_units import SalienceUnitsMixin
from .switchable import SwitchableMixin

_DIRECTIONS = ('f2c', 'c2f')


@MODELS.register_module()
class BidirectionalScaleDecoupling(SwitchableMixin, SalienceUnitsMixin,
                                   BaseModule):
    """Bidirectional Scale Decoupling neck (SSJDN's BSD, our reading).

    Args:
        in_channels (Sequence[int]): Channels of each input scale, in the
            order the backbone returns them (finest first for mmpretrain's
            ResNet ``out_indices=(1, 2, 3)``).
        out_channels (int, optional): Width of the output; must equal
            ``in_channels[-1]`` (the main path is the pooled deepest stage).
            Defaults to ``in_channels[-1]``.
        channels (int): Common width ``C`` of the lateral 1x1 projections.
            Defaults to 256.
        salience (str): SFE form, ``'conv'`` (1x1 conv + sigmoid) or
            ``'softmax'`` (1x1 conv, spatial softmax, divided by its max).
            Defaults to ``'conv'``.
        suppression (str): SGS form, ``'soft'`` (multiply by
            ``1 - alpha * Q``) or ``'topk'`` (suppress the top
            ``topk_ratio`` positions of ``Q``). Defaults to ``'soft'``.
        topk_ratio (float): Share of positions suppressed by ``'topk'``, in
            ``(0, 1]``. Defaults to 0.3.
        suppress_strength (float): ``alpha`` in ``[0, 1]``; 0 turns SGS off.
            Defaults to 1.0.
        accumulate (str): ``'max'`` carries the element-wise max of all
            previous salience maps down the chain, ``'last'`` only the
            previous scale's map. Defaults to ``'max'``.
        directions (Sequence[str]): Any non-empty subset of
            ``('f2c', 'c2f')``. Defaults to both.
        fusion (str): ``'concat'`` or ``'weighted'``. Defaults to
            ``'concat'``.
        pool (str): ``'weighted_avg'`` (salience-weighted average, the SFE
            clue) or ``'avg'`` (plain average of the suppressed map, an
            ablation without SFE pooling; then the maps act only through
            suppression, so it needs ``suppression='soft'``, ``alpha > 0``
            and ``detach_suppression=False``, and the last scale of each
            chain has no salience conv). Defaults to ``'weighted_avg'``.
        softmax_temperature (float): ``tau`` of the ``'softmax'`` salience.
            Defaults to 1.0.
        detach_suppression (bool, optional): Whether ``Q_k`` is detached, so
            that each SFE unit learns only from its own clue. Defaults to
            True with ``pool='weighted_avg'``, False with ``'avg'``.
        salience_bias (float): Initial bias of the salience convs.
            Defaults to -3.0.
        clue_scale (float): Fixed gate of the clue branch. Defaults to 1.
        main (str): The main path the clues are added to: ``'pooled'`` (the
            average-pooled deepest input grid, for CNN backbones) or
            ``'global'`` (the backbone's own (B, D) global embedding that
            ``CLIPVisionBackbone`` appends to its grids, so the neck starts
            as exactly plain CLIP and every tower parameter keeps its
            gradient); with ``'global'`` give ``out_channels=D``. Defaults
            to ``'pooled'``.
        decouple (bool): Run the salience decoupling (SFE + SGS chains).
            ``False`` builds the **control** of the BSD ablation (our
            addition for the evidence, not a model of the paper): the same
            lateral convs, the same clue count and the same zero-initialised
            fusion, but every clue is the plain average of its scale's
            lateral features (no salience map, no suppression, no salience
            convs). Comparing BSD with this control isolates what salience
            extraction and suppression add beyond "more layers through a new
            branch". Defaults to True.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 out_channels: Optional[int] = None,
                 channels: int = 256,
                 salience: str = 'conv',
                 suppression: str = 'soft',
                 topk_ratio: float = 0.3,
                 suppress_strength: float = 1.0,
                 accumulate: str = 'max',
                 directions: Sequence[str] = ('f2c', 'c2f'),
                 fusion: str = 'concat',
                 pool: str = 'weighted_avg',
                 softmax_temperature: float = 1.0,
                 detach_suppression: Optional[bool] = None,
                 salience_bias: float = -3.0,
                 clue_scale: float = 1.0,
                 main: str = 'pooled',
                 decouple: bool = True,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        check_values(
            'BidirectionalScaleDecoupling',
            out_channels=(out_channels, 'int>=1'),
            channels=(channels, 'int>=1'),
            topk_ratio=(topk_ratio, '(0,1]'),
            suppress_strength=(suppress_strength, '[0,1]'),
            softmax_temperature=(softmax_temperature, '>0'))
        super().__init__(init_cfg=init_cfg)
        name = 'BidirectionalScaleDecoupling'
        if isinstance(in_channels, int):
            in_channels = [in_channels]
        in_channels = list(in_channels)
        if len(in_channels) == 0 or not all(
                isinstance(c, int) and c > 0 for c in in_channels):
            raise ValueError(f'{name}: `in_channels` must be a non-empty list '
                             f'of positive ints, got {in_channels}.')
        if isinstance(directions, str):
            directions = (directions, )
        directions = tuple(directions)
        if (len(directions) == 0 or len(set(directions)) != len(directions)
                or any(d not in _DIRECTIONS for d in directions)):
            raise ValueError(f'{name}: `directions` must be a non-empty '
                             f'subset of {_DIRECTIONS}, got {directions}.')
        choices = dict(
            salience=(salience, ('conv', 'softmax')),
            suppression=(suppression, ('soft', 'topk')),
            accumulate=(accumulate, ('max', 'last')),
            fusion=(fusion, ('concat', 'weighted')),
            pool=(pool, ('weighted_avg', 'avg')))
        for field, (value, allowed) in choices.items():
            if value not in allowed:
                raise ValueError(f'{name}: `{field}` must be one of '
                                 f'{allowed}, got {value!r}.')
        if not 0 < topk_ratio <= 1:
            raise ValueError(f'{name}: `topk_ratio` must be in (0, 1], '
                             f'got {topk_ratio}.')
        if not 0 <= suppress_strength <= 1:
            raise ValueError(f'{name}: `suppress_strength` must be in '
                             f'[0, 1], got {suppress_strength}.')
        if main not in ('pooled', 'global'):
            raise ValueError(f"{name}: `main` must be 'pooled' or 'global', "
                             f'got {main!r}.')
        if main == 'global' and out_channels is None:
            raise ValueError(f"{name}: main='global' needs `out_channels` "
                             '(the width D of the backbone\'s global '
                             'embedding, e.g. 512 for CLIP ViT-B/32).')
        if (main == 'pooled' and out_channels is not None
                and out_channels != in_channels[-1]):
            raise ValueError(f'{name}: `out_channels` must equal '
                             f'in_channels[-1]={in_channels[-1]} (the main '
                             'path is the pooled deepest stage; project '
                             f'with the retriever), got {out_channels}.')
        if detach_suppression is None:
            detach_suppression = pool == 'weighted_avg'
        if pool == 'avg' and (suppression != 'soft' or suppress_strength <= 0
                              or detach_suppression):
            raise ValueError(
                f'{name}: with pool="avg" the salience maps act only through '
                'suppression, which needs suppression="soft", '
                'suppress_strength > 0 and detach_suppression=False (else '
                'the salience convs get no gradient).')
        if softmax_temperature <= 0:
            raise ValueError(f'{name}: `softmax_temperature` must be > 0, '
                             f'got {softmax_temperature}.')

        self.in_channels = in_channels
        self.num_scales = len(in_channels)
        self.main = main
        self.out_channels = (
            out_channels if main == 'global' else in_channels[-1])
        self.channels = channels
        self.salience = salience
        self.suppression = suppression
        self.topk_ratio = topk_ratio
        self.suppress_strength = suppress_strength
        self.accumulate = accumulate
        self.directions = directions
        self.fusion = fusion
        self.pool = pool
        self.softmax_temperature = softmax_temperature
        self.detach_suppression = detach_suppression
        self.eps = 1e-6
        self.salience_bias = float(salience_bias)
        self.clue_scale = float(clue_scale)
        if not isinstance(decouple, bool):
            raise ValueError(f'{name}: `decouple` must be a bool, got '
                             f'{decouple!r}.')
        self.decouple = decouple

        # Lateral projections are shared by the chains; each chain has its
        # own SFE scoring conv per scale (its inputs differ after SGS).
        self.lateral_convs = nn.ModuleList(
            nn.Conv2d(c, self.channels, kernel_size=1) for c in in_channels)
        # keys '<direction>_<input index>'; with pool='avg' the last scale
        # of a chain has no conv (its map would feed nothing)
        # a softmax over positions ignores a constant: no bias there (it
        # would be a parameter without gradient)
        self.salience_convs = nn.ModuleDict({
            f'{d}_{i}':
            nn.Conv2d(self.channels, 1, kernel_size=1,
                      bias=salience == 'conv')
            for d in directions
            for i in self._order(d)
            if decouple and (pool == 'weighted_avg' or i != self._order(d)[-1])
        })
        num_clues = len(directions) * self.num_scales
        if fusion == 'concat':
            self.fuse = nn.Linear(num_clues * self.channels, self.out_channels)
        else:
            self.clue_logits = nn.Parameter(torch.zeros(num_clues))
            self.fuse = nn.Linear(self.channels, self.out_channels)
        self._init_branch()

    SWITCHES = ('clues', 'suppression', 'salience')

    def _order(self, direction: str) -> List[int]:
        order = list(range(self.num_scales))
        return order[::-1] if direction == 'c2f' else order

    def _init_branch(self) -> None:
        nn.init.zeros_(self.fuse.weight)
        nn.init.zeros_(self.fuse.bias)
        for conv in self.salience_convs.values():
            if conv.bias is not None:
                nn.init.constant_(conv.bias, self.salience_bias)

    def init_weights(self) -> None:
        """Initialise; the clue projection restarts at zero and the
        salience biases at ``salience_bias`` whatever ``init_cfg`` says."""
        super().init_weights()
        self._init_branch()

    # --------------------------------------------------------------- chains
    def _run_chain(self, feats: List[torch.Tensor], direction: str):
        """Run one SGS/SFE chain; returns clues and maps in INPUT order."""
        order = self._order(direction)
        if not self.decouple:  # control: plain per-scale pooling
            clues = [f.mean(dim=(2, 3)) for f in feats]
            return (clues, [f.new_ones(f[:, :1].shape) for f in feats],
                    [f.new_zeros(f[:, :1].shape) for f in feats])
        clues: List[Optional[torch.Tensor]] = [None] * self.num_scales
        sal_maps: List[Optional[torch.Tensor]] = [None] * self.num_scales
        sup_maps: List[Optional[torch.Tensor]] = [None] * self.num_scales
        acc = None  # accumulated salience at the previous scale's size
        for idx in order:
            feat = feats[idx]
            q = None
            if acc is not None:
                q = F.interpolate(
                    acc,
                    size=feat.shape[-2:],
                    mode='bilinear',
                    align_corners=False).clamp(0.0, 1.0)
                if self.detach_suppression:
                    q = q.detach()
            feat_s, amount = self._suppress(feat, q)
            key = f'{direction}_{idx}'
            if key not in self.salience_convs:  # last scale, pool='avg'
                clues[idx] = feat_s.mean(dim=(2, 3))
                sal_maps[idx] = feat_s.new_ones(amount.shape)
                sup_maps[idx] = amount
                break
            sal = self._salience_map(feat_s, self.salience_convs[key])
            clues[idx] = self._pool(feat_s, sal)
            sal_maps[idx] = sal
            sup_maps[idx] = amount
            if self.accumulate == 'max' and q is not None:
                acc = torch.maximum(q, sal)
            else:
                acc = sal
        return clues, sal_maps, sup_maps

    def _main_path(self, inputs, xs: List[torch.Tensor]) -> torch.Tensor:
        """(B, out_channels) main path: pooled deepest grid or the
        backbone's global embedding."""
        if self.main == 'pooled':
            return xs[-1].mean(dim=(2, 3))
        glob = [x for x in inputs if x.dim() == 2] if isinstance(
            inputs, (tuple, list)) else []
        if len(glob) != 1 or glob[0].shape[1] != self.out_channels:
            raise ValueError(
                "BidirectionalScaleDecoupling: main='global' needs exactly "
                f'one (B, {self.out_channels}) global embedding among the '
                f'inputs (e.g. CLIPVisionBackbone), got shapes '
                f'{[tuple(x.shape) for x in inputs]}.')
        return glob[0]

    def forward_with_maps(
        self, inputs: Sequence[torch.Tensor]
    ) -> Tuple[torch.Tensor, Dict[str, Dict[str, List[torch.Tensor]]]]:
        """Forward and also return the explicit maps, for visualisation.

        Args:
            inputs (Sequence[Tensor]): ``S`` maps ``(B, C_s, H_s, W_s)``.

        Returns:
            tuple: ``feat`` ``(B, out_channels)`` and (empty with the clues
            switched off)
            ``dict(salience={dir: [M_s]}, suppression={dir: [alpha*Q_s]})``
            where every map is ``(B, 1, H_s, W_s)`` in ``[0, 1]``, listed in
            input order (index ``s`` is ``inputs[s]``'s scale) for each
            direction in ``directions``.
        """
        xs = self._check_inputs(inputs)
        main = self._main_path(inputs, xs)
        maps = dict(salience={}, suppression={})
        if not self.enabled('clues'):
            return main, maps
        feats = [conv(x) for conv, x in zip(self.lateral_convs, xs)]
        all_clues = []
        for d in self.directions:
            clues, sal, sup = self._run_chain(feats, d)
            all_clues.extend(clues)
            maps['salience'][d] = sal
            maps['suppression'][d] = sup
        if self.fusion == 'concat':
            fused = torch.cat(all_clues, dim=1)
        else:
            weights = self.clue_logits.softmax(dim=0)
            fused = sum(w * c for w, c in zip(weights, all_clues))
        return main + self.clue_scale * self.fuse(fused), maps

    def forward(self,
                inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor]:
        """Fuse the per-scale clues of all chains.

        Args:
            inputs (Sequence[Tensor]): ``S`` maps ``(B, C_s, H_s, W_s)``.

        Returns:
            tuple[Tensor]: ``(feat, )`` with ``feat`` ``(B, out_channels)``
            (not normalised), a 1-tuple as mmpretrain necks return, so the
            neck drops into an ``ImageClassifier`` as well as into the
            retriever.
        """
        return (self.forward_with_maps(inputs)[0], )
