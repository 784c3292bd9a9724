"""Rollups of readings: which one can answer an aggregate, and the InfluxQL to read and to keep it. Pure.

A rollup point holds, per site, kit and bucket, ``sum_F``, ``count_F``, ``min_F`` and ``max_F`` of every readings
field F: exactly what InfluxDB's ``SELECT sum(*), count(*), min(*), max(*) ... GROUP BY time(..), *`` names them.
From those a bucket of any multiple of the rollup's resolution is answered as the raw aggregate would be:
mean = SUM(sum_F) / SUM(count_F), min = MIN(min_F), max = MAX(max_F), count = SUM(count_F), sum = SUM(sum_F).
A median is not kept (it does not combine), so it is always read from raw.

The hourly rollup is computed from the raw readings with ``SELECT ... INTO``, the daily one (in the schools' days,
``DAILY_ZONE``) from the hourly one: InfluxDB does the work and writes the points itself, and computing a bucket
again overwrites it with the same series and time, so it can be redone any number of times by any number of
gateways.

A rollup answers only inside the window it is known to be complete for (``Kept``, kept in the measurement
``rollup_state`` by the worker and by ``lauks rollups rebuild``): before that window it was never built, after
it the worker has not yet passed. Anything outside, and anything it cannot answer exactly, is None: read raw.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from lauks import influxql, schema
from lauks.influx import InfluxClient, InfluxError
from lauks.lineprotocol import FieldValue, line

# (alias, statistic, readings field): statistic one of mean, min, max, median, count, sum
Column = tuple[str, str, str]

READINGS_FIELDS: tuple[str, ...] = tuple(name for name in schema.MEASUREMENTS[schema.READINGS].fields)
SUPPORTED_STATS = ("mean", "min", "max", "count", "sum")

# Where the worker and the rebuild record how far each rollup is complete; one point per write, read with LAST.
STATE = schema.ROLLUP_STATE
STATE_ROLLUP = schema.ROLLUP_STATE_ROLLUP  # tag: the rollup's measurement
COMPLETE_FROM = schema.ROLLUP_COMPLETE_FROM  # field, ms: every bucket from here on is computed from raw ...
KEPT_TO = schema.ROLLUP_KEPT_TO  # field, ms: ... up to here (the start of the worker's last pass, less LATE_MARGIN)
# Samples up to this late carry no ``late`` count on their seen point (that starts at 5 minutes), so every pass
# recomputes the buckets this far back from where the previous one started; later ones come through late_from.
LATE_MARGIN = timedelta(minutes=10)
# Recorded as the start of the complete window when the rollups were built from the oldest raw reading on:
# before that there is nothing (the contract refuses samples before 2020), so they are complete from any time.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Rollup:
    """One rollup: its measurement, its buckets in seconds and what it is computed from. Buckets are UTC-aligned,
    or with ``zone`` (daily buckets only) the zone's days, as ``GROUP BY time(1d) tz(zone)`` makes them."""

    measurement: str
    seconds: int
    source: str  # schema.READINGS: with the wildcard statement; a rollup: from its fields
    zone: str = "UTC"


# No finer rollup than hourly is kept. InfluxDB 1.6 spends most of a GROUP BY time on each bucket it makes
# (tried: 20 days of 4 kits took 7.5 s into 10-minute buckets, 2.9 s into hourly ones, 1.7 s into days), so a
# 10-minute rollup would cost two and a half times the hourly one to build, while no chart asks for 10-minute
# buckets over long windows and a 10- to 30-minute bucket is at most 30 raw readings a kit.
# The daily one is in the schools' days: a year of a site's days read from the hourly rollup is 24 points a kit
# and day made into buckets (750 ms for 20 kits), from the daily one it is its 7,300 points as they are. Latvia's
# Europe/Riga and Lithuania's Europe/Vilnius have the same offsets (EET, EU summer time), so it answers both; a
# site in another zone reads its days from the hourly rollup (when the zone's offset is whole hours) or raw.
# A rollup computed from another one (``source``) reads its fields.
DAILY_ZONE = "Europe/Riga"
HOURLY = Rollup(schema.ROLLUP_1H, 3600, schema.READINGS)
DAILY = Rollup(schema.ROLLUP_1D, 86400, schema.ROLLUP_1H, DAILY_ZONE)
# Computed in this order (each from its source, which comes before it), read coarsest first.
KEPT_ROLLUPS: tuple[Rollup, ...] = (HOURLY, DAILY)
BY_NAME: dict[str, Rollup] = {r.measurement: r for r in KEPT_ROLLUPS}


