# Copyright (c) rsitr_mm contributors. All rights reserved.
from .retrieval_loop import (RSRetrievalTestLoop, RSRetrievalValLoop,
                             encode_loader, run_exact_retrieval)

__all__ = ['RSRetrievalValLoop', 'RSRetrievalTestLoop', 'run_exact_retrieval',
           'encode_loader']
