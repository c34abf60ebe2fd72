# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Checkpoint loading that never runs code from the file.

A ``.pth`` file is a pickle; loading it with ``weights_only=False`` runs
whatever callables it names (``os.system`` included). Everything in this
package loads checkpoints through :func:`safe_torch_load`:

* ``torch.load(weights_only=True)`` (tensors, containers, numbers, strings)
  plus an allow-list, active only for the duration of that one call, of
  exactly the extra globals mmengine's Runner writes into a checkpoint:
  the message hub's ``HistoryBuffer`` (whose statistic methods are pickled
  as ``getattr(HistoryBuffer, 'min')``: a restricted ``getattr`` that
  resolves only those four names stands in for ``builtins.getattr``) and
  numpy arrays, scalars and dtypes;
* a file that needs anything else raises :class:`UntrustedCheckpointError`
  naming the file and the globals;
* such a file is loaded with full pickle only under an explicit opt-in:
  inside :func:`trust_checkpoints` (the tools' ``--trust-checkpoint`` flag,
  ``init_retriever(..., trust_checkpoint=True)``).

Nothing is registered with torch globally: code that does not go through
mmengine's local-file loader keeps torch's own defaults.
"""
import contextlib
import os.path as osp
import pickle
import threading
from typing import Iterator, List, Optional

import numpy as np
import torch

__all__ = [
    'UntrustedCheckpointError', 'safe_torch_load', 'trust_checkpoints',
    'checkpoint_allowed_globals', 'is_trusted', 'state_dict_mismatch',
    'check_state_dict'
]

#: HistoryBuffer methods mmengine pickles by reference.
_HISTORY_METHODS = ('min', 'max', 'current', 'mean')

_STATE = threading.local()


class UntrustedCheckpointError(pickle.UnpicklingError):
    """A checkpoint needs globals outside the allow-list (may run code)."""


def _restricted_getattr(obj, name: str, *default):
    """``getattr`` limited to what mmengine's message hub pickles."""
    from mmengine.logging.history_buffer import HistoryBuffer
    if obj is HistoryBuffer and name in _HISTORY_METHODS and not default:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'getattr({obj!r}, {name!r}) is not allowed in a checkpoint')


def checkpoint_allowed_globals() -> list:
    """The extra globals allowed while loading (``safe_globals`` format)."""
    from mmengine.logging.history_buffer import HistoryBuffer
    allowed = [
        HistoryBuffer,
        (_restricted_getattr, 'builtins.getattr'),
        np.ndarray,
        np.dtype,
    ]
    for mod in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        allowed.append((np._core.multiarray._reconstruct,
                        f'{mod}._reconstruct'))
        allowed.append((np._core.multiarray.scalar, f'{mod}.scalar'))
    # numpy >= 1.25 pickles a dtype's class as numpy.dtypes.<Name>DType
    for code in '?bBhHiIlLqQefdgFDGUSM' + 'm':
        try:
            cls = type(np.dtype(code))
        except TypeError:
            continue
        allowed.append((cls, f'numpy.dtypes.{cls.__name__}'))
    return allowed


@contextlib.contextmanager
def trust_checkpoints(*paths: str) -> Iterator[None]:
    """Opt in to full-pickle loading (which can run code) in this block.

    Args:
        *paths (str): the checkpoint files to trust; none: every checkpoint
            loaded in the block (``--trust-checkpoint`` of the tools).
    """
    previous = getattr(_STATE, 'trusted', None)
    if not paths or previous == 'all':
        _STATE.trusted = 'all'
    else:
        _STATE.trusted = set(previous or ()) | {
            osp.realpath(p) for p in paths}
    try:
        yield
    finally:
        _STATE.trusted = previous


def is_trusted(filename: str) -> bool:
    """Whether :func:`trust_checkpoints` covers ``filename`` right now."""
    trusted = getattr(_STATE, 'trusted', None)
    if trusted == 'all':
        return True
    return bool(trusted) and osp.realpath(filename) in trusted


