"""The Data quality dashboard's flag panels: the bucket rules of ``lauks.quality`` written in InfluxQL.

Grafana reads InfluxDB itself, so it cannot call ``lauks.quality``; what it can do is the rule for an aggregated
bucket, which needs only the bucket's statistics (min, max, count of a quantity, min battery, max late_s, count
of from_age). Each panel counts, per kit (and per quantity), the buckets that have the flag in each of Grafana's
intervals. The buckets are read from the raw readings or from a rollup, as the dashboard's ``resolution``
variable says (Grafana cannot switch measurement by interval on its own): every panel has a query per source,
and each query holds ``'$resolution' = '<source>'``, which InfluxDB reduces to false for the sources not chosen
(the statement then reads nothing). docs/dashboards.md says when to choose which.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dashboards import interpolate
from dashboards.grafana import Query, Variable
from lauks import quality, rollups, schema
from lauks.catalog import CATALOG, Quantity
from lauks.influxql import identifier as quoted

RAW = "raw"


@dataclass(frozen=True)
class Source:
    """Where bucket statistics come from: the raw readings, or a rollup and its bucket length."""

    name: str  # the value of the ``resolution`` variable
    measurement: str
    seconds: int | None  # None: raw

    def stat(self, stat: str, field: str) -> str:
        """min, max or count of ``field`` over one bucket of whole rollup buckets (as ``lauks.rollups`` combines)."""
        if self.seconds is None:
            return f"{stat}({quoted(field)})"
        combine = {"min": "min", "max": "max", "count": "sum"}[stat]
        return f"{combine}({quoted(f'{stat}_{field}')})"


def _label(seconds: int) -> str:
    return f"{seconds // 3600}h" if seconds % 3600 == 0 else f"{seconds // 60}m"


RAW_SOURCE = Source(RAW, schema.READINGS, None)
# Grafana's buckets are UTC-aligned: the daily rollup's are the schools' days, so the dashboards never read it
SOURCES: tuple[Source, ...] = (RAW_SOURCE, *(Source(_label(r.seconds), r.measurement, r.seconds)
                                             for r in rollups.KEPT_ROLLUPS if r.zone == "UTC"))

RESOLUTION = Variable(
    "resolution", "Resolution", "", options=tuple(s.name for s in SOURCES), default=RAW,
    description="Where the quality panels read: raw readings (up to a few days), or a rollup (longer ranges).")
interpolate.CURRENT[RESOLUTION.name] = RESOLUTION.default

_SITE, _KIT = quoted(schema.SITE), quoted(schema.KIT)
_WHERE = f"{_SITE} =~ /^$site$/ AND {_KIT} =~ /^$kit$/"
_BY_KIT = f"{_SITE}, {_KIT}"
BY_KIT = (schema.SITE, schema.KIT)
RAW_MIN_INTERVAL = "2m"  # a raw bucket should hold two readings of a kit sending every minute, to see a change


def guard(names: Sequence[str]) -> str:
    """True in InfluxDB only when the dashboard's resolution is one of ``names``."""
    tests = [f"'$resolution' = '{name}'" for name in names]
    return tests[0] if len(tests) == 1 else "(" + " OR ".join(tests) + ")"


def _count(alias: str, stats: str, source: Source, bucket: str, rule: str, names: Sequence[str]) -> Query:
    """Flagged buckets per Grafana interval: ``stats`` per ``bucket`` of ``source``, those meeting ``rule``
    counted. The first statistic's alias is what is counted (it exists in every bucket with data)."""
    counted = stats.split(" AS ", 1)[1].split(",", 1)[0].strip()
    inner = (f"SELECT {stats} FROM {quoted(source.measurement)} WHERE {_WHERE} AND {guard(names)} AND $timeFilter "
             f"GROUP BY time({bucket}), {_BY_KIT}")
    sql = (f"SELECT count({counted}) AS {quoted(alias)} FROM ({inner}) WHERE {rule} "
           f"GROUP BY time($__interval), {_BY_KIT} fill(none)")
    return Query(sql, (alias,), BY_KIT, alias="$col $tag_site/$tag_kit", resolution=tuple(names))


def aggregate_queries(q: Quantity) -> tuple[Query, ...]:
    """``q``'s default aggregate per kit and Grafana interval, from raw or from the rollup the resolution names:
    a mean is the sum of sums over the sum of counts, a sum the sum of sums, as the raw aggregate is."""
    out = []
    for source in SOURCES:
        if source.seconds is None:
            fields = f"{q.default_agg}({quoted(q.name)}) AS {quoted(q.name)}"
        elif q.default_agg == "sum":
            fields = f"sum({quoted('sum_' + q.name)}) AS {quoted(q.name)}"
        else:
            fields = f"sum({quoted('sum_' + q.name)}) / sum({quoted('count_' + q.name)}) AS {quoted(q.name)}"
        sql = (f"SELECT {fields} FROM {quoted(source.measurement)} WHERE {_WHERE} AND {guard([source.name])} "
               f"AND $timeFilter GROUP BY time($__interval), {_BY_KIT} fill(none)")
        out.append(Query(sql, (q.name,), BY_KIT, alias="$tag_site/$tag_kit", resolution=(source.name,)))
    return tuple(out)


