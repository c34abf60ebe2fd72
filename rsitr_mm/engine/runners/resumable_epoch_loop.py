# Copyright (c) rsitr_mm contributors. All rights reserved.
"""An epoch-based training loop that resumes exactly from mid-epoch."""
from mmengine.runner import EpochBasedTrainLoop
from mmpretrain.registry import LOOPS


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """``EpochBasedTrainLoop`` that skips the batches already trained.

    mmengine's epoch loop restarts an unfinished epoch from its first batch
    after ``--resume`` from an iteration checkpoint, so the batches before
    the checkpoint are trained twice and the run ends ``k`` iterations
    late. Here the first ``iter - epoch * len(dataloader)`` batches of the
    resumed epoch are drawn from the loader (the sampler order is a
    function of ``seed + epoch``, so they are the same batches) and
    skipped without any hook or optimizer step. With a pipeline and a model
    that draw no random numbers, the resumed run then ends with exactly the
    weights of the uninterrupted run (tested); random augmentation or
    dropout still diverge, because mmengine does not store the random
    generators' state in checkpoints.

    The skipped batches are still loaded (the loader offers no cheaper way
    to advance), which costs their data time once.

    Args: see :class:`mmengine.runner.EpochBasedTrainLoop` (configs give
    ``train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=N,
    val_interval=1)``, without ``by_epoch``).
    """

    def run_epoch(self) -> None:
        """Iterate one epoch, skipping batches trained before a resume."""
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        done = self._iter - self._epoch * len(self.dataloader)
        for idx, data_batch in enumerate(self.dataloader):
            if idx < done:
                continue
            self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
