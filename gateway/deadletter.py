"""The dead-letter log: every message with a rejection, raw payload included, in bounded JSON lines.

Two files at most: ``dead-letter.jsonl`` and, once that passes ``max_bytes``, it becomes
``dead-letter.1.jsonl`` (replacing the older one). So the log never takes more than twice ``max_bytes``.
"""

from __future__ import annotations

import base64
from pathlib import Path

import orjson

from lauks.contract import Rejection


class DeadLetters:
    def __init__(self, directory: Path, max_bytes: int = 16 * 1024 * 1024) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "dead-letter.jsonl"
        self.old_path = directory / "dead-letter.1.jsonl"
        self.max_bytes = max_bytes
        self._file = self.path.open("ab")
        self._size = self._file.tell()
        self.errors = 0

    def add(self, topic: str, payload: bytes, received_ms: int, rejections: list[Rejection]) -> None:
        entry: dict[str, object] = {"time_ms": received_ms, "topic": topic,
                                    "reasons": [r.as_dict() for r in rejections]}
        try:
            entry["payload"] = payload.decode("utf-8")
        except UnicodeDecodeError:
            entry["payload_base64"] = base64.b64encode(payload).decode()
        record = orjson.dumps(entry, default=str) + b"\n"
        try:
            if self._size + len(record) > self.max_bytes and self._size:
                self._file.close()
                self.path.replace(self.old_path)
                self._file = self.path.open("ab")
                self._size = 0
            self._file.write(record)
            self._file.flush()
            self._size += len(record)
        except OSError:
            self.errors += 1  # the rejection itself is still counted and stored in InfluxDB

    def close(self) -> None:
        self._file.close()
