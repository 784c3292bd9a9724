"""The pure core of a readings request: parse and check what a class asks for, and build InfluxQL.

No I/O here. User input reaches InfluxQL only through ``lauks.influxql``; measurement, tag and field
names come from ``lauks.schema`` and the catalog, and site/kit names are checked against the registry
before they get here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import Literal
from zoneinfo import ZoneInfo

from api.errors import ApiError, bad_request
from lauks import influxql, quality, rollups, schema
from lauks.calibration import Calibration
from lauks.catalog import CATALOG, QUANTITY_NAMES
from lauks.derived import DERIVED, Derived
from lauks.zones import zone_problem

Layout = Literal["tidy", "wide"]
Flags = Literal["include", "exclude", "only"]
CalibrationMode = Literal["applied", "raw"]
FLAG_CHOICES = ("include", "exclude", "only")
CALIBRATION_CHOICES = ("applied", "raw")
Column = rollups.Column  # (alias, statistic, readings field)
# Read beside the requested quantities: what the flags are worked out from. Hidden: never in a row that leaves.
RAW_FACTS = (schema.BATTERY, schema.LATE_S, schema.FROM_AGE)
BATTERY_MIN = "battery__min"
LATE_S_MAX = "late_s__max"
FROM_AGE_N = "from_age__n"
# A kit's last battery reading counts for the readings after it for this long (quality.reading_mask's input).
BATTERY_HOLD_MS = 3600 * 1000
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
    """Catalog quantities and derived ones (lauks.derived.DERIVED), in the order given, each once."""
    out: list[str] = []
    for name in names:
        for part in name.split(","):
            part = part.strip()
            if not part:
                continue
            if part not in CATALOG and part not in DERIVED:
                known = [*QUANTITY_NAMES, *DERIVED]
                close = [q for q in known if q.startswith(part[:3].lower())] if part else []
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


def parse_flags(text: str) -> Flags:
    if text not in FLAG_CHOICES:
        raise bad_request("bad_flags", f"flags={text!r} is unknown: choose include (every value, with its flags), "
                                       "exclude (flagged values left out) or only (only flagged values)")
    return text  # type: ignore[return-value]  # checked just above


def parse_calibration(text: str) -> CalibrationMode:
    if text not in CALIBRATION_CHOICES:
        raise bad_request("bad_calibration", f"calibration={text!r} is unknown: choose applied (calibrated values, "
                                             "the default) or raw (the values as stored)")
    return text  # type: ignore[return-value]  # checked just above


def bucket_alias(quantity: str, stat: str) -> str:
    """The hidden column of a bucket statistic of ``quantity``: temperature__min, temperature__n, ..."""
    return f"{quantity}__{'n' if stat == 'count' else stat}"


@dataclass(frozen=True)
class ReadingsRequest:
    site: str
    kits: list[str]
    quantities: list[str]  # requested, stored and derived, in the order of the columns
    start: datetime
    end: datetime
    zone: ZoneInfo
    every_s: int | None = None
    agg: str | None = None  # None: each quantity's default (rain sums, the rest average)
    layout: Layout = "tidy"
    aggregates: dict[str, str] = field(default_factory=dict)
    flags: Flags = "include"
    calibration: CalibrationMode = "applied"
    calibrations: tuple[Calibration, ...] = ()  # those of these kits and quantities over the window
    elevation_m: float | None = None  # the site's, for sea_level_pressure
    site_zone: str | None = None  # the site's zone, which its daily rollup is kept in

    @property
    def aggregated(self) -> bool:
        return self.every_s is not None

    @cached_property
    def per_reading(self) -> list[Derived]:
        """Requested derived quantities worked out from the inputs at one time (or of one bucket)."""
        return [DERIVED[q] for q in self.quantities if q in DERIVED and DERIVED[q].daily is None]

    @cached_property
    def daily(self) -> list[Derived]:
        """Requested derived quantities that are one statistic of a school day (dated at local midnight)."""
        return [DERIVED[q] for q in self.quantities if q in DERIVED and DERIVED[q].daily is not None]

    @cached_property
    def stored(self) -> list[str]:
        """Stored quantities read: the requested ones first (in their order), then inputs of derived ones."""
        out = [q for q in self.quantities if q in CATALOG]
        for d in self.per_reading:
            out.extend(q for q in d.inputs if q not in out)
        return out

    @cached_property
    def raw_fields(self) -> list[str]:
        """Fields of a raw statement: ``stored``, then the facts flags are worked out from (if not stored)."""
        return [*self.stored, *(f for f in RAW_FACTS if f not in self.stored)]

    def stat_of(self, quantity: str) -> str:
        """The aggregate of a stored quantity: the requested one's, else that of the derived it is an input of."""
        return self.aggregates.get(quantity) or self.agg or "mean"

    def bucket_stats(self, quantity: str, every_s: int, stat: str) -> list[str]:
        """The statistics of ``quantity``'s bucket that its flags and calibrations need besides its aggregate
        ``stat``: min and max where it can be stuck or spike, the count where it can be stuck (a bucket at
        least stuck_minutes long) or a calibration maps a sum. No more: each costs InfluxDB a pass."""
        row = CATALOG[quantity]
        stuck = row.stuck_minutes is not None and every_s >= row.stuck_minutes * 60
        out = ["min", "max"] if stuck or row.max_rate is not None else []
        if stuck or (stat == "sum" and any(c.quantity == quantity for c in self.calibrations)):
            out.append("count")
        return [s for s in out if s != stat]

    def stat_alias(self, quantity: str, stat: str, main: str) -> str:
        """The column a bucket statistic is read from: the aggregate's own (``main``) when it is that one."""
        return main if stat == self.stat_of(quantity) and main == quantity else bucket_alias(quantity, stat)

    @cached_property
    def columns(self) -> list[Column]:
        """The columns of an aggregate statement: per stored quantity its aggregate AS itself, then the hidden
        bucket statistics the flags and calibrations need (q__min, q__max, q__n where they can say something;
        battery__min, late_s__max, from_age__n)."""
        assert self.every_s is not None
        out: list[Column] = [(q, self.stat_of(q), q) for q in self.stored]
        for q in self.stored:
            out.extend((bucket_alias(q, stat), stat, q) for stat in self.bucket_stats(q, self.every_s, self.stat_of(q)))
        return [*out, *_fact_columns()]

    @cached_property
    def daily_columns(self) -> list[Column]:
        """The columns of the daily statement: per daily derived quantity its statistic of the day, its input's
        bucket statistics and the kit's."""
        out: list[Column] = []
        extra: dict[Column, None] = {}
        for d in self.daily:
            assert d.daily is not None
            q, stat = d.daily
            out.append((d.name, stat, q))
            extra.update(dict.fromkeys((bucket_alias(q, s), s, q) for s in ("min", "max", "count")
                                       if s in self.bucket_stats(q, DAY_S, "") or (s == "count" and stat == "sum")))
        return [*out, *extra, *_fact_columns()]


