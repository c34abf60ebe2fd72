# Copyright (c) rsitr_mm contributors. All rights reserved.
from .dual_encoder import DualEncoderRetriever

__all__ = ['DualEncoderRetriever']
