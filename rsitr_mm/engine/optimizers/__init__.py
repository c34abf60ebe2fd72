# Copyright (c) rsitr_mm contributors. All rights reserved.
from .auto_scale_amp import (AutoScaleAmpOptimWrapper, NoLossScaler,
                             is_bf16)
from .merged_groups_constructor import (MergedGroupsOptimWrapperConstructor,
                                        merge_param_groups)

__all__ = [
    'MergedGroupsOptimWrapperConstructor', 'merge_param_groups',
    'AutoScaleAmpOptimWrapper', 'NoLossScaler', 'is_bf16'
]
