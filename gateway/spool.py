"""The on-disk spool: batches of line protocol that could not reach InfluxDB, replayed in order.

Segment files ``<n>.spool`` hold records ``<bytes> <points> <crc32 hex>\\n<body>``, appended and
fsynced before the batch's messages are acknowledged. ``cursor`` says how far the replay got; a
record replayed twice overwrites itself in InfluxDB, so the cursor needs no fsync. A record cut off
by a crash was never acknowledged and is cut away at start-up.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path

SEGMENT_BYTES = 32 * 1024 * 1024


class SpoolCorrupt(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Chunk:
    body: bytes
    points: int
    records: int
    end: tuple[int, int]  # (segment, offset) just past the chunk


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


class Spool:
    def __init__(self, directory: Path, fsync: bool = True, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.directory = directory
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        directory.mkdir(parents=True, exist_ok=True)
        self._cursor_path = directory / "cursor"
        self.cursor = self._read_cursor()
        self.depth_points = 0
        self.depth_records = 0
        segments = self._segments()
        for number in segments:
            if number < self.cursor[0]:
                (directory / f"{number:012d}.spool").unlink()
        segments = [n for n in segments if n >= self.cursor[0]]
        if segments:
            self.cursor = (max(self.cursor[0], segments[0]), self.cursor[1] if self.cursor[0] == segments[0] else 0)
        for number in segments:
            path = self._path(number)
            data = path.read_bytes()
            start = self.cursor[1] if number == self.cursor[0] else 0
            records, end = decode_records(data, start)
            if end != len(data):
                with path.open("r+b") as file:  # cut a torn tail away (only the last one can be)
                    file.truncate(end)
            self.depth_points += sum(p for _, p, _ in records)
            self.depth_records += len(records)
        self._write_segment = segments[-1] if segments else self.cursor[0]
        self._write_fd: int | None = None

    def _segments(self) -> list[int]:
        out = []
        for path in self.directory.glob("*.spool"):
            try:
                out.append(int(path.stem))
            except ValueError:
                continue
        return sorted(out)

    def _path(self, number: int) -> Path:
        return self.directory / f"{number:012d}.spool"

    def _read_cursor(self) -> tuple[int, int]:
        try:
            segment, offset = self._cursor_path.read_text().split()
            return int(segment), int(offset)
        except (OSError, ValueError):
            return (0, 0)

    @property
    def empty(self) -> bool:
        return self.depth_records == 0

    def append(self, body: bytes, points: int) -> None:
        """Append one batch and make it durable; ``OSError`` (a full disk) leaves the spool as it was."""
        record = encode_record(body, points)
        if self._write_fd is None:
            self._write_fd = os.open(self._path(self._write_segment), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        start = os.lseek(self._write_fd, 0, os.SEEK_END)
        try:
            view = memoryview(record)
            while view:
                view = view[os.write(self._write_fd, view):]
            if self.fsync:
                os.fdatasync(self._write_fd)
        except OSError:
            os.ftruncate(self._write_fd, start)
            raise
        self.depth_points += points
        self.depth_records += 1
        if start + len(record) >= self.segment_bytes:
            os.close(self._write_fd)
            self._write_fd = None
            self._write_segment += 1

    def peek(self, max_bytes: int = 8 * 1024 * 1024) -> Chunk | None:
        """The oldest records, joined into one body of about ``max_bytes`` at most (at least one record)."""
        if self.empty:
            return None
        segment, offset = self.cursor
        while segment <= self._write_segment:
            path = self._path(segment)
            if path.exists():
                with path.open("rb") as file:
                    file.seek(offset)
                    data = file.read(max_bytes + 4096)
                records, end = decode_records(data, 0, max_bytes)
                if not records and len(data) > max_bytes:  # one record larger than max_bytes
                    with path.open("rb") as file:
                        file.seek(offset)
                        data = file.read()
                    records, end = decode_records(data)
                if records:
                    body = b"".join(r[2] if r[2].endswith(b"\n") else r[2] + b"\n" for r in records)
                    return Chunk(body, sum(r[1] for r in records), len(records), (segment, offset + end))
            if segment == self._write_segment:
                break
            segment, offset = segment + 1, 0
        raise SpoolCorrupt(f"the spool in {self.directory} says {self.depth_records} batches wait but none "
                           "could be read")

    def advance(self, chunk: Chunk) -> None:
        """The chunk is in InfluxDB: move the cursor past it and delete finished segments."""
        segment, offset = chunk.end
        self.depth_points -= chunk.points
        self.depth_records -= chunk.records
        for number in range(self.cursor[0], segment):
            self._path(number).unlink(missing_ok=True)
        if self.depth_records == 0:
            # everything replayed: start a fresh segment rather than keep files of dead records
            if self._write_fd is not None:
                os.close(self._write_fd)
                self._write_fd = None
            for number in range(segment, self._write_segment + 1):
                self._path(number).unlink(missing_ok=True)
            self._write_segment = max(segment, self._write_segment) + 1
            segment, offset = self._write_segment, 0
        self.cursor = (segment, offset)
        tmp = self._cursor_path.with_suffix(".tmp")
        tmp.write_text(f"{segment} {offset}\n")
        os.replace(tmp, self._cursor_path)

    def close(self) -> None:
        if self._write_fd is not None:
            os.close(self._write_fd)
            self._write_fd = None