def _pickle_streams(filename: str) -> List[bytes]:
    """The pickle bytes of a checkpoint: ``data.pkl`` of a zip file, or
    the file itself (legacy torch format, plain pickle)."""
    import zipfile
    if zipfile.is_zipfile(filename):
        with zipfile.ZipFile(filename) as zf:
            return [zf.read(n) for n in zf.namelist()
                    if n.endswith('.pkl')]
    with open(filename, 'rb') as f:
        return [f.read()]


def _scan_globals(data: bytes) -> List[str]:
    """Every ``module.name`` a pickle stream imports, without running it.

    Follows ``GLOBAL`` and ``STACK_GLOBAL`` (whose two strings may come
    from the memo) through concatenated pickles (the legacy torch format
    writes several); stops quietly at damaged data.
    """
    import io
    import pickletools
    found: List[str] = []
    stream = io.BytesIO(data)
    while stream.tell() < len(data):
        memo: dict = {}
        strings: List[str] = []
        getattr_at = None  # a getattr global: name the attribute it gets
        try:
            for op, arg, _ in pickletools.genops(stream):
                if op.name == 'GLOBAL':
                    found.append(str(arg).replace(' ', '.'))
                elif op.name in ('SHORT_BINUNICODE', 'BINUNICODE',
                                 'UNICODE', 'BINUNICODE8'):
                    strings.append(arg)
                elif op.name == 'MEMOIZE' and strings:
                    memo[len(memo)] = strings[-1]
                elif op.name in ('BINPUT', 'LONG_BINPUT', 'PUT') and \
                        strings:
                    memo[arg] = strings[-1]
                elif op.name in ('BINGET', 'LONG_BINGET', 'GET') and \
                        isinstance(memo.get(arg), str):
                    strings.append(memo[arg])
                elif op.name == 'STACK_GLOBAL' and len(strings) >= 2:
                    found.append(f'{strings[-2]}.{strings[-1]}')
                elif op.name == 'REDUCE' and getattr_at is not None:
                    # getattr(obj, name): name is the last string pushed
                    found[getattr_at] += f'(..., {strings[-1]!r})'
                    getattr_at = None
                if op.name in ('GLOBAL', 'STACK_GLOBAL') and found and \
                        found[-1].endswith('.getattr'):
                    getattr_at = len(found) - 1
        except Exception:  # noqa: BLE001  damaged or not a pickle
            break
    return list(dict.fromkeys(found))


def _all_globals(filename: str) -> List[str]:
    """Every global the checkpoint's pickle(s) import."""
    try:
        return list(dict.fromkeys(
            n for data in _pickle_streams(filename)
            for n in _scan_globals(data)))
    except (OSError, ValueError):
        return []


def _unsafe_globals(filename: str) -> List[str]:
    """The globals of a checkpoint outside the allow-list."""
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
    except Exception:  # noqa: BLE001  not a zip checkpoint
        names = []
    if not names:
        names = _all_globals(filename)
    allowed = {
        g[1] if isinstance(g, tuple) else f'{g.__module__}.{g.__qualname__}'
        for g in checkpoint_allowed_globals()
    }
    try:  # what torch's weights-only unpickler accepts by itself
        from torch._weights_only_unpickler import _get_allowed_globals
        allowed |= set(_get_allowed_globals())
    except ImportError:
        pass
    return [n for n in dict.fromkeys(names)
            if n not in allowed and not n.startswith('torch._utils.')]


