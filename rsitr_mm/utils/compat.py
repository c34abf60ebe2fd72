# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Work-arounds for the measured traps of the stack, applied once.

``import rsitr_mm`` calls :func:`apply_compat_patches` before anything else,
so no user has to set an environment variable:

* newer releases than mmpretrain 1.2.0 knows: transformers 5 and numpy 2.4
  removed names that ``mmpretrain.models`` imports, so importing it fails.
  :func:`rsitr_mm.utils.stack_compat.apply_stack_compat` puts back only the
  missing ones, before anything imports ``mmpretrain.models`` (nothing is
  overwritten; on the tested pins it sets nothing).
* torch >= 2.6 loads checkpoints with ``weights_only=True`` by default, while
  mmengine 0.10.7 saves its message hub (``HistoryBuffer``, numpy scalars)
  inside every checkpoint; resuming, ``load_from`` and ``tools/test.py``
  then fail with ``UnpicklingError``. We re-register mmengine's local-file
  checkpoint scheme with :func:`load_from_local`, which still loads with
  ``weights_only=True`` and allows, for that one call, exactly the globals
  mmengine writes (see :mod:`rsitr_mm.utils.safe_load`). A file that needs
  more is refused unless the caller opted in (``--trust-checkpoint``,
  ``trust_checkpoint=True``). Loading is never weaker than torch's default.
* mmengine writes checkpoints straight to their final path; a killed run can
  leave a truncated file that ``--resume`` then fails on. Local checkpoints
  are written atomically instead (temporary file, fsync, rename).
"""
import os.path as osp

from .safe_load import safe_torch_load

_PATCHED = False


def load_from_local(filename: str, map_location=None):
    """mmengine's local-file checkpoint loader, without code execution."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return safe_torch_load(filename, map_location=map_location)


def apply_compat_patches() -> None:
    """Apply the stack work-arounds once per process (idempotent)."""
    global _PATCHED
    if _PATCHED:
        return
    # first: the imports below may import mmpretrain.models
    from .stack_compat import apply_stack_compat
    apply_stack_compat()
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(prefixes='', force=True)(
        load_from_local)
    # checkpoints are written to a temporary file and renamed into place,
    # so a killed run never leaves a half-written .pth behind
    from ..engine.hooks.atomic_checkpoint import patch_atomic_checkpoint
    patch_atomic_checkpoint()
    _PATCHED = True
