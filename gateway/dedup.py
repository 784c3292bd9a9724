"""De-duplication on (site, kit, boot, seq), kept in memory and in an append-only log on disk.

A message's key is recorded with the time it was first received; the log is written (and fsynced)
before the message's points are written anywhere, so after a crash or restart a redelivered copy is
re-dated with the same receipt time: its ``age`` samples land on the same timestamps and overwrite
themselves. Keys committed in this process (their points durable) are dropped outright.

What is remembered, in RAM and in the log alike (docs/gateway.md, "Stored once"):

- per (site, kit, boot), the keys whose ``seq`` is within ``window`` of the highest one seen;
- per (site, kit), the last ``BOOTS_PER_KIT`` boots seen (a kit resends from its current boot, or
  the one message its previous boot left unacknowledged), and whatever boot, the last
  ``PROTECTED_KEYS`` keys received in all (more than the broker can hold waiting for our
  acknowledgement, so everything it redelivers after a reconnect is known, even from a kit that
  raises ``boot`` at every message);
- keys received within ``max_age_s`` of the newest receipt time (not of the wall clock, so a gateway
  that was down for a week still recognises what the broker redelivers);
- at most ``max_keys`` keys in all, a boot's table counted as ``TABLE_COST`` keys: beyond it the
  superseded boots go first (least recently written first), then every kit's current boot is cut to
  a fair share, its oldest keys first.

A boot's keys are one ``array`` of receipt times indexed by ``seq`` (8 bytes a key); the log holds
runs of consecutive keys, one line each with a CRC, and is rewritten (a new file, fsynced, renamed)
once it has grown by as much as its live part.
"""

from __future__ import annotations

import errno
import logging
import os
import tempfile
import zlib
from array import array
from dataclasses import dataclass
from itertools import accumulate, pairwise
from pathlib import Path

from gateway.durable import append_or_cut_back, sync_folders

Key = tuple[str, str, int, int]  # site, kit, boot, seq
BOOTS_PER_KIT = 4
PROTECTED_KEYS = 16_384  # > LAUKS_GATEWAY_MAX_INFLIGHT (4000): the most held unacknowledged at once
TABLE_COST = 64  # a boot's table costs 470-580 bytes beyond its 8 bytes a key (measured with tracemalloc)
COMPACT_MIN_BYTES = 8 * 1024 * 1024  # the log is rewritten once it has grown by this much or its live size
COMPACT_RETRY_BYTES = 1024 * 1024  # after a failed rewrite (a full disk), try again this much later
EXPIRE_EVERY_MS = 60_000
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)

log = logging.getLogger("lauks.gateway")


@dataclass(frozen=True, slots=True)
class Seen:
    received_ms: int
    new: bool  # first time this key is seen
    committed: bool  # its points were made durable by this process: drop the copy


class _Boot:
    """The keys of one (site, kit, boot): ``values[seq - base]`` is ``(received_ms + 1) << 1 | committed``,
    0 for a seq not seen."""

    __slots__ = ("base", "boot", "hi", "kit", "last", "newest", "values")

    def __init__(self, kit: tuple[str, str], boot: int) -> None:
        self.kit = kit
        self.boot = boot
        self.base = 0
        self.hi = -1
        self.values = array("q")
        self.newest = -1  # the latest receipt time of its keys
        self.last = 0  # the number of keys received in all when it was last written to


def encode_run(site: str, kit: str, boot: int, seq: int, received_ms: list[int]) -> bytes:
    """One log line: ``site kit boot seq ms [delta ...] crc`` for keys seq, seq+1, ..."""
    text = f"{site} {kit} {boot} {seq} {received_ms[0]}"
    if len(received_ms) > 1:
        text += " " + " ".join([str(b - a) for a, b in pairwise(received_ms)])
    data = text.encode()
    return data + b" %08x\n" % zlib.crc32(data)


def decode_run(raw: bytes) -> tuple[str, str, int, int, list[int]] | None:
    """A log line back into (site, kit, boot, first seq, receipt times); None for a damaged line. Lines of
    five fields without a CRC are the format of earlier versions."""
    if not raw.endswith(b"\n"):
        return None
    parts = raw.split()
    try:
        if len(parts) == 6:  # one key: most appended lines
            if zlib.crc32(raw[: raw.rindex(b" ")]) != int(parts[5], 16):
                return None
            times = [int(parts[4])]
        elif len(parts) > 6:
            if zlib.crc32(raw[: raw.rindex(b" ")]) != int(parts[-1], 16):
                return None
            times = list(accumulate(map(int, parts[4:-1])))
        elif len(parts) == 5:
            times = [int(parts[4])]
        else:
            return None
        site, kit, boot, seq = parts[0].decode("ascii"), parts[1].decode("ascii"), int(parts[2]), int(parts[3])
    except (UnicodeDecodeError, ValueError):
        return None
    if boot < 0 or seq < 0 or min(times) < 0:
        return None
    return site, kit, boot, seq, times


