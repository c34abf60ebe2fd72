# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Atomic file writing, shared by every writer of the package."""
import errno
import os
import os.path as osp
import shutil
import tempfile

#: errors that mean "the disk (or the quota) is full"
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def atomic_write_bytes(data: bytes, filename: str) -> None:
    """Write ``data`` to ``filename`` through a temporary file + rename.

    The temporary file lives in the destination folder, is flushed and
    fsynced, then renamed over ``filename`` (``os.replace`` is atomic on
    POSIX and Windows): the path holds either its old content or the
    complete new one, and a failed write leaves no temporary file. A full
    disk raises ``OSError`` with the same errno and a message naming the
    file, its folder, the bytes to write and the space left.

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
    except BaseException as err:
        if osp.exists(tmp):
            os.remove(tmp)
        if isinstance(err, OSError) and err.errno in _FULL:
            try:
                free = f'{shutil.disk_usage(folder).free:,} bytes free'
            except OSError:
                free = 'free space unknown'
            raise OSError(
                err.errno,
                f'{os.strerror(err.errno)} while writing {filename!r} '
                f'({len(data):,} bytes) in folder {folder!r} ({free}); free '
                'space there or write elsewhere (e.g. --work-dir)') from err
        raise


def atomic_write_text(text: str, filename: str) -> None:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(text.encode('utf-8'), filename)
