# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Synthetic aerial scenes with captions, for demos and tests."""
from .captions import tokenize, write_captions
from .generate import generate_synthetic_dataset, make_image, resolve_split
from .render import render_scene
from .scene import (BACKGROUNDS, OBJECT_KINDS, SCENE_CLASSES, LineFeature,
                    ObjectGroup, ObjectInstance, Scene, sample_scene)

__all__ = [
    'generate_synthetic_dataset', 'make_image', 'resolve_split',
    'sample_scene', 'render_scene', 'write_captions', 'tokenize', 'Scene',
    'ObjectGroup', 'ObjectInstance', 'LineFeature', 'SCENE_CLASSES',
    'BACKGROUNDS', 'OBJECT_KINDS'
]
from .testbed import generate_testbed, make_testbed_image, testbed_dir  # noqa: E402,E501
from .testbed_scene import HELD_OUT_COMBOS, SCALE_RANGE  # noqa: E402

__all__ += [
    'generate_testbed', 'make_testbed_image', 'testbed_dir',
    'HELD_OUT_COMBOS', 'SCALE_RANGE'
]
