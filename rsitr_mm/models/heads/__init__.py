# Copyright (c) rsitr_mm contributors. All rights reserved.
from .label_semantic_head import LabelSemanticHead
from .osfcm_head import ObjectSemanticClusterHead

__all__ = ['ObjectSemanticClusterHead', 'LabelSemanticHead']
