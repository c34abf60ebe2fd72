# Copyright (c) rsitr_mm contributors. All rights reserved.
from .caption_data import (CaptionDataCollate, PrepareCaptionData,
                           SampleIds)
from .fast_transforms import (FastPackInputs, FastRandomFlip,
                              FastRandomResizedCrop, use_fast_transforms)
from .loading import LoadImageFromCache

__all__ = [
    'LoadImageFromCache', 'FastRandomResizedCrop', 'FastRandomFlip',
    'FastPackInputs', 'use_fast_transforms', 'PrepareCaptionData',
    'CaptionDataCollate', 'SampleIds'
]
