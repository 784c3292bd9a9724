"""De-duplication on (site, kit, boot, seq), kept in memory and in an append-only log on disk.

A message's key is recorded with the time it was first received; the log is written (and fsynced)
before the message's points are written anywhere, so after a crash or restart a redelivered copy is
re-dated with the same receipt time: its ``age`` samples land on the same timestamps and overwrite
themselves. Keys committed in this process (their points durable) are dropped outright. Memory is
bounded: ``window`` keys per (site, kit, boot), the oldest forgotten first.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

Key = tuple[str, str, int, int]  # site, kit, boot, seq
_COMMITTED = 1  # low bit of a stored value; the rest is the receipt time in ms, shifted left by one


@dataclass(frozen=True, slots=True)
class Seen:
    received_ms: int
    new: bool  # first time this key is seen
    committed: bool  # its points were made durable by this process: drop the copy


class Dedup:
    def __init__(self, directory: Path | None, window: int = 4096, fsync: bool = True) -> None:
        self.window = window
        self.fsync = fsync
        self._keys: dict[tuple[str, str, int], dict[int, int]] = {}
        self._unwritten: list[tuple[Key, int]] = []
        self._log_lines = 0
        self._fd: int | None = None
        self._path: Path | None = None
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            self._path = directory / "keys.log"
            self._load()
            self._compact()

    # --- the pure part --------------------------------------------------------------------------

    def see(self, key: Key, now_ms: int) -> Seen:
        """Look a key up, recording it (with ``now_ms`` as its receipt time) if it is new."""
        site, kit, boot, seq = key
        seqs = self._keys.get((site, kit, boot))
        if seqs is None:
            seqs = self._keys[(site, kit, boot)] = {}
        stored = seqs.get(seq)
        if stored is not None:
            return Seen(stored >> 1, False, bool(stored & _COMMITTED))
        self._remember(seqs, seq, now_ms << 1)
        self._unwritten.append((key, now_ms))
        return Seen(now_ms, True, False)

    def commit(self, keys: list[Key]) -> None:
        """The points of these messages are durable: later copies are dropped without a write."""
        for site, kit, boot, seq in keys:
            seqs = self._keys.get((site, kit, boot))
            if seqs is not None and seq in seqs:
                seqs[seq] |= _COMMITTED

    def _remember(self, seqs: dict[int, int], seq: int, value: int) -> None:
        seqs[seq] = value
        if len(seqs) > self.window:
            del seqs[next(iter(seqs))]  # dicts keep insertion order: the oldest goes

    def __len__(self) -> int:
        return sum(len(s) for s in self._keys.values())

    # --- the log ----------------------------------------------------------------------------------

    def persist(self) -> None:
        """Append the keys seen since the last call; call before their points are written."""
        if not self._unwritten or self._fd is None:
            self._unwritten.clear()
            return
        data = "".join(f"{s} {k} {b} {q} {ms}\n" for (s, k, b, q), ms in self._unwritten).encode()
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        if self.fsync:
            os.fdatasync(self._fd)
        self._log_lines += len(self._unwritten)
        self._unwritten.clear()
        if self._log_lines > 4 * len(self) + 100_000:
            self._compact()

    def _load(self) -> None:
        assert self._path is not None
        if not self._path.exists():
            return
        with self._path.open("rb") as file:
            for raw in file:
                parts = raw.split()
                if len(parts) != 5 or not raw.endswith(b"\n"):
                    continue  # a line cut off by a crash: its message was never acknowledged
                try:
                    site, kit = parts[0].decode(), parts[1].decode()
                    boot, seq, ms = int(parts[2]), int(parts[3]), int(parts[4])
                except (UnicodeDecodeError, ValueError):
                    continue
                seqs = self._keys.setdefault((site, kit, boot), {})
                seqs.pop(seq, None)
                self._remember(seqs, seq, ms << 1)

    def _compact(self) -> None:
        """Rewrite the log with only the keys still remembered (write a new file, then rename)."""
        assert self._path is not None
        if self._fd is not None:
            os.close(self._fd)
        tmp = self._path.with_suffix(".tmp")
        with tmp.open("wb") as file:
            for (site, kit, boot), seqs in self._keys.items():
                file.write("".join(f"{site} {kit} {boot} {seq} {v >> 1}\n" for seq, v in seqs.items()).encode())
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, self._path)
        self._log_lines = len(self)
        self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def close(self) -> None:
        self.persist()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