class Dedup:
    def __init__(self, directory: Path | None, window: int = 4096, fsync: bool = True, *,
                 max_keys: int = 2_000_000, max_age_s: float = 7 * 86400,
                 compact_bytes: int = COMPACT_MIN_BYTES) -> None:
        """Load the log in ``directory`` (None: memory only) and rewrite it without what is beyond the
        bounds. Needs no free space: on a full disk the old log stays in use (rewritten later) and a
        missing folder is created on the first ``persist``; any other failure to create the folder
        is raised as ``OSError`` naming it."""
        self.window = window
        self.fsync = fsync
        self.max_keys = max_keys
        self.max_age_ms = int(max_age_s * 1000)
        self.compact_bytes = compact_bytes
        self.compaction_failures = 0
        self._slack = max(16, window // 8)  # a table's slots beyond its window, freed in one go
        self._tables: dict[tuple[str, str, int], _Boot] = {}
        self._kits: dict[tuple[str, str], list[_Boot]] = {}  # each kit's boots, least recently written first
        self._slots = 0  # the length of every table's array
        self._now = 0  # the newest receipt time seen
        self._received = 0  # keys recorded so far (their order, for PROTECTED_KEYS)
        self._expired_at = 0
        self._unwritten: list[tuple[Key, int]] = []
        self._directory = directory
        self._path: Path | None = None
        self._fd: int | None = None
        self._log_end = 0  # where the log's last whole line ends
        self._appended = 0  # bytes appended since the last rewrite
        self._compact_at = compact_bytes
        self._dir_dirty = False  # a new file whose name is not yet durable
        self._new_folders: list[Path] = []  # folders created whose names are not yet durable
        if directory is None:
            return
        self._path = directory / "keys.log"
        try:
            self._make_directory()
        except OSError as error:
            if error.errno not in NO_SPACE:
                raise self._folder_error(error) from error
            log.error("cannot create the de-duplication folder %s: the disk is full (%s); retrying at the next "
                      "write", directory, error.strerror)
            return
        for leftover in [*directory.glob("keys.*.tmp"), directory / "keys.tmp"]:
            leftover.unlink(missing_ok=True)  # a rewrite a crash interrupted
        self._load()
        self._try_compact()
        try:
            self._open_log()
        except OSError as error:
            if error.errno not in NO_SPACE:
                raise
            log.error("cannot open the de-duplication log %s: the disk is full; retrying at the next write",
                      self._path)

    def _folder_error(self, error: OSError) -> OSError:
        return OSError(error.errno, f"cannot create the de-duplication folder {self._directory}: {error.strerror} "
                                    "(LAUKS_GATEWAY_DEDUP_DIR)")

    # --- the pure part --------------------------------------------------------------------------

    def see(self, key: Key, now_ms: int) -> Seen:
        """Look a key up, recording it (with ``now_ms`` as its receipt time) if it is new."""
        site, kit, boot, seq = key
        table = self._table(site, kit, boot)
        if table is None:
            table = self._new_table(site, kit, boot)
        elif table.hi - self.window < seq <= table.hi and seq >= table.base:
            stored = table.values[seq - table.base]
            if stored:
                return Seen((stored >> 1) - 1, False, bool(stored & 1))
        if now_ms > self._now:
            self._now = now_ms
        if self._put(table, seq, now_ms):
            self._unwritten.append((key, now_ms))
        self._bound()
        return Seen(now_ms, True, False)

    def commit(self, keys: list[Key]) -> None:
        """The points of these messages are durable: later copies are dropped without a write."""
        for site, kit, boot, seq in keys:
            table = self._table(site, kit, boot)
            if table is not None and table.hi - self.window < seq <= table.hi and seq >= table.base:
                index = seq - table.base
                if table.values[index]:
                    table.values[index] |= 1

    def __len__(self) -> int:
        total = 0
        for table in self._all():
            live = table.values[max(0, table.hi - self.window + 1 - table.base):]
            total += len(live) - live.count(0)
        return total

    def _table(self, site: str, kit: str, boot: int) -> _Boot | None:
        return self._tables.get((site, kit, boot))

    def _all(self) -> list[_Boot]:
        return list(self._tables.values())

    def _new_table(self, site: str, kit: str, boot: int) -> _Boot:
        kit_key = (site, kit)
        boots = self._kits.get(kit_key)
        if boots is None:
            boots = self._kits[kit_key] = []
        table = self._tables[(site, kit, boot)] = _Boot(kit_key, boot)
        boots.append(table)
        while len(boots) > BOOTS_PER_KIT and self._received - boots[0].last >= PROTECTED_KEYS:
            self._drop(boots[0])
        return table

    def _put(self, table: _Boot, seq: int, received_ms: int) -> bool:
        """Record a key not seen yet; False if it is below its boot's window (not remembered)."""
        value = (received_ms + 1) << 1
        values = table.values
        before = len(values)
        if not before:
            table.base = table.hi = seq
            values.append(value)
        elif seq > table.hi:
            gap = seq - table.hi
            if gap >= self.window:  # every key of the table falls out of the window
                del values[:]
                table.base = seq
            elif gap > 1:
                values.frombytes(bytes(8 * (gap - 1)))
            values.append(value)
            table.hi = seq
            if len(values) > self.window + self._slack:
                cut = len(values) - self.window
                del values[:cut]
                table.base += cut
        elif seq <= table.hi - self.window:
            return False
        else:
            if seq < table.base:
                values[0:0] = array("q", bytes(8 * (table.base - seq)))
                table.base = seq
            if values[seq - table.base]:
                return False  # known already (a line repeated in the log)
            values[seq - table.base] = value
        self._slots += len(values) - before
        if received_ms > table.newest:
            table.newest = received_ms
        self._received += 1
        table.last = self._received
        return True

    def _drop(self, table: _Boot) -> None:
        del self._tables[(table.kit[0], table.kit[1], table.boot)]
        boots = self._kits[table.kit]
        boots.remove(table)
        if not boots:
            del self._kits[table.kit]
        self._slots -= len(table.values)

    def _cost(self) -> int:
        return self._slots + TABLE_COST * len(self._tables)

    def _bound(self) -> None:
        if self._now - self._expired_at >= EXPIRE_EVERY_MS:
            self._expire()
        if self._cost() > self.max_keys:
            self._shrink(self.max_keys * 7 // 8)

    def _expire(self) -> None:
        """Forget keys received more than ``max_age_s`` before the newest one."""
        self._expired_at = self._now
        cutoff = self._now - self.max_age_ms
        for table in self._all():
            if table.newest < cutoff:
                self._drop(table)
                continue
            values = table.values
            index = 0
            while index < len(values) and (not values[index] or (values[index] >> 1) - 1 < cutoff):
                index += 1
            if index:
                del values[:index]
                table.base += index
                self._slots -= index

    def _shrink(self, target: int) -> None:
        """Bring the cost down to ``target``: superseded boots first, then a fair share of the current ones."""
        self._expire()
        superseded = sorted((t for boots in self._kits.values() for t in boots[:-1]), key=lambda t: t.last)
        for table in superseded:
            if self._cost() <= target:
                return
            self._drop(table)
        current = sorted((boots[-1] for boots in self._kits.values()), key=lambda t: t.last)
        excess = len(current) - target // (TABLE_COST + 1)
        if excess > 0:  # too many kits for one key each: the longest silent go
            for table in current[:excess]:
                self._drop(table)
            current = current[excess:]
        if self._cost() <= target or not current:
            return
        budget = target - TABLE_COST * len(current)
        low, high = 1, max(len(t.values) for t in current)
        while low < high:  # the largest share every table can keep
            share = (low + high + 1) // 2
            if sum(min(len(t.values), share) for t in current) <= budget:
                low = share
            else:
                high = share - 1
        for table in current:
            cut = len(table.values) - low
            if cut > 0:
                del table.values[:cut]
                table.base += cut
                self._slots -= cut

    # --- the log ----------------------------------------------------------------------------------

    def persist(self) -> None:
        """Append the keys seen since the last call; call before their points are written. ``OSError``
        (a full disk) leaves the log as it was and the keys waiting: call again."""
        if not self._unwritten:
            return
        if self._path is None:
            self._unwritten.clear()
            return
        self._open_log()
        assert self._fd is not None
        data = self._encode(self._unwritten)
        fd, start = self._fd, self._log_end
        append_or_cut_back(fd, start, data, self.fsync, self._sync_directory if self._dir_dirty else None)
        self._dir_dirty = False
        self._log_end = start + len(data)
        self._appended += len(data)
        self._unwritten.clear()
        if self._appended >= self._compact_at:
            self._try_compact()

    def _encode(self, keys: list[tuple[Key, int]]) -> bytes:
        lines = []
        run: list[int] = []
        site = kit = ""
        boot = first = -1
        for (s, k, b, q), ms in keys:
            if q == first + len(run) and b == boot and k == kit and s == site:
                run.append(ms)
                continue
            if run:
                lines.append(encode_run(site, kit, boot, first, run))
            site, kit, boot, first, run = s, k, b, q, [ms]
        if run:
            lines.append(encode_run(site, kit, boot, first, run))
        return b"".join(lines)

    def _open_log(self) -> None:
        if self._fd is not None:
            return
        assert self._path is not None and self._directory is not None
        try:
            self._make_directory()
        except OSError as error:
            raise self._folder_error(error) from error
        created = not self._path.exists()
        self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if created:
            self._log_end = 0
            self._dir_dirty = True

    def _make_directory(self) -> None:
        assert self._directory is not None
        missing = [p for p in (self._directory, *self._directory.parents) if not p.exists()]
        self._directory.mkdir(parents=True, exist_ok=True)
        if missing:
            self._new_folders += missing
            self._dir_dirty = True

    def _sync_directory(self) -> None:
        """Make the folder's entries durable, and the folder's own name if it was just created."""
        assert self._directory is not None
        sync_folders([self._directory, *(p.parent for p in self._new_folders)])
        self._new_folders = []

    def _load(self) -> None:
        assert self._path is not None
        try:
            file = self._path.open("rb")
        except FileNotFoundError:
            return
        damaged = 0
        with file:
            for raw in file:
                if not raw.endswith(b"\n"):
                    break  # a line cut off by a crash: its message was never acknowledged
                self._log_end += len(raw)
                run = decode_run(raw)
                if run is None:
                    damaged += 1
                    continue
                site, kit, boot, seq, times = run
                table = self._table(site, kit, boot)
                if table is None:
                    table = self._new_table(site, kit, boot)
                newest = max(times)
                if newest > self._now:
                    self._now = newest
                if table.hi == seq - 1 and len(times) < self.window and table.values:
                    table.values.extend([(ms + 1) << 1 for ms in times])  # the common case, a run going on
                    table.hi += len(times)
                    table.newest = max(table.newest, newest)
                    self._received += len(times)
                    table.last = self._received
                    self._slots += len(times)
                    if len(table.values) > self.window + self._slack:
                        cut = len(table.values) - self.window
                        del table.values[:cut]
                        table.base += cut
                        self._slots -= cut
                else:
                    for index, ms in enumerate(times):
                        self._put(table, seq + index, ms)
                if self._cost() > self.max_keys:
                    self._shrink(self.max_keys * 7 // 8)
        if damaged:
            log.warning("the de-duplication log %s had %d damaged lines; they were skipped", self._path, damaged)
        self._expire()

    def _snapshot(self) -> bytes:
        """Every key remembered, as runs, the least recently written boot first: a restart that reads
        it back in that order knows which keys are the latest (``PROTECTED_KEYS``)."""
        lines = []
        for table in sorted(self._all(), key=lambda t: t.last):
            (site, kit), boot = table.kit, table.boot
            values, base = table.values, table.base
            index, end = max(0, table.hi - self.window + 1 - base), len(values)
            while index < end:
                if not values[index]:
                    index += 1
                    continue
                stop = index
                while stop < end and values[stop]:
                    stop += 1
                lines.append(encode_run(site, kit, boot, base + index,
                                        [(v >> 1) - 1 for v in values[index:stop]]))
                index = stop
        return b"".join(lines)

    def _try_compact(self) -> None:
        try:
            self._compact()
        except OSError as error:
            self.compaction_failures += 1
            self._compact_at = self._appended + COMPACT_RETRY_BYTES
            log.warning("cannot rewrite the de-duplication log %s yet (%s): it goes on growing until it can",
                        self._path, error)

    def _compact(self) -> None:
        """Rewrite the log with only the keys still remembered: a new file, fsynced, renamed over the old
        one; appends move to it only then. ``OSError`` leaves the old file and descriptor in use."""
        assert self._path is not None and self._directory is not None
        self._expire()
        data = self._snapshot()
        fd, tmp = tempfile.mkstemp(prefix="keys.", suffix=".tmp", dir=self._directory)
        new_fd = None
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if self.fsync:
                os.fsync(fd)
            new_fd = os.open(tmp, os.O_WRONLY | os.O_APPEND)
            os.replace(tmp, self._path)
        except OSError:
            os.close(fd)
            if new_fd is not None:
                os.close(new_fd)
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        os.close(fd)
        old, self._fd = self._fd, new_fd
        if old is not None:
            os.close(old)
        self._log_end = len(data)
        self._appended = 0
        self._compact_at = max(len(data), self.compact_bytes)
        self._dir_dirty = True  # the rename is durable once the folder is synced: before the next persist returns
        if self.fsync:
            try:
                self._sync_directory()
                self._dir_dirty = False
            except OSError as error:
                log.warning("cannot sync the de-duplication folder %s yet: %s", self._directory, error)

    def close(self) -> None:
        """Write what is waiting and close the log. A key that cannot be written now is dropped with a
        warning: its message's points were not written either, so it is received again."""
        try:
            self.persist()
        except OSError as error:
            log.warning("could not write %d de-duplication keys at shutdown: %s", len(self._unwritten), error)
        self._unwritten.clear()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