@dataclass(frozen=True, slots=True)
class Kept:
    """The window ``[complete_from, kept_to)`` a rollup is complete for."""

    complete_from: datetime
    kept_to: datetime

    def covers(self, start: datetime, end: datetime) -> bool:
        return self.complete_from <= start and end <= self.kept_to


# --- reading -----------------------------------------------------------------------------------------------


def _expression(stat: str, field: str) -> str:
    def f(prefix: str) -> str:
        return influxql.identifier(f"{prefix}_{field}")

    if stat == "mean":
        return f"SUM({f('sum')}) / SUM({f('count')})"
    return {"min": f"MIN({f('min')})", "max": f"MAX({f('max')})", "count": f"SUM({f('count')})",
            "sum": f"SUM({f('sum')})"}[stat]


def _point_expression(stat: str, field: str) -> str:
    """``stat`` of ``field`` over one rollup point: its own statistic (a mean, its sum over its count)."""
    def f(prefix: str) -> str:
        return influxql.identifier(f"{prefix}_{field}")

    return f"{f('sum')} / {f('count')}" if stat == "mean" else f(stat)


def _fill_for(fill: str, stats: set[str]) -> str | None:
    """The rollup statement's fill that gives what the raw one's ``fill`` gives, or None if none does.

    What InfluxDB 1.6 does (tried): with fill(null) a raw COUNT says 0 for an empty bucket where SUM(count_F)
    says null, so counts alone are read with fill(0) and counts beside other statistics not at all; a number
    fills each operand of SUM/SUM (7/7 = 1, not 7), so a mean with fill(number) is not read; previous and
    linear fill the quotient as the raw mean, but what they do to a raw count is not worth guessing."""
    text = fill.strip().lower()
    if text == "none":
        return "none"
    if text == "null":
        if "count" not in stats:
            return "null"
        return "0" if stats == {"count"} else None
    if text in ("previous", "linear"):
        return text if "count" not in stats else None
    try:
        float(text)
    except ValueError:
        return None
    return None if "mean" in stats else text


def offsets_divide(zone: ZoneInfo, start: datetime, end: datetime, seconds: int) -> bool:
    """Whether the zone's UTC offset is a whole number of ``seconds`` everywhere in ``[start, end)``, so its local
    buckets start on the rollup's (UTC-aligned) ones. Looked at every 6 hours and at the end: no zone keeps an
    offset for less than that."""
    step = timedelta(hours=6)
    moment = start
    while True:
        offset = zone.utcoffset(moment.astimezone(UTC).replace(tzinfo=None))
        if offset is None or int(offset.total_seconds()) % seconds:
            return False
        if moment >= end:
            return True
        moment = min(moment + step, end)


def same_offsets(zone: ZoneInfo, other: ZoneInfo, start: datetime, end: datetime) -> bool:
    """Whether the two zones have the same UTC offset everywhere in ``[start, end)`` (and so the same days).
    Looked at every 6 hours, and every hour of a 6 hours in which either changes its offset (a change happens
    on a whole hour): a year costs about 1,500 looks, not 8,760, on every chart request."""
    if zone.key == other.key:
        return True

    def offsets(moment: datetime) -> tuple[object, object]:
        naive = moment.astimezone(UTC).replace(tzinfo=None)
        return zone.utcoffset(naive), other.utcoffset(naive)

    step, hour = timedelta(hours=6), timedelta(hours=1)
    moment, here = start, offsets(start)
    while moment < end:
        if here[0] != here[1]:
            return False
        following = min(moment + step, end)
        there = offsets(following)
        if there != here:  # a change in between: every hour of it
            probe = moment + hour
            while probe < following:
                seen = offsets(probe)
                if seen[0] != seen[1]:
                    return False
                probe += hour
        moment, here = following, there
    return True


