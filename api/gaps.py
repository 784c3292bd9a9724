"""Gaps: intervals with no readings longer than 3 x the kit's interval, per kit (a dataset carries them).

STUB: the interface the read path is written against; the gaps helper fills it in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from lauks.influx import InfluxClient

GAP_INTERVALS = 3  # a gap is longer than this many of the kit's intervals
DEFAULT_INTERVAL_S = 60


@dataclass(frozen=True, slots=True)
class Gap:
    kit: str
    start: datetime  # the last reading before it (or the window's start)
    end: datetime  # the first reading after it (or the window's end)

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


async def kit_intervals(client: InfluxClient, database: str, site: str, kits: list[str]) -> dict[str, int]:
    """Each kit's interval in seconds (its last status message's interval_s, else DEFAULT_INTERVAL_S)."""
    raise NotImplementedError


async def find_gaps(client: InfluxClient, database: str, site: str, kits: list[str], quantities: list[str],
                    start: datetime, end: datetime, intervals: Mapping[str, int]) -> list[Gap]:
    """The gaps of each kit in [start, end) in readings of any of ``quantities``, by kit then time."""
    raise NotImplementedError
