# Copyright (c) rsitr_mm contributors. All rights reserved.
"""A local search page over an image index (needs Flask: ``pip install
rsitr_mm[serve]``)."""
from .app import create_app, load_captions

__all__ = ['create_app', 'load_captions']