def _aligned(moment: datetime, rollup: Rollup) -> bool:
    if rollup.zone != "UTC":
        return floor_to(moment, rollup.seconds, rollup.zone) == moment
    return int(moment.timestamp() * 1000) % (rollup.seconds * 1000) == 0


def choose(every_s: int, zone: ZoneInfo, start: datetime, end: datetime,
           kept: Mapping[str, Kept] | None) -> Rollup | None:
    """The coarsest kept rollup whose buckets make up the request's buckets exactly over ``[start, end)``."""
    if not kept:
        return None
    for rollup in reversed(KEPT_ROLLUPS):
        window = kept.get(rollup.measurement)
        if window is None or not window.covers(start, end):
            continue
        if not (_aligned(start, rollup) and _aligned(end, rollup)):
            continue
        if rollup.zone != "UTC":
            # a zone's days are not all 86,400 s long: only its own days, one bucket each, in a zone with its days
            if every_s == rollup.seconds and same_offsets(zone, ZoneInfo(rollup.zone), start, end):
                return rollup
            continue
        if every_s % rollup.seconds == 0 and offsets_divide(zone, start, end, rollup.seconds):
            return rollup
    return None


def statement_for(columns: Sequence[Column], where: str, every_s: int, zone: ZoneInfo, start: datetime,
                  end: datetime, *, fill: str = "none", site_zone: str | None = None,
                  kept: Mapping[str, Kept] | None = None) -> str | None:
    """The statement reading ``columns`` per bucket of ``every_s`` from a rollup, ``GROUP BY time(...), kit``
    with ``fill(<fill>)`` and the zone, answering as the raw aggregate of the same columns would; or None
    when no rollup can (a median, a bucket no rollup divides, a zone whose offset the buckets do not match,
    a window not on the rollup's bucket edges or outside what it is kept for, a fill it cannot mimic).

    ``where`` is the raw statement's WHERE text (site, kits, time over ``[start, end)``). ``site_zone`` is the
    site's zone; the request's ``zone`` says whose days the buckets are, and the daily rollup answers when those
    are its own (``DAILY_ZONE``'s). ``kept`` is ``await rollups_kept(...)`` of the database (gateway.rollups);
    without it no rollup is used, since a rollup never built would answer with nothing."""
    del site_zone  # the buckets are the request zone's days, whatever the site's
    if not columns or every_s <= 0:
        return None
    stats = {stat for _alias, stat, _field in columns}
    if not stats <= set(SUPPORTED_STATS) or any(field not in READINGS_FIELDS for _a, _s, field in columns):
        return None
    rollup_fill = _fill_for(fill, stats)
    if rollup_fill is None:
        return None
    rollup = choose(every_s, zone, start, end, kept)
    if rollup is None:
        return None
    if every_s == rollup.seconds and rollup_fill == "none":
        # the request's buckets are the rollup's own points: read them as they are. InfluxDB 1.6 spends most of a
        # GROUP BY time on each bucket it makes, so this is about 8 times faster (60 days of 20 kits: 123 ms
        # against 1,001 ms) for the same rows; empty buckets are left out either way (fill none)
        direct = ", ".join(f"{_point_expression(stat, field)} AS {influxql.identifier(alias)}"
                           for alias, stat, field in columns)
        return (f"SELECT {direct} FROM {influxql.identifier(rollup.measurement)} WHERE {where} "
                f"GROUP BY {influxql.identifier(schema.KIT)}")
    selected = ", ".join(f"{_expression(stat, field)} AS {influxql.identifier(alias)}"
                         for alias, stat, field in columns)
    return (f"SELECT {selected} FROM {influxql.identifier(rollup.measurement)} WHERE {where} "
            f"GROUP BY time({every_s}s), {influxql.identifier(schema.KIT)} fill({rollup_fill}){_tz(zone.key)}")


