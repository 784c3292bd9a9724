"""Rollups of readings: which one can answer an aggregate, and the InfluxQL to read it. Pure.

STUB: the interface the read path is written against; the rollups helper fills it in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

# (alias, statistic, readings field): statistic one of mean, min, max, median, count, sum
Column = tuple[str, str, str]


def statement_for(columns: Sequence[Column], where: str, every_s: int, zone: ZoneInfo, start: datetime,
                  end: datetime, *, fill: str = "none", site_zone: str | None = None) -> str | None:
    """The statement reading ``columns`` per bucket of ``every_s`` from a rollup, ``GROUP BY time(...), kit``
    with ``fill(<fill>)`` and the zone, answering as the raw aggregate of the same columns would; or None
    when no rollup can (a median, a bucket no rollup divides, a zone whose offset the buckets do not match).

    ``where`` is the raw statement's WHERE text (site, kits, time). ``site_zone`` is the site's zone, which
    its daily rollup is kept in."""
    return None
