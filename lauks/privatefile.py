"""Files that hold secrets (passwords, keys, ``.env``), created with their final mode: never a moment
in which another user of the machine could read them.

A new file is written to a ``mkstemp`` file in the same folder (created 0600 by the kernel), fsynced,
then renamed over the old one and the folder fsynced: the old content or the new, whole, even after a
crash. Folders that hold secrets are 0700.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def private_dir(path: Path, *, tighten_existing: bool = True) -> Path:
    """Create ``path`` (and missing parents) with mode 0700. An existing folder loses its group and
    other bits only with ``tighten_existing``: right for the folders Lauks keeps its secrets in, wrong
    for one a person named (``--out-dir ~`` must not lock up their home folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(path, PRIVATE_DIR)  # the umask can only take bits away from 0700
    except FileExistsError:
        if tighten_existing:
            tighten(path, PRIVATE_DIR)
    return path


def tighten(path: Path, mode: int = PRIVATE_FILE) -> None:
    """Make an existing file or folder readable by its owner only (a no-op if it already is, or is gone)."""
    try:
        current = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return
    if current & 0o077:
        os.chmod(path, mode)


def write_private(path: Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` as a 0600 file, atomically (a missing folder is created with the default
    mode: make it with ``private_dir`` first where it holds secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(raw)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
