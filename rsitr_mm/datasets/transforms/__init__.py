# Copyright (c) rsitr_mm contributors. All rights reserved.

__all__ = []
