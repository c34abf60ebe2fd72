# Copyright (c) rsitr_mm contributors. All rights reserved.
"""A ``CheckpointHook`` whose saves survive a kill or a full disk.

mmengine 0.10.7's ``CheckpointHook`` removes the previous best checkpoint
(and, with ``max_keep_ckpts``, the oldest one) *before* it writes the new
one, and writes ``last_checkpoint`` in place. A SIGKILL or ``ENOSPC`` in
between leaves no best checkpoint, or a ``last_checkpoint`` naming a deleted
file. :class:`SafeCheckpointHook` keeps mmengine's file names and message
hub keys but orders every save as:

1. write the new checkpoint (atomically: temporary file + rename, see
   :mod:`rsitr_mm.engine.hooks.atomic_checkpoint`);
2. write ``last_checkpoint`` (atomically);
3. delete the files the new one replaces.

The files still to delete are recorded in the message hub
(``rsitr_pending_remove``) of the checkpoint written in step 1, so a run
killed before step 3 finishes the deletion when it resumes. At start-up the
temporary files of an interrupted save are removed.

A new best checkpoint is written after the validation that found it, which
comes after the epoch checkpoint was saved. The hook records the last
epoch whose validation completed (``rsitr_validated_epoch``, written into
the epoch checkpoint again when the best changes);
:class:`~rsitr_mm.engine.runners.ResumableEpochBasedTrainLoop` re-runs a
validation that a kill interrupted before training on, so the best
checkpoint is always the true best.
"""
import glob
import os
import os.path as osp
from typing import List

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmpretrain.registry import HOOKS

from ...utils.fileio import atomic_write_text

