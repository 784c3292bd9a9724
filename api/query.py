"""The pure core of a readings request: parse and check what a class asks for, and build InfluxQL.

No I/O here. User input reaches InfluxQL only through ``lauks.influxql``; measurement, tag and field
names come from ``lauks.schema`` and the catalog, and site/kit names are checked against the registry
before they get here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from api.errors import ApiError, bad_request
from lauks import influxql, schema
from lauks.catalog import CATALOG, QUANTITY_NAMES
from lauks.zones import zone_problem

Layout = Literal["tidy", "wide"]
AGGREGATES = {"mean": "MEAN", "min": "MIN", "max": "MAX", "median": "MEDIAN", "count": "COUNT", "sum": "SUM"}
DAY_S = 86_400
# Every `every` divides a day, so buckets line up with the school's midnights and never straddle them.
EVERY_CHOICES = ("1m", "2m", "5m", "10m", "15m", "20m", "30m", "1h", "2h", "3h", "4h", "6h", "8h", "12h", "1d")
_EVERY = re.compile(r"(\d{1,4})(m|h|d)")
_UNIT_S = {"m": 60, "h": 3600, "d": DAY_S}
# Rows of aggregates held at once while the buckets of a slice of days are put in time order.
SLICE_ROWS = 100_000
# The years a window may reach. InfluxDB holds 1677-09-21 to 2262-04-11 (int64 nanoseconds); the kits
# were made long after 2000, so anything outside these years is a typo, and InfluxDB never sees it.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
_READINGS = influxql.identifier(schema.READINGS)
_SITE = influxql.identifier(schema.SITE)
_KIT = influxql.identifier(schema.KIT)


def parse_zone(name: str) -> ZoneInfo:
    problem = zone_problem(name)
    if problem:
        raise bad_request("bad_timezone", problem)
    return ZoneInfo(name)


def parse_time(text: str, zone: ZoneInfo, *, is_end: bool, what: str) -> datetime:
    """A date (a whole local day: an end date is included) or an ISO 8601 time (local if it has no offset)."""
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            if is_end:
                day += timedelta(days=1)
            moment = datetime.combine(day, time(0), zone)
        else:
            moment = datetime.fromisoformat(text.replace("z", "Z"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=zone)
        inside = EARLIEST <= moment <= LATEST
    except OverflowError:  # the day after 9999-12-31
        inside = False
    except ValueError as error:
        raise bad_request("bad_time", f"{what} {text[:40]!r} is not a date like 2025-03-01 or a time like "
                                      "2025-03-01T08:00 or 2025-03-01T08:00:00+02:00") from error
    if not inside:
        raise bad_request("time_out_of_range", f"{what} {text[:40]!r} is outside the years 2000 to 2199 that "
                                               "Lauks keeps readings for: check the year")
    return moment


def parse_every(text: str) -> int:
    """Seconds of one bucket; must be one of ``EVERY_CHOICES``."""
    match = _EVERY.fullmatch(text.strip())
    seconds = int(match.group(1)) * _UNIT_S[match.group(2)] if match else 0
    if not seconds or seconds > DAY_S or DAY_S % seconds:
        raise bad_request("bad_every", f"every={text!r} is not a bucket size we can use: choose one of "
                                       f"{', '.join(EVERY_CHOICES)} (it must divide a day)")
    return seconds


def every_text(seconds: int) -> str:
    if seconds % DAY_S == 0:
        return f"{seconds // DAY_S}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}m"


def parse_agg(text: str | None) -> str | None:
    if text is None:
        return None
    if text not in AGGREGATES:
        raise bad_request("bad_agg", f"agg={text!r} is unknown: choose one of {', '.join(AGGREGATES)}")
    return text


def parse_quantities(names: list[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        for part in name.split(","):
            part = part.strip()
            if not part:
                continue
            if part not in CATALOG:
                close = [q for q in QUANTITY_NAMES if q.startswith(part[:3].lower())] if part else []
                hint = f" Did you mean {' or '.join(close[:3])}?" if close else ""
                raise ApiError(404, "unknown_quantity", f"quantity {part!r} is not in the catalog.{hint} "
                                                        "The list is at /v1/quantities.")
            if part not in out:
                out.append(part)
    return out


def split_names(values: list[str] | None) -> list[str]:
    if not values:
        return []
    out: list[str] = []
    for value in values:
        out.extend(p.strip() for p in value.split(",") if p.strip())
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class ReadingsRequest:
    site: str
    kits: list[str]
    quantities: list[str]
    start: datetime
    end: datetime
    zone: ZoneInfo
    every_s: int | None = None
    agg: str | None = None  # None: each quantity's default (rain sums, the rest average)
    layout: Layout = "tidy"
    aggregates: dict[str, str] = field(default_factory=dict)

    @property
    def aggregated(self) -> bool:
        return self.every_s is not None


def make_request(*, site: str, kits: list[str], quantities: list[str], start: datetime, end: datetime,
                 zone: ZoneInfo, every: str | None, agg: str | None, layout: Layout,
                 max_raw_days: int) -> ReadingsRequest:
    if end <= start:
        raise bad_request("reversed_window", f"the window ends ({end.isoformat()}) before it starts "
                                             f"({start.isoformat()}): swap start and end")
    agg = parse_agg(agg)
    every_s = parse_every(every) if every is not None else None
    if agg is not None and every_s is None:
        raise bad_request("agg_needs_every", f"agg={agg} needs a bucket size too, e.g. every=1h&agg={agg}")
    if every_s is None and end - start > timedelta(days=max_raw_days):
        raise bad_request("window_too_large", f"a raw window may be at most {max_raw_days} days, this one is "
                                              f"{(end - start).days} days: aggregate it (e.g. every=1h or "
                                              "every=1d) or ask for a shorter window")
    if not quantities:
        raise bad_request("no_quantities", "name at least one quantity, e.g. quantities=temperature,humidity")
    aggregates = {q: agg or CATALOG[q].default_agg for q in quantities} if every_s else {}
    return ReadingsRequest(site, kits, quantities, start, end, zone, every_s, agg, layout, aggregates=aggregates)


def _where(request: ReadingsRequest, start: datetime, end: datetime) -> str:
    parts = [f"{_SITE} = {influxql.string(request.site)}"]
    if request.kits:
        parts.append(f"{_KIT} =~ {influxql.regex_exact(request.kits)}")
    parts.append(f"time >= {influxql.time_literal(start)} AND time < {influxql.time_literal(end)}")
    return " AND ".join(parts)


def raw_statement(request: ReadingsRequest) -> str:
    """One series in time order, the kit as a column: rows stream straight out, nothing is held."""
    fields = ", ".join(influxql.identifier(q) for q in request.quantities)
    return f"SELECT {_KIT}, {fields} FROM {_READINGS} WHERE {_where(request, request.start, request.end)}"


def aggregate_statement(request: ReadingsRequest, start: datetime, end: datetime) -> str:
    assert request.every_s is not None
    fields = ", ".join(f"{AGGREGATES[request.aggregates[q]]}({influxql.identifier(q)}) AS {influxql.identifier(q)}"
                       for q in request.quantities)
    zone = "" if request.zone.key == "UTC" else f" tz({influxql.string(request.zone.key)})"
    return (f"SELECT {fields} FROM {_READINGS} WHERE {_where(request, start, end)} "
            f"GROUP BY time({request.every_s}s), {_KIT} fill(none){zone}")


def slices(request: ReadingsRequest) -> list[tuple[datetime, datetime]]:
    """The window cut at local midnights into slices small enough to put in time order in memory."""
    assert request.every_s is not None
    kits = max(1, len(request.kits))
    days = max(1, SLICE_ROWS // (kits * max(1, DAY_S // request.every_s)))
    out: list[tuple[datetime, datetime]] = []
    cursor = request.start
    while cursor < request.end:
        local = cursor.astimezone(request.zone)
        boundary = datetime.combine(local.date() + timedelta(days=days), time(0), request.zone)
        stop = min(boundary, request.end)
        out.append((cursor, stop))
        cursor = stop
    return out


def latest_statements(site: str, quantities: list[str], kits: list[str]) -> str:
    """One LAST per quantity (so each value keeps its own time), grouped by kit."""
    where = f"{_SITE} = {influxql.string(site)}"
    if kits:
        where += f" AND {_KIT} =~ {influxql.regex_exact(kits)}"
    return "; ".join(f"SELECT LAST({influxql.identifier(q)}) AS {influxql.identifier(q)} FROM {_READINGS} "
                     f"WHERE {where} GROUP BY {_KIT}" for q in quantities)


# The statements of ``status_statements``, in the order ``api.source.kit_status`` reads their answers.
_STATUS_FIELDS = ((schema.KIT_STATUS, schema.STATE), (schema.KIT_STATUS, schema.SEEN),
                  (schema.READINGS, schema.BATTERY), (schema.KIT_STATUS, schema.BATTERY))


def status_statements(site: str) -> str:
    """Each kit's last state, last seen point, last battery of readings and last battery of status messages."""
    where = f"{_SITE} = {influxql.string(site)}"
    return "; ".join(f"SELECT LAST({influxql.identifier(name)}) FROM {influxql.identifier(measurement)} "
                     f"WHERE {where} GROUP BY {_KIT}" for measurement, name in _STATUS_FIELDS)
