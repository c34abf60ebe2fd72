# Copyright (c) rsitr_mm contributors. All rights reserved.
from .bsd import BidirectionalScaleDecoupling
from .dapn import DualAttentionPerception

__all__ = ['DualAttentionPerception', 'BidirectionalScaleDecoupling']