PENDING_KEY = 'rsitr_pending_remove'
VALIDATED_KEY = 'rsitr_validated_epoch'


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """``CheckpointHook`` that writes first and deletes last.

    Same arguments as :class:`mmengine.hooks.CheckpointHook`. Local
    ``out_dir`` only for the ordering guarantees (remote back-ends keep
    mmengine's order for the deletions they do). mmengine passes unknown
    keyword arguments on to ``Runner.save_checkpoint`` at the first save;
    here an argument neither takes (``intreval=1``) is refused when the
    hook is built, with the closest known name.
    """

    def __init__(self, *args, **kwargs) -> None:
        import difflib
        import inspect

        from mmengine.runner import Runner
        own = set(inspect.signature(CheckpointHook.__init__).parameters)
        saved = set(inspect.signature(Runner.save_checkpoint).parameters)
        for key in kwargs:
            if key not in own and key not in saved:
                close = difflib.get_close_matches(
                    key, sorted((own | saved) - {'self', 'kwargs'}), n=1)
                hint = f' (did you mean {close[0]!r}?)' if close else ''
                raise TypeError(
                    f'{type(self).__name__} got an unknown argument '
                    f'{key!r}{hint}; it takes the arguments of '
                    'mmengine\'s CheckpointHook and of '
                    'Runner.save_checkpoint')
        super().__init__(*args, **kwargs)

    # ------------------------------------------------------------ start-up
    def before_train(self, runner) -> None:
        super().before_train(runner)
        hub = runner.message_hub
        # only a best checkpoint depends on the validation after a save
        if self.save_best and VALIDATED_KEY not in hub.runtime_info:
            hub.update_info(VALIDATED_KEY, 0)
        if not is_main_process() or not self._is_local():
            return
        for folder in {str(self.out_dir), runner.work_dir}:
            for tmp in glob.glob(osp.join(glob.escape(folder), '.*.tmp')):
                name = osp.basename(tmp)
                # atomic_write_bytes names its files '.<target>.<rand>.tmp'
                ours = '.pth.' in name or name.startswith(
                    '.last_checkpoint.')
                if name.count('.') >= 3 and ours:
                    os.remove(tmp)
                    runner.logger.info(
                        f'Removed {tmp}, left by an interrupted save.')
        self._remove(runner, list(hub.get_info(PENDING_KEY) or []))

    def _is_local(self) -> bool:
        return '://' not in str(self.out_dir)

    def _protected(self, runner) -> set:
        keep = {self.last_ckpt, getattr(self, 'best_ckpt_path', None)}
        keep.update(getattr(self, 'best_ckpt_path_dict', {}).values())
        if self.max_keep_ckpts > 0:
            keep.update(
                self.file_backend.join_path(self.out_dir,
                                            self.filename_tmpl.format(s))
                for s in self.keep_ckpt_ids)
        return {str(p) for p in keep if p}

    def _remove(self, runner, paths: List[str]) -> None:
        """Delete replaced checkpoints (never a current one)."""
        if not is_main_process():
            return
        protected = self._protected(runner)
        for path in paths:
            if str(path) in protected:
                continue
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):
                # checkpoints saved by deepspeed are directories
                self.file_backend.rmtree(path)
        runner.message_hub.update_info(PENDING_KEY, [])

    def _add_pending(self, runner, paths: List[str]) -> List[str]:
        hub = runner.message_hub
        pending = list(hub.get_info(PENDING_KEY) or [])
        pending += [str(p) for p in paths if str(p) not in pending]
        hub.update_info(PENDING_KEY, pending)
        return pending

    # -------------------------------------------------------------- saving
    def _save_checkpoint_with_step(self, runner, step, meta):
        drop = []
        if self.max_keep_ckpts > 0:
            if not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
                if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                    old = self.keep_ckpt_ids.popleft()
                    drop.append(
                        self.file_backend.join_path(
                            self.out_dir, self.filename_tmpl.format(old)))
                self.keep_ckpt_ids.append(step)
                runner.message_hub.update_info('keep_ckpt_ids',
                                               list(self.keep_ckpt_ids))
        # recorded in the checkpoint below: a resume finishes the deletion
        pending = self._add_pending(runner, drop)

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir,
                                                     ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        # 1. the new checkpoint (atomic)
        runner.save_checkpoint(
            self.out_dir,
            ckpt_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        # 2. the pointer to it (atomic)
        atomic_write_text(
            str(self.last_ckpt), osp.join(runner.work_dir, 'last_checkpoint'))
        # 3. what it replaces
        self._remove(runner, pending)

    def after_val_epoch(self, runner, metrics):
        # the epoch checkpoint re-saved for a new best records that this
        # validation completed; see ResumableEpochBasedTrainLoop
        try:
            if self.save_best:
                runner.message_hub.update_info(VALIDATED_KEY,
                                               int(runner.epoch))
        except Exception:  # noqa: BLE001  validation outside training
            pass
        super().after_val_epoch(runner, metrics)

    def _save_best_checkpoint(self, runner, metrics) -> None:
        if not self.save_best:
            return
        if self.by_epoch:
            ckpt_filename = self.filename_tmpl.format(runner.epoch)
            cur_type, cur_time = 'epoch', runner.epoch
        else:
            ckpt_filename = self.filename_tmpl.format(runner.iter)
            cur_type, cur_time = 'iter', runner.iter
        meta = dict(epoch=runner.epoch, iter=runner.iter)
        if 'auto' in self.key_indicators:
            self._init_rule(self.rules, [list(metrics.keys())[0]])

        replaced = []
        best_ckpt_updated = False
        hub = runner.message_hub
        for key_indicator, rule in zip(self.key_indicators, self.rules):
            key_score = metrics[key_indicator]
            single = len(self.key_indicators) == 1
            if single:
                best_score_key, runtime_best_ckpt_key = 'best_score', \
                    'best_ckpt'
                old_path = self.best_ckpt_path
            else:
                best_score_key = f'best_score_{key_indicator}'
                runtime_best_ckpt_key = f'best_ckpt_{key_indicator}'
                old_path = self.best_ckpt_path_dict[key_indicator]
            best_score = hub.get_info(best_score_key) \
                if best_score_key in hub.runtime_info \
                else self.init_value_map[rule]
            if key_score is None or not self.is_better_than[key_indicator](
                    key_score, best_score):
                continue
            best_ckpt_updated = True
            hub.update_info(best_score_key, key_score)
            best_ckpt_name = f'best_{key_indicator}_{ckpt_filename}'.replace(
                '/', '_')
            new_path = self.file_backend.join_path(self.out_dir,
                                                   best_ckpt_name)
            if single:
                self.best_ckpt_path = new_path
            else:
                self.best_ckpt_path_dict[key_indicator] = new_path
            hub.update_info(runtime_best_ckpt_key, new_path)
            # 1. the new best (atomic); the old one is deleted afterwards
            runner.save_checkpoint(
                self.out_dir,
                filename=best_ckpt_name,
                file_client_args=self.file_client_args,
                save_optimizer=False,
                save_param_scheduler=False,
                meta=meta,
                by_epoch=False,
                backend_args=self.backend_args)
            if old_path and str(old_path) != str(new_path):
                replaced.append(old_path)
            runner.logger.info(
                f'The best checkpoint with {key_score:0.4f} {key_indicator} '
                f'at {cur_time} {cur_type} is saved to {best_ckpt_name}.')

        pending = self._add_pending(runner, replaced)
        if best_ckpt_updated and self.last_ckpt is not None:
            # 2. the last checkpoint now names the new best, then 3.
            self._save_checkpoint_with_step(runner, cur_time, meta)
        else:
            self._remove(runner, pending)
