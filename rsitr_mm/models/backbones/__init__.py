# Copyright (c) rsitr_mm contributors. All rights reserved.

from .bigru_text_encoder import BiGRUTextEncoder
from .clip_vision import CLIPVisionBackbone
from .hf_text_encoder import CLIPTextEncoder, HFTextEncoder
from .tiny_cnn import TinyCNN

__all__ = [
    'BiGRUTextEncoder', 'CLIPVisionBackbone', 'CLIPTextEncoder',
    'HFTextEncoder', 'TinyCNN'
]
