# Copyright (c) rsitr_mm contributors. All rights reserved.
from . import collate  # noqa: F401  (names the files of a mixed batch)
from .hooks import *  # noqa: F401,F403
from .model_wrappers import CPUFriendlyDDP
from .optimizers import *  # noqa: F401,F403
from .runners import *  # noqa: F401,F403

__all__ = ['CPUFriendlyDDP']
