# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Pieces shared by the benchmarks that time mmengine's Runner against a
plain loop (``framework_overhead.py``, ``train_throughput.py``)."""
import time

import torch
from mmengine.hooks import Hook


class PreparedBatches(torch.utils.data.Dataset):
    """Already collated batches, returned as they are (use with
    ``DataLoader(..., batch_size=1, collate_fn=first_item)``)."""

    def __init__(self, batches):
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, idx):
        return self.batches[idx]


def check_device(device: str) -> None:
    """Exit with one message when ``--device`` cannot be honoured: CUDA
    asked for without a GPU, or the CPU asked for while a GPU is visible
    (mmengine's Runner would pick the GPU, the plain loop would not)."""
    if device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: no CUDA device available')
    if device == 'cpu' and torch.cuda.is_available():
        raise SystemExit('the Runner picks the GPU when one is visible: '
                         'use --device cuda, or hide it with '
                         'CUDA_VISIBLE_DEVICES=')


def first_item(items):
    """Collate function that unwraps a batch of one prepared batch."""
    return items[0]


class StampHook(Hook):
    """Record the time at the very end of every training iteration (and at
    the start of the epoch); with ``sync`` the GPU is synchronised first.

    ``stamps`` holds wall-clock times (``time.perf_counter``), ``cpu_stamps``
    the CPU time of the process (``time.process_time``) at the same points.
    """
    priority = 'LOWEST'

    def __init__(self, sync: bool):
        self.sync, self.stamps, self.cpu_stamps = sync, [], []

    def before_train_epoch(self, runner):
        self._stamp()

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self._stamp()

    def _stamp(self):
        if self.sync:
            torch.cuda.synchronize()
        self.stamps.append(time.perf_counter())
        self.cpu_stamps.append(time.process_time())
