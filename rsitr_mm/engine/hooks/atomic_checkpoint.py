# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Atomic checkpoint writing for local files.

mmengine 0.10.7 serialises a checkpoint to memory and writes the bytes
straight to the final path with ``open(path, 'wb')``. A process killed (OOM,
pre-emption, SIGKILL) during that write leaves a truncated ``epoch_N.pth``
that ``--resume`` later fails to load. :func:`atomic_save_checkpoint` writes
local checkpoints to a temporary file in the same folder, flushes it to disk
and renames it over the final path (``os.replace`` is atomic on POSIX and
Windows), so the final path holds either the old file or the complete new
one. Remote back-ends (``s3://``, ``pavi://``...) keep mmengine's behaviour.

:func:`patch_atomic_checkpoint` installs it in place of mmengine's
``save_checkpoint`` (used by ``Runner.save_checkpoint`` and hence by
``CheckpointHook``); it is idempotent.
"""
import io
from typing import Optional

import torch

from ...utils.fileio import atomic_write_bytes

_ORIGINAL = None


def _is_local(filename: str, file_client_args, backend_args) -> bool:
    if file_client_args is not None:
        return False
    if backend_args and backend_args.get('backend', 'local') != 'local':
        return False
    return '://' not in str(filename)


def atomic_save_checkpoint(checkpoint: dict,
                           filename: str,
                           file_client_args: Optional[dict] = None,
                           backend_args: Optional[dict] = None) -> None:
    """Drop-in for ``mmengine.runner.checkpoint.save_checkpoint``.

    Local paths are written atomically (see the module doc); anything else
    is handed to mmengine's original function.

    Args:
        checkpoint (dict): what to save.
        filename (str): destination.
        file_client_args (dict, optional): deprecated mmengine argument.
        backend_args (dict, optional): mmengine file back-end arguments.
    """
    if not _is_local(filename, file_client_args, backend_args):
        from mmengine.runner import checkpoint as ckpt_mod
        original = _ORIGINAL or ckpt_mod.save_checkpoint
        return original(checkpoint, filename, file_client_args, backend_args)
    with io.BytesIO() as buf:
        torch.save(checkpoint, buf)
        atomic_write_bytes(buf.getvalue(), str(filename))


def patch_atomic_checkpoint() -> None:
    """Make mmengine's Runner write local checkpoints atomically.

    Replaces ``save_checkpoint`` in ``mmengine.runner.checkpoint``, in
    ``mmengine.runner.runner`` (which imported it by name) and in the
    ``mmengine.runner`` package (imported lazily by ``CheckpointHook`` for
    published checkpoints). Idempotent.
    """
    global _ORIGINAL
    import mmengine.runner as runner_pkg
    from mmengine.runner import checkpoint as ckpt_mod
    from mmengine.runner import runner as runner_mod
    if _ORIGINAL is None:
        _ORIGINAL = ckpt_mod.save_checkpoint
    for module in (ckpt_mod, runner_mod, runner_pkg):
        module.save_checkpoint = atomic_save_checkpoint
