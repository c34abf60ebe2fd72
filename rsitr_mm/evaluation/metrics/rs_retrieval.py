# Copyright (c) rsitr_mm contributors. All rights reserved.
"""The remote-sensing image-text retrieval metric."""
from typing import Any, Dict, List, Optional, Sequence

from mmengine.evaluator import BaseMetric
from mmpretrain.registry import METRICS

from ..functional import retrieval_recall


@METRICS.register_module()
class RSRetrievalMetric(BaseMetric):
    """Recall@K of image-to-text and text-to-image retrieval, mR and rsum.

    The metric receives the exact ``(N, captions_per_image * N)``
    similarity matrix of the whole test set, built once by
    :class:`RSRetrievalValLoop` / :class:`RSRetrievalTestLoop` (which gather
    features from every rank and cut exactly N images and 5N captions), and
    scores it with :func:`rsitr_mm.evaluation.retrieval_recall` (see there
    for the tie rule). Only the main process feeds it; ``evaluate(1)``
    then returns the same numbers on every rank.

    Reported keys (percent, with the ``retrieval/`` prefix): ``i2t_R@1``,
    ``i2t_R@5``, ``i2t_R@10``, ``t2i_R@1``, ``t2i_R@5``, ``t2i_R@10``,
    ``mR`` and ``rsum``. Use ``save_best='retrieval/rsum'`` in the
    ``CheckpointHook`` to keep the best checkpoint.

    Args:
        captions_per_image (int): captions per image. Defaults to 5.
        topk (Sequence[int]): the K values. Defaults to (1, 5, 10).
        collect_device (str): see :class:`mmengine.evaluator.BaseMetric`.
        prefix (str, optional): metric key prefix. Defaults to
            ``'retrieval'``.
    """

    default_prefix: Optional[str] = 'retrieval'

    def __init__(self,
                 captions_per_image: int = 5,
                 topk: Sequence[int] = (1, 5, 10),
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.captions_per_image = captions_per_image
        self.topk = tuple(topk)

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Store the similarity matrices handed over by the loop.

        Args:
            data_batch (Any): unused.
            data_samples (Sequence[dict]): dicts with key ``similarity``,
                an (N, captions_per_image * N) tensor.
        """
        for sample in data_samples:
            if 'similarity' not in sample:
                raise KeyError(
                    'RSRetrievalMetric expects dicts with a "similarity" '
                    'matrix, as produced by RSRetrievalValLoop/TestLoop; got '
                    f'keys {sorted(sample)}. Set val_cfg=dict(type='
                    '"RSRetrievalValLoop") and test_cfg=dict(type='
                    '"RSRetrievalTestLoop").')
            # kept on its device: retrieval_recall scores a GPU matrix on
            # the GPU
            self.results.append(sample['similarity'].detach())

    def compute_metrics(self, results: List) -> Dict[str, float]:
        """Score the (single) similarity matrix.

        Args:
            results (list): stored similarity matrices; each is scored and
                the numbers of the last one are returned.

        Returns:
            dict[str, float]: the six recalls, mR and rsum.
        """
        metrics: Dict[str, float] = {}
        for sim in results:
            metrics = retrieval_recall(
                sim,
                captions_per_image=self.captions_per_image,
                topk=self.topk)
        return metrics
