# Copyright (c) rsitr_mm contributors. All rights reserved.
from typing import Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from ..utils.hf_utils import load_clip_tower, protect_hf_init


@MODELS.register_module()
class CLIPVisionBackbone(BaseModule):
    """CLIP ViT image tower wrapping ``transformers``' CLIP vision model.

    The weights come from a local ``transformers`` CLIP directory (for
    instance one written by ``tools/model_converters/clip_to_hf.py``) or are
    randomly initialised from ``config``. Nothing is downloaded.

    Output layout (a tuple of ``len(out_indices) + 1`` tensors):

    * ``outs[i]`` for each entry of ``out_indices``: the patch tokens of that
      transformer layer as a grid of shape (B, C, H / p, W / p), where C is
      the tower width (:attr:`out_channels`) and p the patch size; the CLS
      token is dropped. When the layer is the last one and ``final_norm`` is
      True, ``post_layernorm`` is applied to the tokens first (as
      mmpretrain's ViT does with ``final_norm``); for an earlier layer it is
      applied when ``hidden_norm`` is True.

    Which layer to read: CLIP's contrastive loss only sees the CLS token of
    the last layer, so the last layer's patch tokens are never trained
    (nothing reads them). The penultimate layer's patch tokens are trained
    (the last layer's attention reads them for CLS): necks such as DAPN
    should read ``out_indices=(-2, )`` with ``hidden_norm=True``.
    * ``outs[-1]``: the global embedding (B, :attr:`embed_dim`), equal to
      ``CLIPModel.get_image_features`` (``visual_projection(post_layernorm(
      CLS))``) when ``with_proj`` is True, and to ``post_layernorm(CLS)``
      (B, C) otherwise. It is not L2-normalised.

    Inputs are images already normalised by the data preprocessor (CLIP
    mean/std) of any height and width that are multiples of the patch size.
    The position embeddings are interpolated (bicubic, as ``transformers``
    does) when the size differs from the configured one; at the configured
    size they are used unchanged.

    Args:
        pretrained (str, optional): Local directory of a ``transformers``
            CLIP model (full ``CLIPModel`` or vision tower).
        config (dict, optional): ``CLIPConfig`` dict (with
            ``vision_config``) or ``CLIPVisionConfig`` fields, for random
            initialisation. Give exactly one of ``pretrained`` / ``config``.
        out_indices (Sequence[int]): Transformer layers whose patch grids are
            returned (negative indices count from the end). Use ``()`` to
            return only the global embedding. Defaults to ``(-1, )``.
        frozen_stages (int): ``-1`` freezes nothing, ``0`` freezes the
            embeddings and the pre-LayerNorm, ``k > 0`` also the first ``k``
            transformer layers. Defaults to -1.
        freeze (bool): Freeze the whole tower (and keep it in eval mode).
            Defaults to False.
        with_proj (bool): Apply ``visual_projection`` to the global
            embedding. Defaults to True.
        final_norm (bool): Apply ``post_layernorm`` to the last layer's patch
            tokens. Defaults to True.
        hidden_norm (bool): Apply ``post_layernorm`` to the patch tokens of
            the other ``out_indices`` layers too (standardised tokens at the
            scale of the final ones). Defaults to False.
        init_cfg (dict, optional): mmengine init config. Defaults to None.
    """

    def __init__(self,
                 pretrained: Optional[str] = None,
                 config: Optional[dict] = None,
                 out_indices: Union[int, Sequence[int]] = (-1, ),
                 frozen_stages: int = -1,
                 freeze: bool = False,
                 with_proj: bool = True,
                 final_norm: bool = True,
                 hidden_norm: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.model = load_clip_tower('vision', pretrained, config)
        protect_hf_init(self.model)
        vcfg = self.model.config
        self.num_layers = vcfg.num_hidden_layers
        self.patch_size = vcfg.patch_size
        self.out_channels = vcfg.hidden_size
        self.with_proj = with_proj
        self.final_norm = final_norm
        self.hidden_norm = hidden_norm
        self.embed_dim = vcfg.projection_dim if with_proj else vcfg.hidden_size

        if isinstance(out_indices, int):
            out_indices = [out_indices]
        indices = []
        for i in out_indices:
            j = i + self.num_layers if i < 0 else i
            if not 0 <= j < self.num_layers:
                raise ValueError(
                    f'out_indices entry {i} is out of range for a tower of '
                    f'{self.num_layers} layers.')
            indices.append(j)
        self.out_indices = tuple(indices)
        if not -1 <= frozen_stages <= self.num_layers:
            raise ValueError(f'frozen_stages must be in [-1, '
                             f'{self.num_layers}], got {frozen_stages}.')
        self.frozen_stages = self.num_layers if freeze else frozen_stages
        self.freeze = freeze
        self._freeze_stages()

    def _frozen_modules(self):
        if self.freeze:
            return [self.model]
        vm = self.model.vision_model
        mods = []
        if self.frozen_stages >= 0:
            mods += [vm.embeddings, vm.pre_layrnorm]
        mods += list(vm.encoder.layers[:max(self.frozen_stages, 0)])
        return mods

    def _freeze_stages(self) -> None:
        for m in self._frozen_modules():
            m.eval()
            for p in m.parameters():
                p.requires_grad = False

    def train(self, mode: bool = True) -> 'CLIPVisionBackbone':
        """Set train mode while keeping frozen parts in eval mode."""
        super().train(mode)
        self._freeze_stages()
        return self

    def init_weights(self) -> None:
        """Keep the loaded / constructed ``transformers`` weights; only an
        explicit ``init_cfg`` (e.g. ``Pretrained``) changes them."""
        super().init_weights()

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Encode images.

        Args:
            images (Tensor): (B, 3, H, W), H and W multiples of the patch
                size.

        Returns:
            tuple[Tensor]: The patch grids (B, C, H / p, W / p) of
            ``out_indices`` followed by the global embedding (B, embed_dim).
        """
        if images.dim() != 4:
            raise ValueError('CLIPVisionBackbone expects images of shape '
                             f'(B, 3, H, W), got {tuple(images.shape)}.')
        h, w = images.shape[-2:]
        p = self.patch_size
        if h % p or w % p:
            raise ValueError(f'Image size {h}x{w} is not a multiple of the '
                             f'patch size {p}.')
        vm = self.model.vision_model
        need_hidden = any(i != self.num_layers - 1 for i in self.out_indices)
        out = vm(
            pixel_values=images,
            output_hidden_states=need_hidden,
            interpolate_pos_encoding=True,
            return_dict=True)
        outs = []
        for i in self.out_indices:
            if i == self.num_layers - 1:
                tokens = out.last_hidden_state
                if self.final_norm:
                    tokens = vm.post_layernorm(tokens)
            else:
                # hidden_states[0] is the (pre-normed) embedding output.
                tokens = out.hidden_states[i + 1]
                if self.hidden_norm:
                    tokens = vm.post_layernorm(tokens)
            patches = tokens[:, 1:]
            outs.append(
                patches.transpose(1,
                                  2).reshape(patches.shape[0],
                                             patches.shape[2], h // p, w // p))
        pooled = out.pooler_output
        if self.with_proj:
            pooled = self.model.visual_projection(pooled)
        outs.append(pooled)
        return tuple(outs)
