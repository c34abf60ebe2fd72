# Copyright (c) rsitr_mm contributors. All rights reserved.
from .resumable_epoch_loop import ResumableEpochBasedTrainLoop
from .retrieval_loop import (RSRetrievalTestLoop, RSRetrievalValLoop,
                             encode_loader, run_exact_retrieval)

__all__ = [
    'ResumableEpochBasedTrainLoop', 'RSRetrievalValLoop',
    'RSRetrievalTestLoop', 'run_exact_retrieval', 'encode_loader'
]