def state_statement() -> str:
    """How far each rollup is kept: one row per rollup tag (``parse_state`` reads it)."""
    return (f"SELECT LAST({influxql.identifier(COMPLETE_FROM)}) AS {influxql.identifier(COMPLETE_FROM)}, "
            f"LAST({influxql.identifier(KEPT_TO)}) AS {influxql.identifier(KEPT_TO)} "
            f"FROM {influxql.identifier(STATE)} GROUP BY {influxql.identifier(STATE_ROLLUP)}")


def parse_state(rows: Iterable[Mapping[str, object]]) -> dict[str, Kept]:
    """``state_statement``'s rows as the windows the kept rollups are complete for."""
    out: dict[str, Kept] = {}
    for row in rows:
        name, start, stop = row.get(STATE_ROLLUP), row.get(COMPLETE_FROM), row.get(KEPT_TO)
        if isinstance(name, str) and name in BY_NAME and isinstance(start, int) and isinstance(stop, int) \
                and start < stop:
            out[name] = Kept(_moment(start), _moment(stop))
    return out


def state_line(rollup: str, time_ms: int, *, complete_from_ms: int | None = None,
               kept_to_ms: int | None = None) -> str:
    """A ``rollup_state`` point saying how far ``rollup`` is complete (what is None is not written)."""
    fields: dict[str, FieldValue] = {}
    if complete_from_ms is not None:
        fields[COMPLETE_FROM] = int(complete_from_ms)
    if kept_to_ms is not None:
        fields[KEPT_TO] = int(kept_to_ms)
    return line(STATE, {STATE_ROLLUP: rollup}, fields, time_ms)


def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class KeptCache:
    """``rollup_state`` read at most every ``ttl_s`` per database (the read path's one I/O here: the client is
    handed in). An error reading it is no rollup: the caller reads raw."""

    def __init__(self, ttl_s: float = 20.0) -> None:
        self.ttl_s = ttl_s
        self._kept: dict[str, tuple[float, dict[str, Kept]]] = {}

    async def get(self, client: InfluxClient, database: str) -> dict[str, Kept]:
        now = time.monotonic()
        found = self._kept.get(database)
        if found is not None and now - found[0] < self.ttl_s:
            return found[1]
        try:
            kept = parse_state(await client.query_rows(state_statement(), database=database))
        except InfluxError:
            kept = {}
        self._kept[database] = (now, kept)
        return kept


# --- keeping -----------------------------------------------------------------------------------------------


def floor_to(moment: datetime, seconds: int, zone: str = "UTC") -> datetime:
    """The start of the bucket ``moment`` is in: UTC-aligned, or with ``zone`` (daily buckets) the zone's
    midnight."""
    if zone != "UTC":
        if seconds != 86400:
            raise ValueError(f"a rollup in a zone has daily buckets, not {seconds} s ones")
        local = moment.astimezone(ZoneInfo(zone))
        return datetime(local.year, local.month, local.day, tzinfo=ZoneInfo(zone)).astimezone(UTC)
    ms = int(moment.timestamp() * 1000)
    return _moment(ms - ms % (seconds * 1000))


def ceil_to(moment: datetime, seconds: int, zone: str = "UTC") -> datetime:
    floored = floor_to(moment, seconds, zone)
    if floored == moment:
        return floored
    if zone != "UTC":
        local = floored.astimezone(ZoneInfo(zone)).date() + timedelta(days=1)
        return datetime(local.year, local.month, local.day, tzinfo=ZoneInfo(zone)).astimezone(UTC)
    return floored + timedelta(seconds=seconds)