def safe_torch_load(filename: str,
                    map_location=None,
                    trust: Optional[bool] = None):
    """Load a local checkpoint without running code from it.

    Args:
        filename (str): the file.
        map_location: as in ``torch.load``.
        trust (bool, optional): ``True`` loads with full pickle (runs code
            the file names: only for files you trust); ``None`` (default)
            trusts the file only inside :func:`trust_checkpoints`.

    Returns:
        The loaded object.

    Raises:
        UntrustedCheckpointError: the file needs globals outside the
            allow-list; the message names the file and the globals.
    """
    if trust is None:
        trust = is_trusted(filename)
    if trust:
        return torch.load(
            filename, map_location=map_location, weights_only=False)
    try:
        with torch.serialization.safe_globals(checkpoint_allowed_globals()):
            return torch.load(
                filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        names = _unsafe_globals(filename)
        context = err.__context__
        if isinstance(context, pickle.UnpicklingError) and \
                'is not allowed in a checkpoint' in str(context):
            # the restricted getattr: name the call it refused
            what = (f'needs builtins.getattr outside the allow-list: '
                    f'{context}')
        elif names:
            what = f'needs globals outside the allow-list: {", ".join(names)}'
        else:
            used = ', '.join(_all_globals(filename)) or 'none found'
            what = (f'cannot be loaded safely (globals it names: {used}; '
                    f'{err})')
        raise UntrustedCheckpointError(
            f'checkpoint {filename!r} {what}. Loading it could run code '
            'from the file, so it was refused. Load it only if you trust '
            'its source: pass --trust-checkpoint to the tools, or '
            'trust_checkpoint=True to the API (init_retriever, '
            'rsitr_mm.utils.trust_checkpoints()).') from None


def state_dict_mismatch(model: torch.nn.Module, state_dict: dict) -> dict:
    """Keys of ``state_dict`` that do not fit ``model``.

    A ``module.`` prefix (DDP) is ignored, as mmengine strips it; BatchNorm
    ``num_batches_tracked`` counters may be missing.

    Returns:
        dict: ``missing`` (model keys absent from the checkpoint),
        ``unexpected`` (checkpoint keys the model lacks) and ``shape``
        (``[(key, checkpoint shape, model shape)]``); all empty on a match.
    """
    from mmengine.model import is_model_wrapper
    if is_model_wrapper(model):
        model = model.module
    if 'state_dict' in state_dict and isinstance(state_dict['state_dict'],
                                                 dict):
        state_dict = state_dict['state_dict']
    ckpt = {(k[7:] if k.startswith('module.') else k): v
            for k, v in state_dict.items()}
    own = model.state_dict()
    # tables sized by the data (BiGRU vocabulary, OSFCM prototypes) that a
    # module built without its data takes, with their size, from the
    # checkpoint (``checkpoint_sized_keys``)
    sized = {
        f'{name}.{key}' if name else key
        for name, module in model.named_modules()
        if callable(getattr(module, 'checkpoint_sized_keys', None))
        for key in module.checkpoint_sized_keys()
    }
    missing = [k for k in own
               if k not in ckpt and not k.endswith('num_batches_tracked')]
    unexpected = [k for k in ckpt if k not in own]
    shape = [(k, tuple(ckpt[k].shape), tuple(own[k].shape)) for k in own
             if k in ckpt and k not in sized
             and isinstance(own[k], torch.Tensor)
             and isinstance(ckpt[k], torch.Tensor)
             and ckpt[k].shape != own[k].shape]
    return dict(missing=missing, unexpected=unexpected, shape=shape)


def check_state_dict(model: torch.nn.Module, state_dict: dict,
                     filename: str, hint: str = '--non-strict') -> None:
    """Raise ``ValueError`` unless ``state_dict`` fits ``model`` exactly.

    Args:
        model (nn.Module): the model to load into.
        state_dict (dict): a checkpoint (``state_dict`` inside) or weights.
        filename (str): the checkpoint file, for the message.
        hint (str): how to load non-strictly anyway, for the message.
    """
    bad = state_dict_mismatch(model, state_dict)
    if not any(bad.values()):
        return

    def _few(keys, n=8):
        keys = list(keys)
        more = f' (+{len(keys) - n} more)' if len(keys) > n else ''
        return ', '.join(map(str, keys[:n])) + more

    parts = []
    if bad['missing']:
        parts.append(f'{len(bad["missing"])} missing key(s): '
                     f'{_few(bad["missing"])}')
    if bad['unexpected']:
        parts.append(f'{len(bad["unexpected"])} unexpected key(s): '
                     f'{_few(bad["unexpected"])}')
    if bad['shape']:
        parts.append(f'{len(bad["shape"])} key(s) with another shape: ' +
                     _few(f'{k} (checkpoint {list(c)} vs model {list(m)})'
                          for k, c, m in bad['shape']))
    raise ValueError(
        f'checkpoint {filename!r} does not match the model: ' +
        '; '.join(parts) + f'. Is it the checkpoint of this config? Use '
        f'{hint} to load the matching keys only.')
