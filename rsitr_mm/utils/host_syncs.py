# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Count the tensor calls that make the host wait for the device.

On a GPU, reading a value (``.item()``, ``.tolist()``, ``bool(t)``,
``float(t)``, ``.cpu()``, ``.numpy()``) and copying with
``non_blocking=False`` block the host until the device has caught up. On a
CPU none of them waits, but the same calls are made, so counting them on a
CPU tells how many a training step will make on a GPU.
:class:`HostSyncCounter` is a ``TorchFunctionMode`` that counts them (by
call site) while it is active. ``torch.cuda.set_sync_debug_mode`` is the
GPU-side check.

Counted: the reads above, and copies between two devices without
``non_blocking=True`` (``.to``/``.copy_``/``.cuda``). On a CPU-only
machine the copies are same-device no-ops and are not counted: the CPU
count is the count of reads (the batch copies' ``non_blocking`` is checked
by the GPU run). Not counted either: reads inside the packed-sequence code
of ``torch.nn`` (``batch_sizes`` is a host tensor on every device). Not counted: copies marked ``non_blocking=True``,
dtype-only conversions, ``.to(other_tensor)``. A read of a tensor that
lives on the host by design (a host-side length vector) is counted too:
keep such code from calling these methods when the tensor is already on
the host, or read it with :func:`host_array`, which refuses device tensors.
"""
import os.path as osp
import traceback
from collections import Counter
from typing import Optional

import torch
from torch.overrides import TorchFunctionMode

_T = torch.Tensor
READS = {
    _T.item: 'item', _T.tolist: 'tolist', _T.cpu: 'cpu', _T.numpy: 'numpy',
    _T.__bool__: 'bool', _T.__float__: 'float', _T.__int__: 'int',
    _T.__index__: 'index'
}
COPIES = {_T.to: 'to', _T.copy_: 'copy_', _T.cuda: 'cuda'}


#: files whose reads are of host tensors by design (a ``PackedSequence``
#: keeps ``batch_sizes`` on the host on every device; :func:`host_array`
#: refuses anything but a host tensor)
HOST_BY_DESIGN = ('torch/nn/modules/rnn.py', 'torch/nn/utils/rnn.py',
                  'rsitr_mm/utils/host_syncs.py')


def host_array(tensor: torch.Tensor):
    """The values of a tensor that lives on the host by design (e.g. a
    batch field the data preprocessor keeps there), as a numpy array.

    Not counted by :class:`HostSyncCounter`: it refuses a tensor on any
    other device, where the read would make the host wait.

    Args:
        tensor (Tensor): a CPU tensor.

    Returns:
        numpy.ndarray: its values (shared memory, no copy).
    """
    if tensor.device.type != 'cpu':
        raise ValueError('host_array: expected a host (CPU) tensor, got one '
                         f'on {tensor.device}; reading it would block.')
    return tensor.numpy()


def _target_device(args, kwargs) -> Optional[torch.device]:
    for a in list(args) + [kwargs.get('device')]:
        if isinstance(a, bool) or a is None:
            continue
        if isinstance(a, (torch.device, str, int)):
            try:
                return torch.device(a)
            except (RuntimeError, TypeError):
                continue
    return None


def _same_device(tensor: torch.Tensor, device: torch.device) -> bool:
    if tensor.device.type != device.type:
        return False
    return device.index is None or tensor.device.index in (None,
                                                           device.index)


#: Library code whose host syncs are counted apart (``upstream``):
#: transformers 5's SDPA mask builder reads ``padding_mask.all()`` on the
#: host to decide whether a causal mask can be skipped
#: (``masking_utils._ignore_causal_mask_sdpa``), once per CLIP text
#: forward; transformers 4.51 has no such read.
UPSTREAM = (osp.join('transformers', 'masking_utils.py'), )


class HostSyncCounter(TorchFunctionMode):
    """Count host-blocking tensor calls while active (see module doc).

    Attributes:
        count (int): Calls counted so far (ours: the budgeted ones).
        by_site (Counter): ``'kind file:line'`` of the first frame outside
            torch -> calls.
        upstream (int): Calls made inside another library's code listed in
            :data:`UPSTREAM`, counted apart (they are not ours to remove);
            their sites are in ``by_site`` too.
    """

    def __init__(self, record_sites: bool = True) -> None:
        super().__init__()
        self.count = 0
        self.upstream = 0
        self.by_site: Counter = Counter()
        self.record_sites = record_sites

    def reset(self) -> int:
        """Zero the counters; return the count before."""
        n, self.count = self.count, 0
        self.by_site.clear()
        return n

    def _kind(self, func, args, kwargs) -> Optional[str]:
        if func in READS:
            caller = self._caller()
            if any(caller.endswith(f) for f in HOST_BY_DESIGN):
                return None
            return READS[func]
        if func in COPIES and not kwargs.get('non_blocking', False):
            rest = args[1:]
            if func is _T.copy_:
                # dst.copy_(src): blocking between host and device only
                src = rest[0] if rest else None
                if (isinstance(src, torch.Tensor) and len(rest) < 2
                        and src.device != args[0].device):
                    return 'copy_'
                return None
            if len(rest) >= 2 and rest[-1] is True:
                return None  # .to(device, dtype, True): non-blocking
            if func is _T.cuda:
                return 'cuda'
            device = _target_device(rest, kwargs)
            if device is not None and not _same_device(args[0], device):
                return COPIES[func]
        return None

    @staticmethod
    def _caller() -> str:
        """File of the frame that called the tensor method."""
        # [caller, __torch_function__, _kind, _caller]
        frames = traceback.extract_stack(limit=4)
        return frames[0].filename if len(frames) == 4 else ''

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        kind = self._kind(func, args, kwargs)
        if kind is not None:
            site = self._site()
            if any(part in site for part in UPSTREAM):
                self.upstream += 1
            else:
                self.count += 1
            if self.record_sites:
                self.by_site[f'{kind} {site}'] += 1
        return func(*args, **kwargs)

    @staticmethod
    def _site() -> str:
        for frame in reversed(traceback.extract_stack(limit=12)[:-3]):
            if '/torch/' not in frame.filename:
                return f'{frame.filename}:{frame.lineno}'
        return '?'
