# Copyright (c) rsitr_mm contributors. All rights reserved.
from .hooks import *  # noqa: F401,F403
from .model_wrappers import CPUFriendlyDDP
from .optimizers import *  # noqa: F401,F403
from .runners import *  # noqa: F401,F403

__all__ = ['CPUFriendlyDDP']
