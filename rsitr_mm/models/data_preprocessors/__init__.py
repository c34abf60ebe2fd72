# Copyright (c) rsitr_mm contributors. All rights reserved.
from .retrieval_data_preprocessor import RetrievalDataPreprocessor

__all__ = ['RetrievalDataPreprocessor']
