# Copyright (c) rsitr_mm contributors. All rights reserved.
from .retrieval_recall import RECALL_KEYS, chance_recall, retrieval_recall

__all__ = ['retrieval_recall', 'chance_recall', 'RECALL_KEYS']
