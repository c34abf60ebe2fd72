# Copyright (c) rsitr_mm contributors. All rights reserved.
from .rs_retrieval import RSRetrievalMetric

__all__ = ['RSRetrievalMetric']
