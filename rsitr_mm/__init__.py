# Copyright (c) rsitr_mm contributors. All rights reserved.
"""rsitr_mm: remote-sensing image-text retrieval for OpenMMLab.

Importing this package registers every dataset, transform, model, metric,
loop and hook into mmpretrain's registries (scope ``mmpretrain``), so a config
anywhere can use them through
``custom_imports=dict(imports=['rsitr_mm'], allow_failed_imports=False)``.
"""
import warnings

# mmcv-lite has no compiled ops, so importing mmpretrain.models warns that
# ``MultiScaleDeformableAttention`` is missing; nothing here uses it. Silence
# exactly that warning (module and message), nothing else.
warnings.filterwarnings(
    'ignore',
    message=r'Fail to import ``MultiScaleDeformableAttention``',
    category=UserWarning,
    module=r'mmcv\.cnn\.bricks\.transformer')

from .utils.compat import apply_compat_patches  # noqa: E402

apply_compat_patches()

# `_base_ = 'rsitr_mm::_base_/...'` in a config (mmengine resolves it in the
# installed package's .mim/configs) needs the package in mmengine's table
from mmengine.config.utils import MODULE2PACKAGE  # noqa: E402

MODULE2PACKAGE.setdefault('rsitr_mm', 'rsitr_mm')

from . import datasets, engine, evaluation, models  # noqa: E402,F401
from .version import __version__, version_info  # noqa: E402

__all__ = ['__version__', 'version_info']