def _fact_columns() -> list[Column]:
    return [(BATTERY_MIN, "min", schema.BATTERY), (LATE_S_MAX, "max", schema.LATE_S),
            (FROM_AGE_N, "count", schema.FROM_AGE)]


def make_request(*, site: str, kits: list[str], quantities: list[str], start: datetime, end: datetime,
                 zone: ZoneInfo, every: str | None, agg: str | None, layout: Layout,
                 max_raw_days: int, flags: str = "include", calibration: str = "applied",
                 calibrations: Sequence[Calibration] = (), elevation_m: float | None = None,
                 site_zone: str | None = None) -> ReadingsRequest:
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
    flag_mode = parse_flags(flags)
    mode = parse_calibration(calibration)
    for name in quantities:
        d = DERIVED.get(name)
        if d is None:
            continue
        why = d.unavailable(elevation_m)
        if why is not None:
            raise bad_request("no_elevation", f"site {site!r}: {why} (staff: PATCH /v1/sites/{site} with "
                                              "elevation_m), or ask for pressure, which is as measured")
        if every_s is not None and d.daily is None and agg in ("count", "sum"):
            raise bad_request("bad_agg", f"agg={agg} has no meaning for {name}, which is worked out from each "
                                         "bucket's inputs: choose mean, min, max or median")
    aggregates = {q: agg or (CATALOG[q].default_agg if q in CATALOG else "mean") for q in quantities} if every_s else {}
    kept = tuple(c for c in calibrations if mode == "applied")
    return ReadingsRequest(site, kits, quantities, start, end, zone, every_s, agg, layout, aggregates=aggregates,
                           flags=flag_mode, calibration=mode, calibrations=kept, elevation_m=elevation_m,
                           site_zone=site_zone)


def _where(request: ReadingsRequest, start: datetime, end: datetime) -> str:
    parts = [f"{_SITE} = {influxql.string(request.site)}"]
    if request.kits:
        parts.append(f"{_KIT} =~ {influxql.regex_exact(request.kits)}")
    parts.append(f"time >= {influxql.time_literal(start)} AND time < {influxql.time_literal(end)}")
    return " AND ".join(parts)


def raw_statement(request: ReadingsRequest, start: datetime | None = None, end: datetime | None = None) -> str:
    """One series in time order, the kit as a column, then ``raw_fields`` (the stored quantities and facts)."""
    fields = ", ".join(influxql.identifier(q) for q in request.raw_fields)
    where = _where(request, start or request.start, end or request.end)
    return f"SELECT {_KIT}, {fields} FROM {_READINGS} WHERE {where}"


def raw_values_statement(request: ReadingsRequest, kit: str, quantity: str, start: datetime, end: datetime) -> str:
    """One kit's stored values of one quantity in [start, end): a bucket a calibration's start or end cuts."""
    where = (f"{_SITE} = {influxql.string(request.site)} AND {_KIT} = {influxql.string(kit)} AND "
             f"time >= {influxql.time_literal(start)} AND time < {influxql.time_literal(end)}")
    return f"SELECT {influxql.identifier(quantity)} FROM {_READINGS} WHERE {where}"


