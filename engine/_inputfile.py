"""Input files a command reads whole besides its catalog (a config file, a ``--remove-ids`` list, a label table,
an audio file to extract): regular files only. Opening a FIFO waits for a writer that may never come, and a
device such as /dev/zero never ends, so either hung the command or filled the memory."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


def read_regular_file(path: Path) -> bytes:
    """The bytes of the regular file at ``path`` (a link to one too); an ``OSError`` whose ``strerror`` says why
    not: no such file, no permission, or not a regular file (a directory, a FIFO, a device, ...)."""
    mode = os.stat(path).st_mode  # before any open: opening a FIFO blocks
    if not stat.S_ISREG(mode):
        raise OSError(errno.EINVAL, f"not a regular file ({special_kind(path)})", str(path))
    return path.read_bytes()


def special_kind(path: Path) -> str:
    """What a path that is not a regular file is, for a message."""
    if path.is_symlink() and not path.exists():
        return "a link to a missing file"
    mode = path.stat().st_mode if path.exists() else path.lstat().st_mode if path.is_symlink() else 0
    if stat.S_ISDIR(mode):
        return "a directory"
    return "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device or other special file"
