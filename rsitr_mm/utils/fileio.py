# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Atomic file writing, shared by every writer of the package."""
import os
import os.path as osp
import tempfile


def atomic_write_bytes(data: bytes, filename: str) -> None:
    """Write ``data`` to ``filename`` through a temporary file + rename.

    The temporary file lives in the destination folder, is flushed and
    fsynced, then renamed over ``filename`` (``os.replace`` is atomic on
    POSIX and Windows): the path holds either its old content or the
    complete new one, and a failed write leaves no temporary file.

    Args:
        data (bytes): the content.
        filename (str): final local path; its folder is created.
    """
    folder = osp.dirname(osp.abspath(filename))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix='.' + osp.basename(filename) + '.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, filename)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_text(text: str, filename: str) -> None:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(text.encode('utf-8'), filename)