# --- stuck: a bucket of stuck_minutes holding two or more readings, all one value ----------------------------

def _stuck_source(q: Quantity) -> Source:
    """The coarsest kept rollup whose buckets make up stuck_minutes exactly, else raw."""
    assert q.stuck_minutes is not None
    fitting = [s for s in SOURCES[1:] if s.seconds and (q.stuck_minutes * 60) % s.seconds == 0]
    return max(fitting, key=lambda s: s.seconds or 0) if fitting else RAW_SOURCE


def stuck_queries(q: Quantity) -> tuple[Query, ...]:
    """The stuck rule of ``q``: raw when the resolution is raw, else the rollup that fits stuck_minutes (raw for
    every resolution if none does)."""
    assert q.stuck_minutes is not None
    bucket = f"{int(q.stuck_minutes)}m"
    rollup = _stuck_source(q)
    plan = [(RAW_SOURCE, [s.name for s in SOURCES])] if rollup is RAW_SOURCE else \
        [(RAW_SOURCE, [RAW]), (rollup, [s.name for s in SOURCES[1:]])]
    return tuple(
        _count(q.name, f"{source.stat('max', q.name)} - {source.stat('min', q.name)} AS \"spread\", "
                       f"{source.stat('count', q.name)} AS \"n\"", source, bucket, '"spread" = 0 AND "n" >= 2', names)
        for source, names in plan)


# --- spike: a bucket whose range is more than max_rate x its minutes ---------------------------------------

SPIKE_BUCKET_S = 600  # the spike rule's buckets at the rollup resolutions


def spike_queries(q: Quantity) -> tuple[Query, ...]:
    """Raw buckets of Grafana's interval; for the rollup resolutions, raw buckets of 10 minutes. No rollup can
    answer a spike: an hourly bucket would need a range of 60 x max_rate (120 °C for air temperature) to prove
    one, so a rollup resolution reads the raw readings here, in buckets small enough to see a one-reading spike
    (a 10-minute rollup was dropped: it cost two and a half times the hourly one to keep, lauks.rollups)."""
    assert q.max_rate is not None
    stats = "{max} - {min} AS \"spread\""
    spread = stats.format(max=RAW_SOURCE.stat("max", q.name), min=RAW_SOURCE.stat("min", q.name))
    raw = _count(q.name, spread, RAW_SOURCE, "$__interval", f'"spread" > {q.max_rate:g} * $__interval_ms / 60000',
                 [RAW])
    fine = _count(q.name, spread, RAW_SOURCE, f"{SPIKE_BUCKET_S}s",
                  f'"spread" > {q.max_rate * SPIKE_BUCKET_S / 60:g}', [s.name for s in SOURCES[1:]])
    return raw, fine


# --- the facts: battery, late_s, from_age, per bucket of the chosen resolution -----------------------------

def _per_source(alias: str, stat: str, field: str, rule: str) -> tuple[Query, ...]:
    out = []
    for source in SOURCES:
        bucket = "$__interval" if source.seconds is None else f"{source.seconds}s"
        out.append(_count(alias, f"{source.stat(stat, field)} AS {quoted(field)}", source, bucket, rule,
                          [source.name]))
    return tuple(out)


BATTERY_LOW = _per_source("battery_low", "min", schema.BATTERY,
                          f"{quoted(schema.BATTERY)} < {quality.BATTERY_LOW_V:g}")
BACKFILLED = _per_source("backfilled", "max", schema.LATE_S, f"{quoted(schema.LATE_S)} > {quality.BACKFILL_S}")
CLOCK_ESTIMATED = _per_source("clock_estimated", "count", schema.FROM_AGE, f"{quoted(schema.FROM_AGE)} > 0")

STUCK = tuple(query for q in CATALOG.values() if q.stuck_minutes is not None for query in stuck_queries(q))
SPIKE = tuple(query for q in CATALOG.values() if q.max_rate is not None for query in spike_queries(q))

CALIBRATED_TEXT = (
    "**Calibrated** values cannot be shown here: calibrations are kept in the metadata store, not in InfluxDB, "
    "and Grafana reads only InfluxDB. The raw readings these panels count are never changed by a calibration.\n\n"
    "A kit's calibrations: `GET /v1/sites/{site}/kits/{kit}/calibrations`, and "
    "the readings API marks each calibrated value with the flag `calibrated` (`calibration=applied`, the default; "
    "`calibration=raw` gives the values as measured). See docs/api.md.")
