# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Mixed precision with loss scaling only where the dtype needs it.

mmengine's ``AmpOptimWrapper`` always makes a ``GradScaler``. bfloat16 has
float32's exponent range, so its gradients do not underflow and need no
scaling; the scaler then only costs work and, with optimizers that cannot
take its ``found_inf`` on the device, one host sync per step (the
``found_inf`` read in ``GradScaler.step``). With ``dtype='bfloat16'`` the
wrappers here use :class:`NoLossScaler` instead: the same interface,
identity scaling, a plain ``optimizer.step``.
"""
from typing import Optional

import torch
from mmengine.optim import AmpOptimWrapper
from mmpretrain.registry import OPTIM_WRAPPERS


class NoLossScaler:
    """``GradScaler``'s interface without scaling (bfloat16 training)."""

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        return loss

    def unscale_(self, optimizer) -> None:
        return None

    def step(self, optimizer, *args, **kwargs):
        return optimizer.step(*args, **kwargs)

    def update(self, new_scale=None) -> None:
        return None

    def get_scale(self) -> float:
        return 1.0

    def is_enabled(self) -> bool:
        return False

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state_dict: dict) -> None:
        # a float16 run's scaler state has nothing to restore here
        return None


def is_bf16(dtype: Optional[object]) -> bool:
    """Whether an AMP ``dtype`` setting means bfloat16."""
    return dtype in (torch.bfloat16, 'bfloat16', 'bf16')


@OPTIM_WRAPPERS.register_module()
class AutoScaleAmpOptimWrapper(AmpOptimWrapper):
    """``AmpOptimWrapper`` without a ``GradScaler`` for bfloat16.

    Same arguments as ``AmpOptimWrapper``; with ``dtype='bfloat16'``
    ``loss_scaler`` is a :class:`NoLossScaler` (no scaling, no ``found_inf``
    read), with float16 (the default) it is the usual dynamic scaler.
    ``tools/train.py --amp`` picks it for ``optim_wrapper.type=
    'OptimWrapper'``.
    """

    def __init__(self, *args, dtype=None, **kwargs) -> None:
        super().__init__(*args, dtype=dtype, **kwargs)
        if is_bf16(self.cast_dtype):
            self.loss_scaler = NoLossScaler()
