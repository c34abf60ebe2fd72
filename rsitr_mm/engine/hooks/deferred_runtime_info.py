# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Loss values reach the message hub at logging iterations only.

mmengine's ``RuntimeInfoHook`` writes every entry of the training step's
``log_vars`` to the message hub after every iteration; ``MessageHub.
update_scalar`` reads each tensor with ``.item()``, i.e. one host-device
sync per loss term per step (6 for OSDPM). The values are only looked at
when ``LoggerHook`` prints them (every ``interval`` iterations, averaged
over the window) or at the end of an epoch.

:class:`DeferredRuntimeInfoHook` keeps the detached loss tensors of the
iterations in between and, at the iterations where ``LoggerHook`` logs (and
at the end of every epoch and of training), reads all of them in ONE
device->host copy and writes them to the message hub in order. The logged
numbers (window averages) are the same; the hub's per-iteration history is
filled late, at the logging iterations. Everything else ``RuntimeInfoHook``
does is unchanged (it is its subclass).
"""
from typing import Dict, List, Optional

import torch
from mmengine.hooks import LoggerHook, RuntimeInfoHook
from mmpretrain.registry import HOOKS


def read_scalars(rows: List[Dict[str, object]]) -> List[Dict[str, object]]:
    """The rows with every tensor replaced by its Python number, read in
    one copy per device.

    Args:
        rows (list[dict]): ``{name: scalar tensor | number}`` per iteration.

    Returns:
        list[dict]: The same rows with Python numbers.
    """
    by_device: Dict[torch.device, List] = {}
    for i, row in enumerate(rows):
        for key, value in row.items():
            if isinstance(value, torch.Tensor):
                by_device.setdefault(value.device, []).append((i, key, value))
    out = [dict(row) for row in rows]
    for entries in by_device.values():
        flat = torch.stack(
            [v.detach().float().reshape(-1)[0] for _, _, v in entries])
        for (i, key, _), number in zip(entries, flat.tolist()):
            out[i][key] = number
    return out


@HOOKS.register_module()
class DeferredRuntimeInfoHook(RuntimeInfoHook):
    """``RuntimeInfoHook`` whose training losses are read at logging
    iterations only (see the module docstring).

    Set in ``configs/_base_/default_runtime.py`` as
    ``default_hooks.runtime_info``.

    Args:
        interval (int, optional): Read every this many iterations. Defaults
            to None: the interval of the runner's ``LoggerHook`` (every
            iteration without one).
    """

    def __init__(self, interval: Optional[int] = None) -> None:
        super().__init__()
        if interval is not None and (not isinstance(interval, int)
                                     or interval < 1):
            raise ValueError('DeferredRuntimeInfoHook: interval must be a '
                             f'positive int or None, got {interval!r}.')
        self.interval = interval
        self._pending: List[Dict[str, object]] = []

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if self.interval is None:
            loggers = [h for h in runner.hooks if isinstance(h, LoggerHook)]
            self._interval = loggers[0].interval if loggers else 1
        else:
            self._interval = self.interval

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        """Keep this iteration's losses; read them all at a logging
        iteration, the end of an epoch or of training."""
        if outputs is not None:
            self._pending.append({
                k: v.detach() if isinstance(v, torch.Tensor) else v
                for k, v in outputs.items()
            })
        n = getattr(self, '_interval', 1)
        if (self.every_n_inner_iters(batch_idx, n)
                or self.every_n_train_iters(runner, n)
                or self.end_of_epoch(runner.train_dataloader, batch_idx)
                or self.is_last_train_iter(runner)):
            self.flush(runner)

    def flush(self, runner) -> None:
        """Write the kept losses to the message hub (one read)."""
        rows, self._pending = self._pending, []
        for row in read_scalars(rows):
            for key, value in row.items():
                runner.message_hub.update_scalar(f'train/{key}', value)

    def after_train(self, runner) -> None:
        self.flush(runner)
        super_after = getattr(super(), 'after_train', None)
        if callable(super_after):
            super_after(runner)
