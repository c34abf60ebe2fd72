# Copyright (c) rsitr_mm contributors. All rights reserved.
from .deferred_runtime_info import DeferredRuntimeInfoHook
from .atomic_checkpoint import atomic_save_checkpoint, patch_atomic_checkpoint
from .nan_guard import (NaNGuardHook, NaNSafeAmpOptimWrapper,
                        NaNSafeOptimWrapper, amp_counterpart)
from .safe_checkpoint import SafeCheckpointHook
from .train_data_to_model import TrainDataToModelHook, train_annotation_files

__all__ = [
    'NaNGuardHook', 'NaNSafeOptimWrapper', 'NaNSafeAmpOptimWrapper',
    'amp_counterpart', 'SafeCheckpointHook', 'atomic_save_checkpoint',
    'patch_atomic_checkpoint', 'TrainDataToModelHook', 'train_annotation_files',
    'DeferredRuntimeInfoHook'
]
