# Copyright (c) rsitr_mm contributors. All rights reserved.
"""An epoch-based training loop that resumes exactly from mid-epoch."""
from typing import Optional

import torch
from mmengine.dist import get_world_size
from mmengine.runner import EpochBasedTrainLoop
from mmpretrain.registry import LOOPS

#: message hub key: how the train loader was laid out when a checkpoint
#: was written (the skip count of a mid-epoch resume depends on it)
LOADER_KEY = 'rsitr_train_loader'
#: message hub key written by SafeCheckpointHook: last validated epoch
VALIDATED_KEY = 'rsitr_validated_epoch'


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

    That skip count is only right for the loader layout that wrote the
    checkpoint: the layout (processes, batch size, dataset size) is stored
    in the message hub, and resuming mid-epoch with another one is refused
    with a message (resuming from an epoch checkpoint is always allowed).

    After a resume at an epoch end whose validation did not complete (the
    run was killed during validation or while saving the best checkpoint,
    as recorded by :class:`~rsitr_mm.engine.hooks.SafeCheckpointHook`), that
    validation is run again before training goes on, so the best
    checkpoint is the true best.

    ``load_from`` (fine-tuning from weights, not ``--resume``) is checked
    strictly: missing, unexpected or mis-shaped keys fail with the file and
    the keys named, unless ``strict_load=False``.

    The skipped batches are still loaded (the loader offers no cheaper way
    to advance), which costs their data time once.

    Args:
        strict_load (bool): check ``load_from`` strictly. Defaults to True.
        Others: see :class:`mmengine.runner.EpochBasedTrainLoop` (configs
        give ``train_cfg = dict(type='ResumableEpochBasedTrainLoop',
        max_epochs=N, val_interval=1)``, without ``by_epoch``).
    """

    def __init__(self, *args, strict_load: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.strict_load = strict_load

    # ----------------------------------------------------------- helpers
    def _loader_layout(self) -> dict:
        loader = self.dataloader
        return dict(
            world_size=int(get_world_size()),
            batch_size=int(getattr(loader, 'batch_size', 0) or 0),
            num_batches=int(len(loader)),
            num_samples=int(len(loader.dataset)))

    def _check_loader_layout(self) -> None:
        hub = self.runner.message_hub
        now = self._loader_layout()
        before: Optional[dict] = hub.get_info(LOADER_KEY)
        done = self._iter - self._epoch * now['num_batches']
        mid_epoch = self._iter > 0 and done != 0
        if mid_epoch and before and before != now:
            diff = ', '.join(f'{k} {before.get(k)} -> {now[k]}'
                             for k in now if before.get(k) != now[k])
            raise RuntimeError(
                f'cannot resume mid-epoch (iteration {self._iter}, epoch '
                f'{self._epoch + 1}) with another train loader layout: '
                f'{diff}. The batches to skip depend on it. Resume with the '
                'same number of processes and train_dataloader.batch_size, '
                'or from an epoch checkpoint (epoch_N.pth).')
        if mid_epoch and before is None and (
                done < 0 or done > now['num_batches']):
            raise RuntimeError(
                f'cannot resume at iteration {self._iter} in epoch '
                f'{self._epoch + 1}: the train loader has '
                f'{now["num_batches"]} batches per epoch, so the '
                'checkpoint was written with another batch size or number '
                'of processes. Resume with those, or from an epoch '
                'checkpoint.')
        hub.update_info(LOADER_KEY, now)

    def _check_load_from(self) -> None:
        runner = self.runner
        load_from = getattr(runner, '_load_from', None)
        if not self.strict_load or not load_from or getattr(
                runner, '_resume', False):
            return
        from mmengine.runner.checkpoint import _load_checkpoint

        from ...utils.safe_load import check_state_dict
        check_state_dict(runner.model,
                         _load_checkpoint(load_from, map_location='cpu'),
                         load_from,
                         hint='train_cfg.strict_load=False')

    def _should_validate(self, epoch: int) -> bool:
        return (self.runner.val_loop is not None and epoch >= self.val_begin
                and (epoch % self.val_interval == 0
                     or epoch == self._max_epochs))

    def _revalidate_interrupted(self) -> None:
        hub = self.runner.message_hub
        validated = hub.get_info(VALIDATED_KEY)
        at_epoch_end = self._iter == self._epoch * len(self.dataloader)
        if validated is None or self._epoch == 0 or not at_epoch_end:
            return
        self._decide_current_val_interval()
        if validated < self._epoch and self._should_validate(self._epoch):
            self.runner.logger.info(
                f'The validation after epoch {self._epoch} did not complete '
                'before the run stopped; running it again.')
            self.runner.val_loop.run()

    # -------------------------------------------------------------- loop
    def run(self) -> torch.nn.Module:
        """Launch training (see the class doc for the resume checks)."""
        self._check_load_from()
        self.runner.call_hook('before_train')
        self._check_loader_layout()
        self._revalidate_interrupted()
        while self._epoch < self._max_epochs and not self.stop_training:
            self.run_epoch()
            self._decide_current_val_interval()
            if self._should_validate(self._epoch):
                self.runner.val_loop.run()
        self.runner.call_hook('after_train')
        return self.runner.model

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
