# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Guard training against NaN/Inf losses: stop loudly or skip the update.

Two pieces, because of where mmengine runs them:

* :class:`NaNGuardHook` runs in ``after_train_iter``, i.e. *after* the
  optimizer step. It can stop a run (``action='raise'``) with a message that
  names the iteration, epoch and offending loss terms, but it cannot undo an
  update that already happened.
* :class:`NaNSafeOptimWrapper` checks the loss *before* the update and, when
  it is not finite, skips ``backward``/``step`` and clears the gradients, so
  parameters and optimizer state (e.g. Adam moments and step count) are
  unchanged across the bad iteration. ``NaNGuardHook(action='skip')``
  requires it (or mmengine's ``AmpOptimWrapper``, whose gradient scaler
  already skips steps with non-finite gradients) and counts the skips.
* :class:`NaNSafeAmpOptimWrapper` is the mixed-precision version (the
  loss is checked before the scaled backward, so the ``GradScaler`` scale
  is not halved by a NaN loss); ``tools/train.py --amp`` picks it for a
  config using ``NaNSafeOptimWrapper`` (:func:`amp_counterpart`).

Config::

    optim_wrapper = dict(type='NaNSafeOptimWrapper', optimizer=...)
    custom_hooks = [dict(type='NaNGuardHook', action='skip')]
