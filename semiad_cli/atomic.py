"""Atomic file writes (temp file in the same folder + ``os.replace``), with no heavy imports.

A process killed mid-write leaves either the old file or the new one, never half of it:
run folders, caches, tables and checkpoints all write through here.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path`` (same folder, so the rename is atomic).

    A failed write raises an ``OSError`` that names ``path``: a bare ``write`` error names no file,
    and ``torch.save`` on a full disk raises a ``RuntimeError`` that does not say the disk is full.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:  # names the random temp file; the file meant is path
        raise _naming(err, path) from err
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except Exception as err:
        full = not isinstance(err, OSError) and _no_space_left(path.parent)
        Path(tmp).unlink(missing_ok=True)
        if full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from err
        if isinstance(err, OSError) and err.errno is not None and err.filename in (None, tmp):
            raise _naming(err, path) from err
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _naming(err: OSError, path: Path) -> OSError:
    """The same error (same errno, so the same OSError subclass) with ``path`` as its file name."""
    return OSError(err.errno, err.strerror or os.strerror(err.errno), str(path))


def _no_space_left(folder: Path) -> bool:
    try:
        return os.statvfs(folder).f_bavail == 0
    except OSError:
        return False


def write_text_atomic(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))
