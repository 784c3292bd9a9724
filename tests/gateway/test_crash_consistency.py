"""Crash consistency of the spool and the de-duplication log, systematically (STYLE.md, issue 10).

One scenario appends, replays and restarts a spool and a de-duplication log, with rewrites of the log.
It is run once to count the calls that change the disk (create, mkdir, write, pwrite, fsync,
fdatasync, ftruncate, truncate, rename, unlink), then once per call N with a fault at call N:

- ``kill``: the process dies at call N (a write at N lands a third); whatever reached the files stays.
- ``power``: as ``kill``, and what was not made durable is lost too: each file goes back to its
  content at its last fsync (a file never fsynced becomes empty), and every create, mkdir, rename
  and unlink not followed by an fsync of its folder is undone.
- ``enospc``: call N fails with ENOSPC (a write lands a third first); calls that need no space
  (unlink, truncate) are not failed. The scenario retries the failed operation once, as the gateway
  does, and goes on; ``enospc-kill`` instead dies right after the retry returned (what a failed
  write left behind must not cost the retried data, whatever rewrite would have repaired later).

After the fault, new objects on the same folders must show: every batch whose ``append`` returned is
replayed (in a chunk handed to ``advance`` before the crash, or after the restart), in order, each at
most once after the restart; nothing is replayed that was never appended; every key whose
``persist`` returned is known with its receipt time; and appending and persisting go on.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from gateway.dedup import Dedup, Key
from gateway.spool import Spool

BATCHES = 24
REAL = {name: getattr(os, name) for name in
        ("open", "close", "write", "pwrite", "fsync", "fdatasync", "ftruncate", "truncate", "replace", "rename",
         "unlink", "mkdir")}
NEEDS_SPACE = {"create", "mkdir", "write", "pwrite", "fsync", "fdatasync", "replace", "rename"}
T = TypeVar("T")


class Crash(BaseException):
    """The process is gone: no ``except OSError`` or ``except Exception`` may catch it."""


class Disk:
    """The os calls that change files under ``root``, counted, with a fault at call ``fault_at``."""

    def __init__(self, root: Path, fault_at: int = 0, mode: str = "kill") -> None:
        self.root = str(root)
        self.fault_at = fault_at
        self.mode = mode
        self.calls = 0
        self.kinds: dict[str, int] = {}
        self.fds: dict[int, str] = {}
        self.dirty: set[int] = set()  # inodes written since their last fsync
        self.durable: dict[int, bytes] = {}  # inode -> its content at its last fsync
        self.pending: list[tuple[str, str, Any]] = []  # (folder, kind, what to undo) not yet made durable
        self.faulted = ""

    def mine(self, path: Any) -> bool:
        return str(os.path.abspath(os.fspath(path))).startswith(self.root)

    def step(self, kind: str) -> bool:
        """Count a call; True if this is the one to fault (for a write: land a third, then fault)."""
        if self.mode == "enospc" and kind not in NEEDS_SPACE:
            self.kinds[kind] = self.kinds.get(kind, 0) + 1
            return False
        self.calls += 1
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        if self.calls == self.fault_at:
            self.faulted = kind
            return True
        return False

    def fault(self, kind: str) -> BaseException:
        if self.mode == "enospc":
            return OSError(errno.ENOSPC, f"No space left on device (injected at {kind})")
        return Crash(kind)

    def inode(self, fd: int) -> int:
        return os.fstat(fd).st_ino

    def durable_content(self, path: str) -> bytes:
        ino = os.stat(path).st_ino
        if ino in self.dirty:
            return self.durable.get(ino, b"")
        with open(path, "rb") as file:
            return file.read()

    def note(self, kind: str, path: Any, undo: Any) -> None:
        folder = os.path.dirname(os.path.abspath(os.fspath(path)))
        if folder.startswith(self.root):  # the test made the root itself
            self.pending.append((folder, kind, undo))

    # --- the wrapped calls --------------------------------------------------------------------

    def open(self, path: Any, flags: int, mode: int = 0o777, **kw: Any) -> int:
        created = self.mine(path) and flags & os.O_CREAT and not os.path.exists(path)
        if created and self.step("create"):
            raise self.fault("create")
        fd: int = REAL["open"](path, flags, mode, **kw)
        if created:
            self.note("create", path, os.path.abspath(os.fspath(path)))
        if self.mine(path):
            self.fds[fd] = os.fspath(path)
            if flags & os.O_TRUNC:
                self.dirty.add(self.inode(fd))
        return fd

    def close(self, fd: int) -> None:
        self.fds.pop(fd, None)
        REAL["close"](fd)

    def _write(self, kind: str, fd: int, data: Any, *offset: int) -> int:
        if fd not in self.fds:
            return int(REAL[kind](fd, data, *offset))
        self.dirty.add(self.inode(fd))
        if self.step(kind):
            half = bytes(data)[: len(data) // 3]
            if half:
                REAL[kind](fd, half, *offset)
            raise self.fault(kind)
        return int(REAL[kind](fd, data, *offset))

    def write(self, fd: int, data: Any) -> int:
        return self._write("write", fd, data)

    def pwrite(self, fd: int, data: Any, offset: int) -> int:
        return self._write("pwrite", fd, data, offset)

    def _sync(self, kind: str, fd: int) -> None:
        if fd not in self.fds:
            REAL[kind](fd)
            return
        if self.step(kind):
            raise self.fault(kind)
        folder = os.path.abspath(self.fds[fd])
        if os.path.isdir(folder):
            self.pending = [entry for entry in self.pending if entry[0] != folder]
        else:  # no real fsync: the model keeps what it made durable
            ino = self.inode(fd)
            with open(f"/proc/self/fd/{fd}", "rb") as file:
                self.durable[ino] = file.read()
            self.dirty.discard(ino)

    def fsync(self, fd: int) -> None:
        self._sync("fsync", fd)

    def fdatasync(self, fd: int) -> None:
        self._sync("fdatasync", fd)

    def ftruncate(self, fd: int, length: int) -> None:
        if fd in self.fds:
            self.dirty.add(self.inode(fd))
            if self.step("ftruncate"):
                raise self.fault("ftruncate")
        REAL["ftruncate"](fd, length)

    def truncate(self, path: Any, length: int) -> None:
        if self.mine(path):
            self.dirty.add(os.stat(path).st_ino)
            if self.step("truncate"):
                raise self.fault("truncate")
        REAL["truncate"](path, length)

    def _namespace(self, kind: str, *paths: Any, **kw: Any) -> None:
        mine = self.mine(paths[0]) and (kind != "unlink" or os.path.exists(paths[0]))
        if mine and self.step(kind):
            raise self.fault(kind)
        if mine:
            names = [os.path.abspath(os.fspath(p)) for p in paths]
            if kind == "unlink":
                self.note(kind, names[0], (names[0], self.durable_content(names[0])))
            else:
                old = self.durable_content(names[1]) if os.path.exists(names[1]) else None
                self.note(kind, names[1], (names[0], self.durable_content(names[0]), names[1], old))
        REAL[kind](*paths, **kw)

    def replace(self, src: Any, dst: Any, **kw: Any) -> None:
        self._namespace("replace", src, dst, **kw)

    def rename(self, src: Any, dst: Any, **kw: Any) -> None:
        self._namespace("rename", src, dst, **kw)

    def unlink(self, path: Any, **kw: Any) -> None:
        self._namespace("unlink", path, **kw)

    def mkdir(self, path: Any, mode: int = 0o777, **kw: Any) -> None:
        created = self.mine(path) and not os.path.exists(path)
        if created and self.step("mkdir"):
            raise self.fault("mkdir")
        REAL["mkdir"](path, mode, **kw)
        if created:
            self.note("mkdir", path, os.path.abspath(os.fspath(path)))

    def power_cut(self) -> None:
        """Every file back to what its last fsync made durable, then every change of a folder not
        followed by an fsync of that folder undone, the latest first."""
        for folder, _, names in os.walk(self.root):
            for name in names:
                path = os.path.join(folder, name)
                ino = os.stat(path).st_ino
                if ino in self.dirty:
                    with open(path, "wb") as file:
                        file.write(self.durable.get(ino, b""))
        for _, kind, undo in reversed(self.pending):
            if kind == "create" and os.path.isfile(undo):
                REAL["unlink"](undo)
            elif kind == "mkdir":
                shutil.rmtree(undo, ignore_errors=True)
            elif kind == "unlink":
                Path(undo[0]).write_bytes(undo[1])
            elif kind in ("replace", "rename"):
                source, content, target, old = undo
                Path(source).write_bytes(content)
                if old is None:
                    Path(target).unlink(missing_ok=True)
                else:
                    Path(target).write_bytes(old)

    def forget_fds(self) -> None:
        for fd in list(self.fds):
            REAL["close"](fd)
        self.fds.clear()


@contextmanager
def wrapped(disk: Disk) -> Iterator[Disk]:
    with pytest.MonkeyPatch.context() as patch:
        for name in REAL:
            patch.setattr(os, name, getattr(disk, name))
        yield disk


@dataclass
class Journal:
    """What the scenario was told had succeeded: kept in the test's memory across the crash."""

    attempted: list[int] = field(default_factory=list)
    acked: list[int] = field(default_factory=list)
    delivered: list[int] = field(default_factory=list)  # in a chunk handed to advance
    seen: dict[Key, int] = field(default_factory=dict)
    persisted: dict[Key, int] = field(default_factory=dict)