"""
import logging
from contextlib import contextmanager
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine import dist
from mmengine.device import (is_cuda_available, is_mlu_available,
                             is_musa_available, is_npu_available)
from mmengine.hooks import Hook
from mmengine.logging import MessageHub, print_log

from ..optimizers.auto_scale_amp import NoLossScaler, is_bf16
from mmengine.optim import AmpOptimWrapper, OptimWrapper, OptimWrapperDict
from mmengine.registry import OPTIM_WRAPPERS
from mmpretrain.registry import HOOKS

ACTIONS = ('raise', 'skip')


def nonfinite_terms(outputs: Optional[Dict]) -> List[str]:
    """Names and values of the non-finite entries of a loss/log dict.

    Args:
        outputs (dict, optional): ``{name: tensor | number}``, e.g. the
            parsed ``log_vars`` a model's ``train_step`` returns.

    Returns:
        list[str]: ``'name=value'`` for every entry holding a NaN or Inf
        (empty when all are finite or ``outputs`` is empty).
    """
    terms = []
    for name, value in (outputs or {}).items():
        if isinstance(value, (int, float)):
            value = torch.tensor(float(value))
        if not (isinstance(value, torch.Tensor)
                and value.is_floating_point()):
            continue
        terms.append((name, value.detach()))
    if not terms:
        return []
    if len({v.device for _, v in terms}) == 1:
        # the usual case: one check (one host sync) for all the terms
        flat = torch.cat([v.reshape(-1).float() for _, v in terms])
        if bool(torch.isfinite(flat).all()):
            return []
    bad = []
    for name, value in terms:
        if not bool(torch.isfinite(value).all()):
            shown = value.float()
            shown = shown.item() if shown.numel() == 1 else 'non-finite'
            bad.append(f'{name}={shown}')
    return bad


def _progress() -> str:
    """'iteration I (epoch E)' from the current message hub, 1-based."""
    hub = MessageHub.get_current_instance()
    it, ep = hub.get_info('iter'), hub.get_info('epoch')
    text = f'iteration {it + 1}' if it is not None else 'an iteration'
    return text + (f' (epoch {ep + 1})' if ep is not None else '')


class _NaNSafeMixin:
    """Skip ``backward``/``step`` when the loss is not finite.

    Mixed into an optimizer wrapper before the wrapper class, so that its
    ``update_params`` runs first and calls the wrapper's own
    ``update_params`` (plain or AMP) only for a finite loss.
    """

    num_skipped = 0

    @staticmethod
    def _all_finite(loss: torch.Tensor) -> bool:
        # the one host sync this wrapper adds per step (the verdict must be
        # on the host to skip the backward)
        ok = torch.isfinite(loss.detach()).all().to(torch.int32).reshape(1)
        if dist.is_distributed():
            dist.all_reduce(ok, op='min')
        return bool(ok.item())

    def update_params(self,
                      loss: torch.Tensor,
                      step_kwargs: Optional[Dict] = None,
                      zero_kwargs: Optional[Dict] = None) -> None:
        """Backward + step as the base wrapper, unless ``loss`` is bad.

        Args:
            loss (torch.Tensor): the scalar loss to back-propagate.
            step_kwargs (dict, optional): arguments of ``optimizer.step``.
            zero_kwargs (dict, optional): arguments of ``zero_grad``.
        """
        if self._all_finite(loss):
            super().update_params(loss, step_kwargs, zero_kwargs)
            return
        # keep the gradient-accumulation counter in step with the loop
        self._inner_count += 1
        self.zero_grad(**(zero_kwargs or {}))
        self.num_skipped += 1
        print_log(
            f'{type(self).__name__}: non-finite loss '
            f'({loss.detach().float().item()}) at {_progress()}: update '
            f'skipped, gradients cleared ({self.num_skipped} skipped so '
            'far).',
            logger='current',
            level=logging.WARNING)


@OPTIM_WRAPPERS.register_module()
class NaNSafeOptimWrapper(_NaNSafeMixin, OptimWrapper):
    """``OptimWrapper`` that skips the update when the loss is not finite.

    Before ``backward``, the loss is checked; in distributed training the
    verdict is all-reduced so every rank skips together (a rank skipping
    ``backward`` alone would dead-lock DDP's gradient all-reduce). On a bad
    loss no ``backward`` and no ``step`` run, the gradients (including those
    accumulated by earlier micro-batches of the same accumulation window)
    are cleared, and a warning names the iteration. Parameter schedulers
    still advance: the skipped iteration counts as one.

    ``tools/train.py --amp`` turns it into :class:`NaNSafeAmpOptimWrapper`.

    Args:
        *args: see :class:`mmengine.optim.OptimWrapper`.
        **kwargs: see :class:`mmengine.optim.OptimWrapper`.

    Attributes:
        num_skipped (int): updates skipped so far in this process.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.num_skipped = 0


def _has_accelerator() -> bool:
    return (is_cuda_available() or is_npu_available()
            or is_mlu_available() or is_musa_available())


@OPTIM_WRAPPERS.register_module()
class NaNSafeAmpOptimWrapper(_NaNSafeMixin, AmpOptimWrapper):
    """``AmpOptimWrapper`` that skips the update when the loss is not finite.

    Same skip as :class:`NaNSafeOptimWrapper`, checked before the scaled
    backward: a NaN/Inf *loss* leaves the parameters, the optimizer state
    and the ``GradScaler`` scale unchanged (plain ``AmpOptimWrapper`` would
    back-propagate it, find non-finite gradients, skip the step and halve
    the scale, so a run of bad batches drives the scale towards zero).
    Overflowing *gradients* of a finite loss are still handled by the
    scaler (skip + halve), as in mixed-precision training.

    On a machine without an accelerator (mmengine's ``AmpOptimWrapper``
    refuses to build there) it runs CPU autocast with
    ``torch.amp.GradScaler('cpu')``; ``dtype`` may then be ``'float16'`` or
    ``'bfloat16'`` (default). This is how the tests exercise it.

    Args:
        loss_scale (str | float | dict): see ``AmpOptimWrapper``.
        dtype (str | torch.dtype, optional): autocast dtype.
        use_fsdp (bool): see ``AmpOptimWrapper``.
        **kwargs: see :class:`mmengine.optim.OptimWrapper`.

    Attributes:
        num_skipped (int): updates skipped so far in this process.
    """

    def __init__(self,
                 loss_scale: Union[str, float, dict] = 'dynamic',
                 dtype: Union[str, torch.dtype, None] = None,
                 use_fsdp: bool = False,
                 **kwargs) -> None:
        self.num_skipped = 0
        if _has_accelerator():
            super().__init__(
                loss_scale=loss_scale, dtype=dtype, use_fsdp=use_fsdp,
                **kwargs)
            if is_bf16(self.cast_dtype):  # bfloat16 needs no loss scaling
                self.loss_scaler = NoLossScaler()
            return
        # CPU: the same attributes as AmpOptimWrapper, with a CPU scaler
        OptimWrapper.__init__(self, **kwargs)
        self._scale_update_param = None
        if loss_scale == 'dynamic':
            self.loss_scaler = torch.amp.GradScaler('cpu')
        elif isinstance(loss_scale, float):
            self._scale_update_param = loss_scale
            self.loss_scaler = torch.amp.GradScaler(
                'cpu', init_scale=loss_scale)
        elif isinstance(loss_scale, dict):
            self.loss_scaler = torch.amp.GradScaler('cpu', **loss_scale)
        else:
            raise TypeError('NaNSafeAmpOptimWrapper: loss_scale must be '
                            '"dynamic", a float or a dict, got '
                            f'{loss_scale!r}')
        if isinstance(dtype, str):
            if dtype not in ('float16', 'bfloat16'):
                raise ValueError('NaNSafeAmpOptimWrapper: dtype must be '
                                 "'float16' or 'bfloat16' on the CPU, got "
                                 f'{dtype!r}')
            dtype = getattr(torch, dtype)
        self.cast_dtype = dtype
        if is_bf16(dtype):  # bfloat16 needs no loss scaling
            self.loss_scaler = NoLossScaler()

    @contextmanager
    def optim_context(self, model: torch.nn.Module):
        """Autocast context (CPU autocast when there is no accelerator)."""
        if _has_accelerator():
            with super().optim_context(model):
                yield
            return
        dtype = self.cast_dtype or torch.bfloat16
        with OptimWrapper.optim_context(self, model), torch.autocast(
                device_type='cpu', dtype=dtype):
            yield


#: optim_wrapper.type -> its mixed-precision counterpart (tools/train.py
#: --amp); AMP types map to themselves
AMP_COUNTERPART = {
    'OptimWrapper': 'AutoScaleAmpOptimWrapper',
    'AutoScaleAmpOptimWrapper': 'AutoScaleAmpOptimWrapper',
    'AmpOptimWrapper': 'AmpOptimWrapper',
    'NaNSafeOptimWrapper': 'NaNSafeAmpOptimWrapper',
    'NaNSafeAmpOptimWrapper': 'NaNSafeAmpOptimWrapper',
}


def amp_counterpart(wrapper_type: str) -> str:
    """The AMP optimizer wrapper that keeps ``wrapper_type``'s behaviour.

    Args:
        wrapper_type (str): ``optim_wrapper.type`` of a config.

    Returns:
        str: e.g. ``'NaNSafeAmpOptimWrapper'`` for
        ``'NaNSafeOptimWrapper'``, so ``--amp`` keeps NaN safety.
    """
    if wrapper_type not in AMP_COUNTERPART:
        raise ValueError(
            f'--amp: no mixed-precision counterpart is known for '
            f'optim_wrapper.type={wrapper_type!r}; expected one of '
            f'{sorted(AMP_COUNTERPART)}, or set an AMP wrapper type in the '
            'config yourself.')
    return AMP_COUNTERPART[wrapper_type]


def _wrappers(optim_wrapper) -> Sequence:
    if isinstance(optim_wrapper, OptimWrapperDict):
        return list(optim_wrapper.values())
    return [optim_wrapper]


@HOOKS.register_module()
class NaNGuardHook(Hook):
    """Stop training, or count skipped updates, on NaN/Inf losses.

    After every ``check_interval``-th training iteration the loss terms the
    model logged (the ``outputs`` dict given to ``after_train_iter``: the
    total ``loss`` and every ``loss_*`` term) are checked.

    - ``action='raise'``: a ``RuntimeError`` names the iteration, the epoch
      and the non-finite terms. The parameters have already been updated by
      then (the hook runs after the optimizer step), so the checkpoints
      written before this iteration are the last good ones.
    - ``action='skip'``: the update itself is skipped by the optimizer
      wrapper, which must be :class:`NaNSafeOptimWrapper` (or mmengine's
      ``AmpOptimWrapper``, whose gradient scaler skips steps with non-finite
      gradients); this is checked in ``before_train``. The hook then only
      logs and counts the bad iterations, and raises once
      ``max_consecutive_skips`` bad iterations follow each other (if set),
      since a run that skips every update is not training.

    Args:
        action (str): ``'raise'`` or ``'skip'``. Defaults to ``'raise'``.
        check_interval (int): check every this many iterations. Defaults
            to 1 (every iteration: one device->host read for all the loss
            terms together; the logged values are read once per logging
            window by ``DeferredRuntimeInfoHook``).
        max_consecutive_skips (int, optional): with ``'skip'``, raise after
            this many consecutive bad iterations. Defaults to None (never).
    """

    priority = 'NORMAL'

    def __init__(self,
                 action: str = 'raise',
                 check_interval: int = 1,
                 max_consecutive_skips: Optional[int] = None) -> None:
        if action not in ACTIONS:
            raise ValueError(f'NaNGuardHook: action must be one of {ACTIONS}, '
                             f'got {action!r}.')
        if not isinstance(check_interval, int) or check_interval < 1:
            raise ValueError('NaNGuardHook: check_interval must be a positive '
                             f'int, got {check_interval!r}.')
        if max_consecutive_skips is not None and max_consecutive_skips < 1:
            raise ValueError('NaNGuardHook: max_consecutive_skips must be a '
                             f'positive int or None, got '
                             f'{max_consecutive_skips!r}.')
        self.action = action
        self.check_interval = check_interval
        self.max_consecutive_skips = max_consecutive_skips
        self.num_bad = 0
        self._consecutive = 0

    def before_train(self, runner) -> None:
        """With ``action='skip'``, check that the wrapper can skip."""
        if self.action != 'skip':
            return
        for wrapper in _wrappers(runner.optim_wrapper):
            if not isinstance(wrapper, (NaNSafeOptimWrapper, AmpOptimWrapper)):
                raise TypeError(
                    "NaNGuardHook(action='skip') needs optim_wrapper.type="
                    "'NaNSafeOptimWrapper' (or 'AmpOptimWrapper') to skip "
                    'the update of a bad iteration; the config has '
                    f'{type(wrapper).__name__}.')

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        """Check the logged losses of this iteration."""
        if not self.every_n_train_iters(runner, self.check_interval):
            return
        bad = nonfinite_terms(outputs)
        if not bad:
            self._consecutive = 0
            return
        self.num_bad += 1
        self._consecutive += 1
        where = (f'iteration {runner.iter + 1} (epoch {runner.epoch + 1}, '
                 f'batch {batch_idx + 1})')
        terms = ', '.join(bad)
        if self.action == 'raise':
            raise RuntimeError(
                f'NaNGuardHook: non-finite loss at {where}: {terms}. '
                "Lower the learning rate, enable clip_grad, or use "
                "action='skip' with NaNSafeOptimWrapper.")
        print_log(
            f'NaNGuardHook: non-finite loss at {where}: {terms}; the update '
            f'was skipped ({self.num_bad} bad iterations so far).',
            logger='current',
            level=logging.WARNING)
        if self.max_consecutive_skips is not None and \
                self._consecutive >= self.max_consecutive_skips:
            raise RuntimeError(
                f'NaNGuardHook: {self._consecutive} consecutive non-finite '
                f'losses up to {where} (last: {terms}); stopping.')
