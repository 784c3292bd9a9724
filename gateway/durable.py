"""The two steps the spool and the de-duplication log share to make an append durable.

An append either lands whole and fsynced, or the file is cut back to where it started (a short write on a
full disk must not leave a fragment for the retry to follow), and a new file's name, or a new folder's,
is durable only once its folder is fsynced.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path


def append_or_cut_back(fd: int, start: int, data: bytes, fsync: bool,
                       then: Callable[[], None] | None = None) -> None:
    """Write ``data`` at ``start`` (the file's end as we know it) and fdatasync it, then call ``then``;
    on ``OSError`` the file is cut back to ``start`` (or cut at the next call) and the error raised."""
    try:
        if os.lseek(fd, 0, os.SEEK_END) != start:
            os.ftruncate(fd, start)  # what a failed append left behind
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if fsync:
            os.fdatasync(fd)
            if then is not None:
                then()
    except OSError:
        try:
            os.ftruncate(fd, start)
        except OSError:
            pass  # cut again before the next append
        raise


def sync_folders(folders: Iterable[Path]) -> None:
    """Make each folder's entries durable (a new file's name; a new folder's, in its parent)."""
    for folder in folders:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
