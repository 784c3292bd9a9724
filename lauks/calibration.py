"""Calibrations: per kit and quantity, value' = gain * value + offset over [valid_from, valid_to). Pure.

STUB: the interface the read path is written against; the calibration helper fills it in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Calibration:
    id: int
    site: str
    kit: str
    quantity: str
    offset: float
    gain: float
    valid_from: datetime
    valid_to: datetime | None  # None: still in force
    reason: str
    created_by: str
    created_at: datetime

    def covers(self, time_ms: int) -> bool:
        start = self.valid_from.timestamp() * 1000
        return start <= time_ms and (self.valid_to is None or time_ms < self.valid_to.timestamp() * 1000)

    def apply(self, value: float) -> float:
        return self.gain * value + self.offset

    def as_json(self) -> dict[str, Any]:
        """As a dataset's datapackage.json records it."""
        raise NotImplementedError
