"""The on-disk spool: batches of line protocol that could not reach InfluxDB, replayed in order.

Segment files ``<n>.spool`` hold records ``<bytes> <points> <crc32 hex>\\n<body>``, appended and
fsynced (with the folder, for a new segment) before the batch's messages are acknowledged. The
``cursor`` file says how far the replay got. Recovery errs towards replay, never towards skipping:
a record replayed twice overwrites itself in InfluxDB, one skipped is lost.

- The cursor is made durable *before* the segments it passes are deleted, so a crash between the
  two leaves only files that the next start deletes again.
- The cursor is two fixed 64-byte slots overwritten in turn (a generation number and a CRC each),
  so moving it needs no new disk space: a full disk can still be drained, which is what frees it.
  A torn slot is ignored and the other one, one step behind, is used.
- A segment is never appended to after a restart (the next number is always a fresh one), and the
  cursor names the CRC of the record it stops after: a cursor that does not fit its segment (past
  its end, not on a record boundary, a different record) replays that segment from its start.
- A record cut off by a crash was never acknowledged and is cut away at start-up; a damaged record
  inside a segment is skipped over (loudly) to the next whole record.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

from gateway.durable import append_or_cut_back, sync_folders

SEGMENT_BYTES = 32 * 1024 * 1024
SLOT_BYTES = 64
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_HEADER = re.compile(rb"(\d{1,12}) (\d{1,12}) ([0-9a-f]{8})\n")

log = logging.getLogger("lauks.gateway")


class SpoolCorrupt(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Chunk:
    body: bytes
    points: int
    records: int
    end: tuple[int, int]  # (segment, offset) just past the chunk
    last_crc: int = 0  # CRC of the chunk's last record, kept in the cursor to recognise its place


def encode_record(body: bytes, points: int) -> bytes:
    return b"%d %d %08x\n" % (len(body), points, zlib.crc32(body)) + body


Record = tuple[int, int, bytes]  # start offset, points, body


def decode_records(data: bytes, offset: int = 0, max_bytes: int | None = None) -> tuple[list[Record], int]:
    """Whole records of ``data`` from ``offset`` (stopping once ``max_bytes`` are taken, one record at
    least): [(start, points, body)] and where the last one ends."""
    out: list[Record] = []
    start = offset
    while max_bytes is None or not out or offset - start < max_bytes:
        newline = data.find(b"\n", offset, offset + 64)
        if newline < 0:
            break
        try:
            size_text, points_text, crc_text = data[offset:newline].split()
            size, points, crc = int(size_text), int(points_text), int(crc_text, 16)
        except ValueError:
            break
        body = data[newline + 1 : newline + 1 + size]
        if len(body) != size or zlib.crc32(body) != crc:
            break
        out.append((offset, points, body))
        offset = newline + 1 + size
    return out, offset


def record_end(record: Record) -> int:
    start, points, body = record
    return start + len(b"%d %d %08x\n" % (len(body), points, 0)) + len(body)


def next_record(data: bytes, offset: int) -> int | None:
    """Where the next whole record after damaged bytes at ``offset`` starts, if any does."""
    for match in _HEADER.finditer(data, offset + 1):
        if decode_records(data, match.start(), 1)[0]:
            return match.start()
    return None


def scan(data: bytes, offset: int = 0) -> tuple[list[Record], int, int]:
    """Every whole record from ``offset``, skipping damaged bytes between them: (records, end of the
    last one, damaged bytes skipped). Bytes after ``end`` hold no whole record (a torn tail)."""
    records: list[Record] = []
    skipped = 0
    while True:
        found, end = decode_records(data, offset)
        records += found
        offset = end
        if offset >= len(data):
            return records, offset, skipped
        resume = next_record(data, offset)
        if resume is None:
            return records, offset, skipped
        skipped += resume - offset
        offset = resume


def encode_slot(generation: int, segment: int, offset: int, crc: int) -> bytes:
    text = b"%016x %012d %012d %08x" % (generation, segment, offset, crc)
    return (text + b" %08x" % zlib.crc32(text)).ljust(SLOT_BYTES - 1) + b"\n"


def decode_cursor(data: bytes) -> tuple[int, int, int, int | None] | None:
    """(generation, segment, offset, CRC of the record before it) from a cursor file: the valid slot
    of the highest generation, or the one-line cursor of earlier versions (no CRC); None if neither."""
    best = None
    for start in range(0, len(data) - SLOT_BYTES + 1, SLOT_BYTES):
        fields = data[start : start + SLOT_BYTES].split()
        if len(fields) != 5:
            continue
        try:
            generation, segment, offset, crc, check = (int(fields[0], 16), int(fields[1]), int(fields[2]),
                                                       int(fields[3], 16), int(fields[4], 16))
        except ValueError:
            continue
        if zlib.crc32(b" ".join(fields[:4])) == check and (best is None or generation > best[0]):
            best = (generation, segment, offset, crc)
    if best is not None:
        return best
    try:
        segment_text, offset_text = data.split()
        return 0, int(segment_text), int(offset_text), None
    except ValueError:
        return None


class Spool:
    def __init__(self, directory: Path, fsync: bool = True, segment_bytes: int = SEGMENT_BYTES) -> None:
        """Open the spool in ``directory`` and recover whatever a crash left. Needs no free space: on a
        full disk the folder (if missing) is created on the first append; any other failure to create
        it is raised as ``OSError`` naming the folder."""
        self.directory = directory
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        self.depth_points = 0
        self.depth_records = 0
        self._cursor_path = directory / "cursor"
        self._cursor_fd: int | None = None
        self._generation = 0
        self._write_fd: int | None = None
        self._write_end = 0  # where the write segment's last whole record ends
        self._dir_dirty = False  # a new file whose name is not yet durable
        self._new_folders: list[Path] = []  # folders created whose names are not yet durable
        self._segments: list[int] = []  # segment files that may hold records, ascending
        self._doomed: list[int] = []  # replayed segments whose deletion failed: retried
        self.cursor = (0, 0)
        self._write_segment = 0
        if not self._make_directory(at_start=True):
            return
        self._recover()

    # --- start-up -------------------------------------------------------------------------------

    def _make_directory(self, at_start: bool = False) -> bool:
        try:
            missing = [p for p in (self.directory, *self.directory.parents) if not p.exists()]
            self.directory.mkdir(parents=True, exist_ok=True)
            if missing:
                self._new_folders += missing
                self._dir_dirty = True
            return True
        except OSError as error:
            if at_start and error.errno in NO_SPACE:
                log.error("cannot create the spool folder %s: the disk is full (%s); retrying when a batch "
                          "must be spooled", self.directory, error.strerror)
                return False
            raise OSError(error.errno, f"cannot create the spool folder {self.directory}: {error.strerror} "
                                       "(LAUKS_GATEWAY_SPOOL_DIR)") from error

    def _recover(self) -> None:
        (self.directory / "cursor.tmp").unlink(missing_ok=True)  # an earlier version's, never renamed
        try:
            saved = decode_cursor(self._cursor_path.read_bytes())
            if saved is None:
                log.warning("the spool cursor %s is unreadable: replaying every segment", self._cursor_path)
        except FileNotFoundError:
            saved = None
        generation, segment, offset, crc = saved if saved is not None else (0, 0, 0, None)
        self._generation = generation
        existing = self._list_segments()
        self._doomed = [n for n in existing if n < segment]  # before the cursor: replayed
        self._unlink_doomed()
        self._segments = [n for n in existing if n >= segment]
        start = (segment, 0)  # the cursor's segment may be gone: peek goes on to the next one
        start_crc = 0
        for number in self._segments:
            data = self._path(number).read_bytes()
            records, end, skipped = scan(data)
            first = 0
            if number == segment and offset:
                ends = {record_end(r): i for i, r in enumerate(records)}
                index = ends.get(offset)
                if index is not None and (crc is None or zlib.crc32(records[index][2]) == crc):
                    first = index + 1
                    start = (segment, offset)
                    start_crc = zlib.crc32(records[index][2])
                else:
                    log.warning("the spool cursor (%d, %d) does not fit segment %d: replaying it from its start",
                                segment, offset, number)
            if skipped:
                log.error("spool segment %s: %d damaged bytes skipped (whole records around them are kept)",
                          self._path(number), skipped)
            if end < len(data):
                try:  # a record cut off by a crash: never acknowledged
                    os.truncate(self._path(number), end)
                except OSError as error:
                    log.warning("cannot cut the torn end off %s (%s); it is skipped", self._path(number), error)
            self.depth_points += sum(r[1] for r in records[first:])
            self.depth_records += len(records) - first
        self.cursor = start
        # never append to a segment from before the restart: the next number is a fresh one
        self._write_segment = max([segment, *self._segments]) + 1
        try:  # both slots now, while there may be room: moving the cursor later needs none
            size = os.stat(self._cursor_path).st_size
        except FileNotFoundError:
            size = -1
        if size != 2 * SLOT_BYTES:
            try:
                self._write_cursor(*start, start_crc, whole=True)
            except OSError as error:
                if error.errno not in NO_SPACE:
                    raise
                log.error("cannot create the spool cursor %s: the disk is full (%s)", self._cursor_path,
                          error.strerror)

    def _list_segments(self) -> list[int]:
        out = []
        for path in self.directory.glob("*.spool"):
            try:
                out.append(int(path.stem))
            except ValueError:
                continue
        return sorted(out)

    def _path(self, number: int) -> Path:
        return self.directory / f"{number:012d}.spool"

    @property
    def empty(self) -> bool:
        return self.depth_records == 0

    # --- appending ------------------------------------------------------------------------------

    def append(self, body: bytes, points: int) -> None:
        """Append one batch and make it durable; ``OSError`` (a full disk) leaves the spool as it was."""
        record = encode_record(body, points)
        if self._write_fd is None:
            self._make_directory()
            self._write_fd = os.open(self._path(self._write_segment), os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                                     0o644)
            self._write_end = os.lseek(self._write_fd, 0, os.SEEK_END)
            self._dir_dirty = True
            if not self._segments or self._segments[-1] != self._write_segment:
                self._segments.append(self._write_segment)
        fd, start = self._write_fd, self._write_end
        append_or_cut_back(fd, start, record, self.fsync, self._sync_directory if self._dir_dirty else None)
        self._dir_dirty = False
        self._write_end = start + len(record)
        self.depth_points += points
        self.depth_records += 1
        if self._write_end >= self.segment_bytes:
            os.close(fd)
            self._write_fd = None
            self._write_segment += 1

    def _sync_directory(self) -> None:
        """Make the folder's entries durable, and the folder's own name if it was just created."""
        sync_folders([self.directory, *(p.parent for p in self._new_folders)])
        self._new_folders = []

    # --- replaying ------------------------------------------------------------------------------

    def peek(self, max_bytes: int = 8 * 1024 * 1024) -> Chunk | None:
        """The oldest records, joined into one body of about ``max_bytes`` at most (at least one record)."""
        if self.empty:
            return None
        segment, offset = self.cursor
        for number in [n for n in self._segments if n >= segment]:
            if number != segment:
                offset = 0
            path = self._path(number)
            try:
                with path.open("rb") as file:
                    file.seek(offset)
                    data = file.read(max_bytes + 4096)
                    records, end = decode_records(data, 0, max_bytes)
                    if not records and len(data) > max_bytes:  # one record larger than max_bytes, or damage
                        data += file.read()
                        records, end = decode_records(data)
            except FileNotFoundError:
                continue
            if not records and end < len(data):
                resume = next_record(data, end)
                if resume is not None:
                    log.error("spool segment %s: %d damaged bytes at offset %d skipped", path, resume - end,
                              offset + end)
                    self.cursor = (number, offset + resume)  # in memory: a restart would skip them again
                    return self.peek(max_bytes)
            if records:
                body = b"".join(r[2] if r[2].endswith(b"\n") else r[2] + b"\n" for r in records)
                return Chunk(body, sum(r[1] for r in records), len(records), (number, offset + end),
                             zlib.crc32(records[-1][2]))
        raise SpoolCorrupt(f"the spool in {self.directory} says {self.depth_records} batches wait but none "
                           "could be read")

    def advance(self, chunk: Chunk) -> None:
        """The chunk is in InfluxDB: move the cursor past it (durably), then delete finished segments.
        ``OSError`` (the cursor could not be written) leaves the spool as it was: call again."""
        segment, offset = chunk.end
        records = self.depth_records - chunk.records
        if records == 0:
            # everything replayed: the cursor moves to a fresh segment; every file goes
            fresh = max([segment, self._write_segment, *self._segments]) + 1
            self._write_cursor(fresh, 0, 0)
            if self._write_fd is not None:
                os.close(self._write_fd)
                self._write_fd = None
            self._doomed += self._segments
            self._segments = []
            self._write_segment = fresh
            self.cursor = (fresh, 0)
        else:
            self._write_cursor(segment, offset, chunk.last_crc)
            self._doomed += [n for n in self._segments if n < segment]
            self._segments = [n for n in self._segments if n >= segment]
            self.cursor = (segment, offset)
        self.depth_points -= chunk.points
        self.depth_records = records
        self._unlink_doomed()

    def _write_cursor(self, segment: int, offset: int, crc: int, whole: bool = False) -> None:
        """Overwrite the older of the two slots and make it durable (no new space needed once the
        file exists); ``whole``: write both slots, the other one blank (a new or older cursor file)."""
        if self._cursor_fd is None:
            created = not self._cursor_path.exists()
            self._cursor_fd = os.open(self._cursor_path, os.O_RDWR | os.O_CREAT, 0o644)
            self._dir_dirty = self._dir_dirty or created
        generation = self._generation + 1
        slot = encode_slot(generation, segment, offset, crc)
        if whole:
            blank = b" " * (SLOT_BYTES - 1) + b"\n"
            os.pwrite(self._cursor_fd, blank + slot if generation % 2 else slot + blank, 0)
        else:
            os.pwrite(self._cursor_fd, slot, (generation % 2) * SLOT_BYTES)
        if self.fsync:
            os.fdatasync(self._cursor_fd)
            if self._dir_dirty:
                self._sync_directory()
                self._dir_dirty = False
        self._generation = generation

    def _unlink_doomed(self) -> None:
        """Delete replayed segments; one that cannot be deleted now is tried again later (the cursor
        already passed it, so a restart deletes it too)."""
        left = []
        for number in self._doomed:
            try:
                os.unlink(self._path(number))
            except FileNotFoundError:
                pass
            except OSError as error:
                log.warning("cannot delete the replayed spool segment %s yet: %s", self._path(number), error)
                left.append(number)
        self._doomed = left

    def close(self) -> None:
        for fd in (self._write_fd, self._cursor_fd):
            if fd is not None:
                os.close(fd)
        self._write_fd = self._cursor_fd = None
