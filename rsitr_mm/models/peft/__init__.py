# Copyright (c) rsitr_mm contributors. All rights reserved.
from .lora_tower import LoRATower

__all__ = ['LoRATower']
