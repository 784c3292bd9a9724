"""Frozen dataset files: built once by one writer, checked, made durable, then served for ever.

The first download of a frozen dataset's file streams the export to the client and, in the same pass,
into a temporary file of its own (``tempfile.mkstemp`` beside the target). Only when the export has
ended, the file has been fsynced and read back with the size and SHA-256 of what was sent, is it
renamed into place and the folder fsynced. Until then there is no file, so a crash, a cancelled
download or a full disk leaves either nothing (the next download builds it again) or the whole file.

One writer per file: an asyncio lock per path within a process, and an ``fcntl`` lock on
``.<name>.lock`` between processes sharing the folder. Whoever holds the lock also removes the
temporary files a crashed writer left; ``sweep()`` does so for every file at start-up.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import logging
import os
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from contextlib import aclosing, asynccontextmanager, contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

FILE_CHUNK = 1 << 16
LOCK_POLL_S = 0.05


class FileOps:
    """The file-system calls that change what is on disk, in one place so a test can crash at each of them."""

    def write(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def rename(self, source: str, target: str) -> None:
        os.replace(source, target)

    def unlink(self, path: str) -> None:
        os.unlink(path)


class FreezeFailed(Exception):
    """The file read back is not what was exported: it is not kept."""


def _temp_prefix(target: Path) -> str:
    return f".{target.name}."


def _lock_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.lock")


def _digest_of(path: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


class Freezer:
    """Serves and builds the frozen files of one folder."""

    def __init__(self, folder: Path, ops: FileOps | None = None) -> None:
        self.folder = folder
        self.ops = ops or FileOps()
        self._locks: dict[Path, asyncio.Lock] = {}
        self._waiting: dict[Path, int] = {}

    @asynccontextmanager
    async def _one_writer(self, target: Path) -> AsyncIterator[None]:
        lock = self._locks.setdefault(target, asyncio.Lock())
        self._waiting[target] = self._waiting.get(target, 0) + 1
        try:
            async with lock:
                fd = os.open(_lock_path(target), os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    while True:
                        try:
                            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                            break
                        except BlockingIOError:  # another process is building it
                            await asyncio.sleep(LOCK_POLL_S)
                    yield
                finally:
                    os.close(fd)  # releases the flock
        finally:
            self._waiting[target] -= 1
            if not self._waiting[target]:
                del self._waiting[target], self._locks[target]

    def _remove_temporaries(self, target: Path) -> None:
        """Temporary files of ``target`` left by a writer that died; only called holding its lock."""
        for stray in self.folder.glob(f"{_temp_prefix(target)}*.tmp"):
            try:
                self.ops.unlink(str(stray))
            except FileNotFoundError:
                pass

    def sweep(self) -> int:
        """At start-up: remove every temporary file whose target nobody is building. Returns how many."""
        removed = 0
        if not self.folder.is_dir():
            return 0
        for stray in self.folder.glob(".*.tmp"):
            name = stray.name[1:].rsplit(".", 2)[0]
            target = self.folder / name
            with self._try_flock(target) as held:
                if held and stray.exists():
                    self.ops.unlink(str(stray))
                    removed += 1
        return removed

    @contextmanager
    def _try_flock(self, target: Path) -> Iterator[bool]:
        fd = os.open(_lock_path(target), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    async def serve(self, target: Path, make: Callable[[], AsyncIterator[bytes]]) -> AsyncIterator[bytes]:
        """The file's bytes: from disk if it is kept, else built by ``make`` (and kept if all went well)."""
        # aclosing: an async for does not close what it iterates, and a download cancelled half way must
        # release the lock and remove its temporary file now, not when the generator is collected
        if target.exists():  # noqa: ASYNC240 (one stat on local disk, not worth a thread)
            async with aclosing(self._read(target)) as chunks:
                async for chunk in chunks:
                    yield chunk
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        async with self._one_writer(target):
            self._remove_temporaries(target)
            built = target.exists()  # noqa: ASYNC240 (built while we waited for the lock)
            async with aclosing(self._read(target) if built else self._build(target, make)) as chunks:
                async for chunk in chunks:
                    yield chunk

    async def _read(self, target: Path) -> AsyncGenerator[bytes, None]:
        with target.open("rb") as handle:
            while chunk := handle.read(FILE_CHUNK):
                yield chunk

    async def _build(self, target: Path, make: Callable[[], AsyncIterator[bytes]]) -> AsyncGenerator[bytes, None]:
        fd, temp = tempfile.mkstemp(dir=self.folder, prefix=_temp_prefix(target), suffix=".tmp")
        keeping = True
        kept = False
        digest = hashlib.sha256()
        size = 0
        try:
            async with aclosing(make()) as chunks:  # type: ignore[type-var]
                async for chunk in chunks:
                    if keeping:
                        try:
                            self.ops.write(fd, chunk)
                        except OSError as error:  # a full disk: the class still gets its file, it is not kept
                            log.warning("cannot keep the frozen file %s (%s); it will be built again next time",
                                        target.name, error)
                            keeping = False
                        digest.update(chunk)
                        size += len(chunk)
                    yield chunk
            if keeping:
                kept = await asyncio.to_thread(self._keep, fd, temp, target, size, digest.hexdigest())
        finally:
            os.close(fd)
            if not kept:
                try:
                    self.ops.unlink(temp)
                except OSError:
                    pass  # removed by the next writer of this file, or at start-up

    def _keep(self, fd: int, temp: str, target: Path, size: int, sha256: str) -> bool:
        """fsync, check against what was exported, rename into place, fsync the folder."""
        try:
            self.ops.fsync(fd)
            found = _digest_of(temp)
            if found != (size, sha256):
                raise FreezeFailed(f"read back {found[0]} bytes with SHA-256 {found[1][:12]}, exported {size} "
                                   f"bytes with {sha256[:12]}")
            self.ops.rename(temp, str(target))
        except (OSError, FreezeFailed) as error:
            log.warning("cannot keep the frozen file %s (%s); it will be built again next time", target.name, error)
            return False
        folder = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            self.ops.fsync(folder)
        except OSError as error:  # the rename may not survive a power cut; the file is whole either way
            log.warning("cannot fsync %s after keeping %s: %s", self.folder, target.name, error)
        finally:
            os.close(folder)
        return True
