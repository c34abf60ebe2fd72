# Copyright (c) rsitr_mm contributors. All rights reserved.
"""LoRA on one encoder tower of a composed retriever.

mmpretrain's :class:`~mmpretrain.models.peft.LoRAModel` is written for a
model that *is* the wrapped module. Inside our
:class:`~rsitr_mm.models.retrievers.DualEncoderRetriever` three of its
behaviours break (see ``docs/peft.md``):

* its ``state_dict`` hook drops every key without ``.lora_`` from the whole
  destination dict, which is shared by the entire model: a checkpoint of the
  retriever would lose the DAPN neck, the OSFCM head, the logit scale and the
  other tower (checked by ``tests/test_models/test_peft``);
* its load post-hook hides *every* missing / unexpected non-LoRA key of the
  whole model, so a genuinely incomplete checkpoint would load silently;
* its attribute delegation uses ``module.__getattribute__``, which cannot
  reach sub-modules (``encoder.model``) or parameters of the wrapped tower.

:class:`LoRATower` reuses ``LoRAModel``'s layer matching, replacement by
mmpretrain's ``LoRALinear`` and freezing unchanged, and fixes those three.
"""
import re
from typing import Any, List, Optional, Sequence

import torch.nn as nn
from mmpretrain.models.peft import LoRAModel
from mmpretrain.models.peft.lora import LoRALinear
from mmpretrain.registry import MODELS


def _matches(pattern: str, name: str) -> bool:
    """``LoRAModel``'s target rule: regular expression or name suffix."""
    return bool(re.fullmatch(pattern, name)) or name.endswith(pattern)


@MODELS.register_module()
class LoRATower(LoRAModel):
    """Low-rank adapters (LoRA) on the Linear layers of one encoder tower.

    The wrapped tower (``module``) is built, initialised, and every Linear
    layer whose name matches a ``targets`` entry is replaced by mmpretrain's
    ``LoRALinear``: ``y = W0 x + B A x * alpha / rank`` with ``B = 0`` at
    start, so the wrapped tower computes exactly what the plain tower does
    until the first update. Every tower parameter except the LoRA matrices
    (and those matching ``extra_trainable``) is frozen; modules outside the
    tower (necks, heads, projections, the logit scale) are not touched.

    The state dict is the ordinary full one: frozen base weights are saved
    under ``module.<name>.original_layer.weight`` next to ``lora_down`` /
    ``lora_up``, so a checkpoint loads strictly into the same config and
    ``tools/test.py`` needs nothing else. A checkpoint of the *unwrapped*
    model (keys ``module``-less, e.g. from full fine-tuning with the same
    tower) also loads: its ``<layer>.weight`` keys are mapped onto
    ``original_layer`` and the LoRA matrices keep their initial values.

    Attributes the retriever reads from an encoder (``out_channels``,
    ``embed_dim``, ``tokenize``, ``model``...) are forwarded to the tower.

    Args:
        module (dict): Config of the tower, e.g.
            ``dict(type='CLIPVisionBackbone', pretrained=...)``.
        alpha (float): LoRA scale numerator. Defaults to 1.
        rank (int): LoRA rank (> 0).
        drop_rate (float): Dropout on the LoRA branch input. Defaults to 0.
        targets (Sequence[dict]): Layers to adapt, each
            ``dict(type=PATTERN)`` with optional ``alpha`` / ``rank`` /
            ``drop_rate``; ``PATTERN`` is a regular expression matching the
            full sub-module name or a name suffix (``'q_proj'``).
        extra_trainable (Sequence[str]): Patterns (same rule, on parameter
            names of the tower) of base parameters left trainable, e.g.
            ``['visual_projection.weight']``. Defaults to none.
    """

    def __init__(
        self,
        module: dict,
        alpha: float = 1,
        rank: int = 0,
        drop_rate: float = 0.,
        targets: Sequence[dict] = (),
        extra_trainable: Sequence[str] = ()
    ) -> None:
        where = f'LoRATower(module={module.get("type", module)!r})' \
            if isinstance(module, dict) else 'LoRATower'
        targets = list(targets or [])
        if not targets:
            raise ValueError(f'{where}: `targets` is empty; give e.g. '
                             "[dict(type='q_proj'), dict(type='v_proj')].")
        for t in targets:
            if not isinstance(t, dict) or not isinstance(t.get('type'), str):
                raise ValueError(
                    f'{where}: every `targets` entry must be a dict with a '
                    f"'type' pattern (regex or name suffix), got {t!r}.")
            r = t.get('rank', rank)
            if not isinstance(r, int) or r <= 0:
                raise ValueError(
                    f'{where}: LoRA `rank` must be a positive int, got '
                    f'{r!r} (target {t["type"]!r}).')
        super().__init__(
            module=module,
            alpha=alpha,
            rank=rank,
            drop_rate=drop_rate,
            targets=targets)
        self.extra_trainable = list(extra_trainable)
        for pattern in self.extra_trainable:
            hits = [(n, p) for n, p in self.module.named_parameters()
                    if _matches(pattern, n)]
            if not hits:
                raise ValueError(
                    f'{where}: extra_trainable pattern {pattern!r} matches '
                    'no parameter of the tower.')
            for _, p in hits:
                p.requires_grad = True
        self.lora_layers: List[str] = [
            n for n, m in self.module.named_modules()
            if isinstance(m, LoRALinear)
        ]

    def _register_state_dict_hooks(self) -> None:
        """Keep the full state dict; map unwrapped checkpoints on load.

        Replaces ``LoRAModel``'s hooks, which edit the whole model's state
        dict rather than this tower's part (see the module docstring).
        """
        self._register_load_state_dict_pre_hook(self._map_unwrapped_keys)

    def _map_unwrapped_keys(self, state_dict: dict, prefix: str,
                            *args) -> None:
        """Accept a checkpoint of the tower without LoRA.

        Its keys ``<prefix><name>`` become ``<prefix>module.<name>``, and
        those of the adapted layers ``...<layer>.original_layer.<weight|
        bias>``. Keys already in the wrapped layout are left alone.
        """
        inner = prefix + 'module.'
        plain = [
            k for k in state_dict
            if k.startswith(prefix) and not k.startswith(inner)
        ]
        if not plain:
            return
        layers = set(getattr(self, 'lora_layers', []))
        for key in plain:
            name = key[len(prefix):]
            layer, _, leaf = name.rpartition('.')
            if layer in layers and leaf in ('weight', 'bias'):
                name = f'{layer}.original_layer.{leaf}'
            if inner + name not in state_dict:
                state_dict[inner + name] = state_dict.pop(key)

    def lora_parameters(self) -> List[nn.Parameter]:
        """The LoRA matrices (``lora_down`` / ``lora_up``) of the tower."""
        return [p for n, p in self.named_parameters() if '.lora_' in n]

    def __getattr__(self, name: str) -> Any:
        try:
            return super(LoRAModel, self).__getattr__(name)
        except AttributeError:
            if name == 'module':  # not built yet: no recursion
                raise
            module: Optional[nn.Module] = self._modules.get('module')
            if module is None:
                raise
            return getattr(module, name)
