# Copyright (c) rsitr_mm contributors. All rights reserved.
from .merged_groups_constructor import (MergedGroupsOptimWrapperConstructor,
                                        merge_param_groups)

__all__ = ['MergedGroupsOptimWrapperConstructor', 'merge_param_groups']
