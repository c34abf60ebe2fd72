# Copyright (c) rsitr_mm contributors. All rights reserved.
"""DAPN: the Dual-Attention Perception Network of OSDPM (our reading).

The paper describes two attentions on CLIP's image features: a
spatial-channel collaborative attention for global context, and an adaptive
salient-region object attention that aggregates multi-scale region features
with dynamic weights. No code was released; the equations below are ours and
are documented in ``docs/methods/osdpm.md``.
"""
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from mmpretrain.registry import MODELS
from ...utils.validation import check_values

from .region_pooling import _mlp, _region_pool_matrix  # noqa: F401
from .switchable import SwitchableMixin

_FUSIONS = ('residual', 'sum', 'replace')
_BRANCHES = ('context', 'region')


@MODELS.register_module()
class DualAttentionPerception(SwitchableMixin, BaseModule):
    """Dual-attention perception neck (DAPN) of OSDPM.

    Input is the tuple of the CLIP vision tower: its first element is the
    patch grid ``(B, C, H, W)`` and its last the projected global embedding
    ``(B, D)``.

    **(a) Spatial-channel collaborative attention** (one refinement round;
    ``X`` is the grid flattened to ``(B, C, N)``, ``N = H * W``)::

        c0  = mean_n X                                   # (B, C)
        ac0 = sigmoid(MLP_c(c0))                         # channel weights
        as  = softmax_n(Conv_s(X * ac0))                 # (B, N) spatial map
        c1  = sum_n as[n] * X[:, :, n]                   # attended pooling
        ac  = sigmoid(MLP_c(c1))                         # refined channels
        g   = ac * c1                                    # (B, C) context

    The spatial map is computed from channel-reweighted features and the
    refined channel weights from spatially attended pooling, so each attention
    informs the other. ``MLP_c`` is shared by both rounds. With
    ``collaborative=False`` (ablation) ``as`` is computed from ``X`` and
    ``ac = ac0``, i.e. the two attentions are independent.

    **(b) Adaptive salient-region object attention.** The attended grid
    ``Xa = X * ac * (N * as)`` (the spatial factor has mean 1 over the grid)
    is average-pooled for every scale ``s`` into ``s x s`` regions
    ``R_s (B, s*s, C)``; a per-scale MLP scores them and
    ``w_s = softmax(score_s(R_s))`` over the regions of that scale gives
    ``f_s = sum_r w_s[r] R_s[r]``. Dynamic scale weights
    ``beta = softmax(MLP_g(g))`` (B, S) predicted from the content give the
    region feature ``r = sum_s beta_s f_s``.

    **(c) Fusion.** ``z = W [LN_g(g); LN_r(r)] + b`` (B, D), one LayerNorm
    per branch (so a branch switched off removes exactly its term), then

    - ``'residual'``: ``out = global + gate * z`` with a FIXED ``gate``
      (``residual_scale``, 1 by default) and ``W, b`` zero-initialised: the
      neck starts as the identity on CLIP's global embedding, and ``W``
      receives the gradient ``gate * dL/dout (x) LN(.)`` from the first step
      (the earlier learnable gate started at 0 and, under weight decay, never
      moved: DAPN stayed ~1% of the embedding).
    - ``'sum'``: ``out = global + z`` with the default (non-zero) init.
    - ``'replace'``: ``out = z`` (the global embedding is ignored). The
      one fusion for a backbone without a global token (a CNN, e.g. DAPN
      as the neck of an mmpretrain ``ImageClassifier``).

    **Precision.** The neck computes in its parameters' dtype with autocast
    off inside (float32 under AMP; ``docs/architecture.md``): the inputs
    are cast once instead of every weight and activation of its matmuls.

    **Switches** (:class:`SwitchableMixin`): ``disable('dapn')`` returns the
    global embedding unchanged (not with ``'replace'``);
    ``disable('context')`` / ``disable('region')`` drop that branch's term.

    Args:
        in_channels (int): Channels ``C`` of the patch grid (the vision
            transformer width, 768 for ViT-B). Defaults to 768.
        embed_dim (int): Dimension ``D`` of the global embedding and of the
            output. Defaults to 512.
        region_scales (Sequence[int]): Region grid sizes ``s``. Defaults to
            ``(1, 2, 4)``.
        reduction (int): Hidden-width reduction of the attention MLPs.
            Defaults to 4.
        fusion (str): ``'residual'``, ``'sum'`` or ``'replace'``. Defaults to
            ``'residual'``.
        residual_scale (float): Fixed gate of ``'residual'``. Defaults to 1.
        branches (Sequence[str]): Features fused into ``z``: any non-empty
            subset of ``('context', 'region')``. Defaults to both. Without
            ``'region'`` the region attention is not built at all.
        collaborative (bool): Let the spatial and channel attentions inform
            each other (see (a)). Defaults to True.
        init_cfg (dict, optional): Initialisation config.
    """

    SWITCHES = ('dapn', ) + _BRANCHES

    def __init__(self,
                 in_channels: int = 768,
                 embed_dim: int = 512,
                 region_scales: Sequence[int] = (1, 2, 4),
                 reduction: int = 4,
                 fusion: str = 'residual',
                 residual_scale: float = 1.0,
                 branches: Sequence[str] = _BRANCHES,
                 collaborative: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        check_values(
            'DualAttentionPerception',
            in_channels=(in_channels, 'int>=1'),
            embed_dim=(embed_dim, 'int>=1'), reduction=(reduction, 'int>=1'),
            residual_scale=(residual_scale, 'finite'))
        super().__init__(init_cfg=init_cfg)
        if fusion not in _FUSIONS:
            raise ValueError(f'DualAttentionPerception: fusion must be one of '
                             f'{_FUSIONS}, got {fusion!r}.')
        branches = tuple(branches)
        if not branches or any(b not in _BRANCHES for b in branches):
            raise ValueError('DualAttentionPerception: branches must be a '
                             f'non-empty subset of {_BRANCHES}, got '
                             f'{branches!r}.')
        region_scales = tuple(int(s) for s in region_scales)
        if not region_scales or min(region_scales) < 1:
            raise ValueError('DualAttentionPerception: region_scales must be '
                             f'positive integers, got {region_scales!r}.')
        if reduction < 1:
            raise ValueError('DualAttentionPerception: reduction must be '
                             f'>= 1, got {reduction}.')
        self.in_channels = in_channels
        self.embed_dim = embed_dim
        self.region_scales = region_scales
        self.fusion = fusion
        self.branches = branches
        self.collaborative = collaborative
        hidden = max(in_channels // reduction, 1)

        # (a) spatial-channel collaborative attention
        self.channel_mlp = _mlp(in_channels, hidden, in_channels)
        self.spatial_conv = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 1, 1))
        # (b) adaptive salient-region object attention
        # (not built without the region branch: no unused parameters in DDP)
        self.use_region = 'region' in branches
        self.region_scorers = nn.ModuleList(
            [_mlp(in_channels, hidden, 1)
             for _ in region_scales]) if self.use_region else None
        self.scale_gate = _mlp(in_channels, hidden,
                               len(region_scales)) if self.use_region else None
        # (c) fusion
        self.fuse_norms = nn.ModuleDict(
            {b: nn.LayerNorm(in_channels)
             for b in branches})
        self.fuse_proj = nn.Linear(in_channels * len(branches), embed_dim)
        self.residual_scale = float(residual_scale)
        self._zero_proj()
        # (H, W, device, dtype) -> pooling constants (:meth:`_pool_all`);
        # kept out of the state dict and built once per device/dtype
        self._pool_cache: Dict[tuple, Dict[str, torch.Tensor]] = {}

    def _zero_proj(self) -> None:
        if self.fusion == 'residual':
            nn.init.zeros_(self.fuse_proj.weight)
            nn.init.zeros_(self.fuse_proj.bias)

    def init_weights(self) -> None:
        """Initialise; the residual projection always restarts at zero so
        the neck is the identity at initialisation whatever ``init_cfg``
        says."""
        super().init_weights()
        self._zero_proj()

    def _pool_all(self, height: int, width: int,
                  ref: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Constants of the batched region attention, built once per grid
        size, device and dtype: ``pool`` (R, N) every scale's pooling
        matrix stacked (R = sum_s s*s), ``pool_n`` = ``N * pool`` (the
        spatial map's mean-1 factor folded in) and ``mask`` (S, R) 0 on a
        scale's own regions and -inf elsewhere."""
        key = ('all', height, width, ref.device, ref.dtype)
        hit = self._pool_cache.get(key)
        if hit is None:
            mats = [
                _region_pool_matrix(height, width, s).to(ref)
                for s in self.region_scales
            ]
            scale_of = torch.cat([
                torch.full((m.shape[0], ), i, dtype=torch.long)
                for i, m in enumerate(mats)
            ]).to(ref.device)
            rows = torch.arange(len(scale_of), device=ref.device)
            mask = torch.full((len(mats), len(scale_of)), float('-inf'),
                              device=ref.device, dtype=ref.dtype)
            mask[scale_of, rows] = 0.0
            pool = torch.cat(mats)
            hit = dict(pool=pool, pool_n=pool * (height * width), mask=mask)
            self._pool_cache[key] = hit
        return hit

    # ------------------------------------------------------------------
    def _parse_inputs(
        self, inputs: Union[torch.Tensor, Sequence[torch.Tensor]]
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        if isinstance(inputs, torch.Tensor):
            inputs = (inputs, )
        if not isinstance(inputs, (tuple, list)) or not inputs:
            raise TypeError('DualAttentionPerception expects a tuple '
                            '(grid (B, C, H, W), ..., global (B, D)), got '
                            f'{type(inputs).__name__}.')
        grid = inputs[0]
        if grid.dim() != 4 or grid.size(1) != self.in_channels:
            raise ValueError(
                'DualAttentionPerception: inputs[0] must be the patch grid '
                f'(B, in_channels={self.in_channels}, H, W), got shape '
                f'{tuple(grid.shape)}.')
        glob = inputs[-1] if len(inputs) > 1 else None
        if self.fusion != 'replace':
            if glob is None or glob.dim() != 2 or \
                    glob.size(1) != self.embed_dim or \
                    glob.size(0) != grid.size(0):
                shape = None if glob is None else tuple(glob.shape)
                raise ValueError(
                    'DualAttentionPerception: inputs[-1] must be the global '
                    f'embedding (B={grid.size(0)}, embed_dim='
                    f'{self.embed_dim}) for fusion={self.fusion!r}, got '
                    f'{shape}. A backbone without a global token (a CNN, '
                    "e.g. in an ImageClassifier) needs fusion='replace' "
                    '(the output is the attended grid alone).')
        return grid, glob

    def _attend(self, grid: torch.Tensor,
                maps: bool = True) -> Dict[str, torch.Tensor]:
        """Run both attentions; returns features and (with ``maps``) the
        region maps, which no loss reads."""
        B, C, H, W = grid.shape
        N = H * W
        x = grid.flatten(2)  # (B, C, N)

        # (a) spatial-channel collaborative attention
        ac0 = torch.sigmoid(self.channel_mlp(x.mean(dim=2)))  # (B, C)
        spatial_in = grid * ac0[:, :, None, None] \
            if self.collaborative else grid
        a_s = self.spatial_conv(spatial_in).flatten(1).softmax(dim=1)
        c1 = torch.bmm(x, a_s.unsqueeze(2)).squeeze(2)  # (B, C)
        a_c = torch.sigmoid(self.channel_mlp(c1)) \
            if self.collaborative else ac0
        context = a_c * c1

        out = dict(
            context=context,
            spatial=a_s.view(B, 1, H, W),
            channel=a_c,
            regions={},
            scale_weights=None)
        if not self.use_region:
            return out

        # (b) adaptive salient-region object attention, all scales at once.
        # Region r of the attended grid Xa = X * ac * (N * as) is
        #   R[b, r, c] = ac[b, c] * sum_n N pool[r, n] as[b, n] X[b, c, n]
        const = self._pool_all(H, W, x)
        S, R = const['mask'].shape
        regions = torch.bmm(const['pool_n'] * a_s.unsqueeze(1),
                            x.transpose(1, 2)) * a_c.unsqueeze(1)  # (B, R, C)
        # every scale's scorer on every region: the first layers as one
        # matmul, the second as a product with the stacked weights
        first = [sc[0] for sc in self.region_scorers]
        second = [sc[2] for sc in self.region_scorers]
        hidden = F.linear(regions.view(B * R, C),
                          torch.cat([m.weight for m in first]),
                          torch.cat([m.bias for m in first])).relu()
        w2 = torch.cat([m.weight for m in second])  # (S, hidden)
        score = (hidden.view(B, R, S, -1) * w2).sum(-1) + torch.cat(
            [m.bias for m in second])  # (B, R, S): scorer s on region r
        # softmax over the regions of each scale (scorer s on its own
        # regions; the others masked out): (B, S, R)
        w = (score.transpose(1, 2) + const['mask']).softmax(dim=2)
        scale_feats = torch.bmm(w, regions)  # (B, S, C)
        scale_w = self.scale_gate(context).softmax(dim=1)  # (B, S)
        region = torch.bmm(scale_w.unsqueeze(1), scale_feats).squeeze(1)
        region_maps = {}
        if maps:
            # each grid cell's weight in f_s (sums to 1 over the grid)
            cell_w = (w @ const['pool']).view(B, S, H, W)
            region_maps = {
                scale: cell_w[:, i:i + 1]
                for i, scale in enumerate(self.region_scales)
            }
        out.update(region=region, regions=region_maps, scale_weights=scale_w)
        return out

    def _fuse(self, out: Dict[str, torch.Tensor],
              glob: Optional[torch.Tensor]) -> torch.Tensor:
        if not self.enabled('dapn'):
            if self.fusion == 'replace':
                raise RuntimeError('DualAttentionPerception: "dapn" cannot '
                                   'be switched off with fusion="replace".')
            return glob
        parts = [
            self.fuse_norms[b](out[b])
            if self.enabled(b) else out[b].new_zeros(out[b].shape)
            for b in self.branches
        ]
        z = self.fuse_proj(torch.cat(parts, dim=1))
        if self.fusion == 'residual':
            if self.residual_scale == 1.0:
                return glob + z
            return glob + self.residual_scale * z
        if self.fusion == 'sum':
            return glob + z
        return z

    def forward_with_maps(
        self, inputs: Union[torch.Tensor, Sequence[torch.Tensor]]
    ) -> Tuple[torch.Tensor, dict]:
        """Forward and return the attention maps.

        Args:
            inputs (tuple[Tensor]): ``(grid (B, C, H, W), ...,
                global (B, D))``.

        Returns:
            tuple: ``feat`` (B, D) and a dict with ``spatial`` (B, 1, H, W)
            (softmax over the grid), ``channel`` (B, C) (sigmoid weights),
            ``regions`` ``{scale: (B, 1, H, W)}`` (each cell's weight in that
            scale's region feature; sums to 1 over the grid) and
            ``scale_weights`` (B, num_scales) (softmax over scales). Without
            the region branch, ``regions`` is empty and ``scale_weights``
            is None.
        """
        feat, out = self._run(inputs, maps=True)
        maps = dict(
            spatial=out['spatial'],
            channel=out['channel'],
            regions=out['regions'],
            scale_weights=out['scale_weights'])
        return feat, maps

    def forward(
        self, inputs: Union[torch.Tensor, Sequence[torch.Tensor]]
    ) -> Tuple[torch.Tensor]:
        """Forward.

        Args:
            inputs (tuple[Tensor]): ``(grid (B, C, H, W), ...,
                global (B, D))``.

        Returns:
            tuple[Tensor]: ``(feat, )`` with ``feat`` (B, embed_dim), a
            1-tuple as mmpretrain necks return, so the neck drops into an
            ``ImageClassifier`` as well as into the retriever.
        """
        return (self._run(inputs, maps=False)[0], )

    def _run(self, inputs: Union[torch.Tensor, Sequence[torch.Tensor]],
             maps: bool) -> Tuple[torch.Tensor, dict]:
        """Both attentions and the fusion, in the dtype of the neck's
        parameters (float32 under AMP: the neck's products are small, and
        autocast would cast every weight and activation of its ~20 matmuls
        and norms on every step)."""
        grid, glob = self._parse_inputs(inputs)
        dtype = self.fuse_proj.weight.dtype
        with torch.autocast(grid.device.type, enabled=False):
            out = self._attend(grid.to(dtype), maps)
            feat = self._fuse(out, None if glob is None else glob.to(dtype))
        return feat, out
