# Copyright (c) rsitr_mm contributors. All rights reserved.
"""A training-step counter that is saved in checkpoints."""
import torch


class WarmupCounterMixin:
    """Persistent step counter for warm-up schedules of losses and heads.

    The count lives in the int64 scalar buffer ``warmup_step`` (so it is in
    the state dict: a resumed run continues its warm-up instead of starting
    it again) and in the Python int ``_iter`` that the forward pass reads
    (so reading it never synchronises with the device). Counting increments
    the int only; the buffer is written from it when a state dict is made
    (no kernel per step, no host sync); loading a state dict sets ``_iter``
    from the loaded buffer. A state dict without the key (a
    checkpoint from before the counter was saved) leaves the count at 0 and
    reports the key missing as usual.

    Every process counts the same steps, so the buffer is equal across
    ranks (DDP buffer broadcasts and ``SyncBuffersHook`` averages leave it
    unchanged).

    Use: list the mixin before ``nn.Module`` in the bases and call
    :meth:`_init_warmup_counter` in ``__init__`` after
    ``super().__init__()``.
    """

    def _init_warmup_counter(self) -> None:
        self._iter = 0
        self.register_buffer('warmup_step',
                             torch.zeros((), dtype=torch.long))

    def _count_step(self) -> None:
        """One more training step."""
        self._iter += 1

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        self.warmup_step.fill_(self._iter)
        super()._save_to_state_dict(destination, prefix, keep_vars)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs) -> None:
        saved = state_dict.get(prefix + 'warmup_step')
        if isinstance(saved, torch.Tensor) and saved.numel() == 1:
            self._iter = int(saved)
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)