def coarsest(*, utc: bool = False) -> Rollup:
    """The kept rollup with the longest buckets (``utc``: of the UTC-aligned ones): windows are widened to its
    buckets."""
    return max((r for r in KEPT_ROLLUPS if r.zone == "UTC" or not utc), key=lambda r: r.seconds)


def _rollup_fields() -> list[str]:
    """The fields of a rollup point: every ``<stat>_<readings field>`` of the schema."""
    return [f"{stat}_{field}" for field in READINGS_FIELDS for stat in schema.ROLLUP_STATS]


def into_statement(rollup: Rollup, start: datetime, end: datetime, *, site: str | None = None,
                   kit: str | None = None) -> str:
    """The ``SELECT ... INTO`` that computes ``rollup``'s buckets over ``[start, end)`` (widened to whole buckets)
    from its source, for every site and kit or for one of them. Tags stay tags (``GROUP BY *``); empty buckets
    are not written (``fill(none)``). Send it with POST: InfluxDB refuses INTO in a GET."""
    start, end = floor_to(start, rollup.seconds, rollup.zone), ceil_to(end, rollup.seconds, rollup.zone)
    if rollup.source == schema.READINGS:
        selected = ", ".join(f"{stat}(*)" for stat in schema.ROLLUP_STATS)
    else:
        # sum of sums, sum of counts, min of mins, max of maxes: the coarser bucket's own statistics
        combine = {"sum": "sum", "count": "sum", "min": "min", "max": "max"}
        selected = ", ".join(f"{combine[name.split('_', 1)[0]]}({influxql.identifier(name)}) AS "
                             f"{influxql.identifier(name)}" for name in _rollup_fields())
    where = [f"time >= {influxql.time_literal(start)}", f"time < {influxql.time_literal(end)}"]
    if site is not None:
        where.insert(0, f"{influxql.identifier(schema.SITE)} = {influxql.string(site)}")
    if kit is not None:
        where.insert(1 if site is not None else 0, f"{influxql.identifier(schema.KIT)} = {influxql.string(kit)}")
    return (f"SELECT {selected} INTO {influxql.identifier(rollup.measurement)} FROM "
            f"{influxql.identifier(rollup.source)} WHERE {' AND '.join(where)} "
            f"GROUP BY time({rollup.seconds}s), * fill(none){_tz(rollup.zone)}")


def _tz(zone: str) -> str:
    return "" if zone == "UTC" else f" tz({influxql.string(zone)})"


def recompute_statements(start: datetime, end: datetime, *, site: str | None = None, kit: str | None = None,
                         widen: bool = True, only: Sequence[Rollup] = KEPT_ROLLUPS) -> list[str]:
    """Every kept rollup's buckets over ``[start, end)``, finest first (each coarser one reads the one before).

    ``widen``: the window is widened to whole buckets of the coarsest UTC-aligned rollup, so every finer bucket
    under them is recomputed too. A daily bucket in a zone widens itself to its day and is computed from the
    hours there are: before ``start`` they are either up to date (a pass resumed, a kit's backfill from its
    oldest late sample) or missing, and then the day begins before the window the rollups are complete for, so
    nobody reads it (``choose``). Without it each rollup recomputes only its own buckets that ``[start, end)`` touches,
    which is enough when the finer buckets before ``start`` are known to be up to date (the worker's
    recent pass: what is older than its margin and changed came with ``late_from``). ``only``: these rollups
    (in ``KEPT_ROLLUPS``' order), for a rebuild that computes each level everywhere before the next."""
    if widen:
        widest = coarsest(utc=True)
        start, end = floor_to(start, widest.seconds, widest.zone), ceil_to(end, widest.seconds, widest.zone)
    return [into_statement(rollup, start, end, site=site, kit=kit) for rollup in KEPT_ROLLUPS if rollup in only]