def batch_ids(body: bytes) -> list[int]:
    return [int(line.split()[1][2:]) for line in body.decode().splitlines()]


def open_state(root: Path) -> tuple[Spool, Dedup]:
    return (Spool(root / "spool", fsync=True, segment_bytes=150),
            Dedup(root / "dedup", window=64, fsync=True, compact_bytes=300))


def scenario(root: Path, journal: Journal, then_kill: bool = False) -> None:
    def once_more(operation: Callable[[], T]) -> T:
        try:
            return operation()
        except OSError:  # the injected full disk: the gateway retries
            result = operation()
            if then_kill:
                raise Crash("killed after the retry") from None
            return result

    spool, dedup = open_state(root)
    for i in range(BATCHES):
        if i == 12:  # a clean restart halfway: recovery's own writes are crash points too
            spool.close()
            dedup.close()
            spool, dedup = open_state(root)
        for key in [("s", f"k{i % 3}", 1 + i // 8, i), ("s", "k9", 7, i)]:
            journal.seen.setdefault(key, dedup.see(key, 1_000 + i).received_ms)
        once_more(dedup.persist)
        journal.persisted.update(journal.seen)
        body = b"m v=%d %d\n" % (i, i)
        journal.attempted.append(i)
        once_more(lambda: spool.append(body, 1))  # noqa: B023 (called at once)
        journal.acked.append(i)
        if i % 4 == 3:  # a partial drain, a full one now and then (which starts a fresh segment)
            for _ in range(2 if i % 8 == 3 else 99):
                chunk = spool.peek(max_bytes=30)
                if chunk is None:
                    break
                journal.delivered += batch_ids(chunk.body)  # written to InfluxDB: the caller advances
                once_more(lambda: spool.advance(chunk))  # noqa: B023 (called at once)
    spool.close()
    dedup.close()


def check_after_restart(root: Path, journal: Journal) -> None:
    spool = Spool(root / "spool", fsync=False)
    replayed = []
    while (chunk := spool.peek(max_bytes=30)) is not None:
        replayed += batch_ids(chunk.body)
        spool.advance(chunk)
    assert replayed == sorted(set(replayed)), f"out of order or twice after the restart: {replayed}"
    assert set(replayed) <= set(journal.attempted), "replayed a batch never appended"
    lost = [i for i in journal.acked if i not in journal.delivered and i not in replayed]
    assert not lost, f"acknowledged batches lost: {lost}"
    spool.append(b"m v=999 999\n", 1)
    chunk = spool.peek()
    assert chunk is not None and batch_ids(chunk.body) == [999]
    spool.close()
    dedup = Dedup(root / "dedup", window=64, fsync=False)
    for key, received_ms in journal.seen.items():
        seen = dedup.see(key, 5)
        if key in journal.persisted:
            assert not seen.new, f"{key} was persisted and is forgotten"
        assert seen.new or seen.received_ms == received_ms, f"{key} known with another receipt time"
    assert dedup.see(("s", "never", 1, 1), 5).new
    dedup.persist()
    dedup.close()


def run(root: Path, fault_at: int, mode: str) -> tuple[Disk, Journal]:
    disk = Disk(root, fault_at, mode.split("-")[0])
    journal = Journal()
    with wrapped(disk):
        try:
            scenario(root, journal, then_kill=mode.endswith("-kill"))
        except Crash:
            pass
    disk.forget_fds()
    if mode == "power" and disk.faulted:
        disk.power_cut()
    return disk, journal


@pytest.mark.parametrize("mode", ["kill", "power", "enospc", "enospc-kill"])
def test_a_fault_at_every_disk_call_loses_no_acknowledged_batch_and_no_persisted_key(
        tmp_path: Path, mode: str) -> None:
    clean, _ = run(tmp_path / "clean", 0, mode)
    expected = {"create", "write", "fdatasync", "fsync", "replace"} | ({"mkdir"} if mode.startswith("enospc") else
                                                                       {"pwrite", "unlink", "mkdir"})
    assert expected <= set(clean.kinds), clean.kinds
    for n in range(1, clean.calls + 1):
        root = tmp_path / f"{mode}{n}"
        disk, journal = run(root, n, mode)
        assert disk.faulted, f"call {n} of {clean.calls} was not reached"
        try:
            check_after_restart(root, journal)
        except AssertionError as error:
            raise AssertionError(f"{mode} at call {n} ({disk.faulted}): {error}") from None
