# Copyright (c) rsitr_mm contributors. All rights reserved.
from .rerank import (RERANKERS, build_reranker, dual_softmax,
                     evaluate_reranked, inverted_softmax, k_reciprocal,
                     qb_norm)
from .retrieval_recall import (RECALL_KEYS, chance_recall, gold_ranks,
                               retrieval_recall)

__all__ = [
    'retrieval_recall', 'gold_ranks', 'chance_recall', 'RECALL_KEYS', 'RERANKERS',
    'build_reranker', 'dual_softmax', 'inverted_softmax', 'qb_norm',
    'k_reciprocal', 'evaluate_reranked'
]
