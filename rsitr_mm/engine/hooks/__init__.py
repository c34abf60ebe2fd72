# Copyright (c) rsitr_mm contributors. All rights reserved.
from .atomic_checkpoint import atomic_save_checkpoint, patch_atomic_checkpoint
from .nan_guard import NaNGuardHook, NaNSafeOptimWrapper
from .safe_checkpoint import SafeCheckpointHook

__all__ = [
    'NaNGuardHook', 'NaNSafeOptimWrapper', 'SafeCheckpointHook',
    'atomic_save_checkpoint', 'patch_atomic_checkpoint'
]