def grouped_statement(request: ReadingsRequest, columns: Sequence[Column], every_s: int, start: datetime,
                      end: datetime, kept: Mapping[str, rollups.Kept] | None = None) -> str:
    """``columns`` per bucket of ``every_s`` and kit: from a rollup when one answers (``kept``: the rollups'
    windows, ``rollups.KeptCache``), else from raw readings."""
    where = _where(request, start, end)
    found = rollups.statement_for(columns, where, every_s, request.zone, start, end, site_zone=request.site_zone,
                                  kept=kept)
    if found is not None:
        return found
    fields = ", ".join(f"{AGGREGATES[stat]}({influxql.identifier(name)}) AS {influxql.identifier(alias)}"
                       for alias, stat, name in columns)
    zone = "" if request.zone.key == "UTC" else f" tz({influxql.string(request.zone.key)})"
    return (f"SELECT {fields} FROM {_READINGS} WHERE {where} "
            f"GROUP BY time({every_s}s), {_KIT} fill(none){zone}")


def aggregate_statement(request: ReadingsRequest, start: datetime, end: datetime,
                        kept: Mapping[str, rollups.Kept] | None = None) -> str:
    """The buckets of [start, end): ``request.columns`` (aggregates, then hidden bucket statistics)."""
    assert request.every_s is not None
    return grouped_statement(request, request.columns, request.every_s, start, end, kept)


def aggregate_statements(request: ReadingsRequest, start: datetime, end: datetime,
                         kept: Mapping[str, rollups.Kept] | None = None) -> list[str]:
    """The buckets of [start, end) in one statement, or two where a rollup is kept for the first part only:
    the rollup up to the bucket the rollups were last kept to, the newest buckets from raw readings. Each
    bucket comes whole from one of them, and a rollup answers exactly as raw does (lauks.rollups)."""
    assert request.every_s is not None
    whole = aggregate_statement(request, start, end, kept)
    if not kept or f"FROM {_READINGS} " not in whole:
        return [whole]
    kept_to = min(window.kept_to for window in kept.values())
    cut = bucket_start(min(end, kept_to), request.every_s, request.zone)
    if not start < cut < end:
        return [whole]
    head = aggregate_statement(request, start, cut, kept)
    if f"FROM {_READINGS} " in head:  # no rollup answers the first part either
        return [whole]
    return [head, aggregate_statement(request, cut, end, kept)]


def bucket_start(moment: datetime, every_s: int, zone: ZoneInfo) -> datetime:
    """The start of ``moment``'s bucket, counted from its local midnight as ``GROUP BY time(...) tz(...)``
    counts them."""
    local = moment.astimezone(zone)
    midnight = datetime.combine(local.date(), time(0), zone)
    into = (local.replace(tzinfo=None) - midnight.replace(tzinfo=None)).total_seconds()
    start = (midnight.replace(tzinfo=None) + timedelta(seconds=into // every_s * every_s)).replace(tzinfo=zone)
    return start.astimezone(UTC)


def daily_window(request: ReadingsRequest) -> tuple[datetime, datetime] | None:
    """The whole school days whose midnight is in [start, end): daily derived quantities are of those."""
    first = datetime.combine(request.start.astimezone(request.zone).date(), time(0), request.zone)
    if first < request.start:
        first = datetime.combine(first.date() + timedelta(days=1), time(0), request.zone)
    if first >= request.end:
        return None
    last = datetime.combine(request.end.astimezone(request.zone).date(), time(0), request.zone)
    if last < request.end:
        last = datetime.combine(last.date() + timedelta(days=1), time(0), request.zone)
    return first, last


def daily_statement(request: ReadingsRequest, kept: Mapping[str, rollups.Kept] | None = None) -> str | None:
    """The daily derived quantities of each school day and kit (``request.daily_columns``), or None."""
    window = daily_window(request)
    if not request.daily or window is None:
        return None
    return grouped_statement(request, request.daily_columns, DAY_S, *window, kept)


def raw_slices(request: ReadingsRequest) -> list[tuple[datetime, datetime]]:
    """The raw window in slices, each read with ``context_ms`` either side, so that its flags are judged whole."""
    step = timedelta(milliseconds=max(DAY_S * 1000, 4 * context_ms(request)))
    out: list[tuple[datetime, datetime]] = []
    cursor = request.start
    while cursor < request.end:
        stop = min(cursor + step, request.end)
        out.append((cursor, stop))
        cursor = stop
    return out


# Beyond the longest run and the battery hold: the readings a spike's return is looked for in
# (quality.SPIKE_MAX_READINGS) at intervals of up to 5 minutes.
CONTEXT_MARGIN_MS = 30 * 60 * 1000


def context_ms(request: ReadingsRequest) -> int:
    """How far either side of a slice its readings are read: a stuck run of the longest ``stuck_minutes``
    asked for, or the last battery reading before (BATTERY_HOLD_MS), with a margin; at most quality.CONTEXT_MS
    (which reads 24 more hours a day for every request, for runs that no quantity asked for needs)."""
    longest = max((CATALOG[q].stuck_minutes or 0 for q in request.stored), default=0)
    return int(min(quality.CONTEXT_MS, max(longest * 60_000, BATTERY_HOLD_MS) + CONTEXT_MARGIN_MS))


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
