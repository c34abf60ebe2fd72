# Copyright (c) rsitr_mm contributors. All rights reserved.
from .loading import LoadImageFromCache

__all__ = ['LoadImageFromCache']
