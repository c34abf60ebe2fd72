# Copyright (c) rsitr_mm contributors. All rights reserved.
from .compat import apply_compat_patches
from .safe_load import (UntrustedCheckpointError, safe_torch_load,
                        trust_checkpoints)

__all__ = [
    'apply_compat_patches', 'UntrustedCheckpointError', 'safe_torch_load',
    'trust_checkpoints'
]
