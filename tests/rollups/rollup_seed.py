"""Seeded readings for the rollup tests, and the comparison of a rollup's answer with the raw aggregate's.

Every value is a multiple of 0.125 and small, so sums of thousands of them are exact in floating point and the
rollup's SUM(sum)/SUM(count) equals the raw MEAN bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from api.query import AGGREGATES
from lauks import influxql, rollups, schema
from lauks.influx import InfluxClient

NOW = datetime(2026, 3, 30, 12, 0, tzinfo=UTC)  # the day after Riga's clocks went forward (2026-03-29 01:00 UTC)
SITE = "school"
KITS = ("k1", "k2")
DAYS = 4
FIELDS = ("temperature", "humidity", "battery", schema.LATE_S, schema.FROM_AGE)
GAP = (NOW - timedelta(days=2, hours=3), NOW - timedelta(days=2))  # k1 is silent: no reading of anything


def minute_lines(site: str, kit: str, start: datetime, end: datetime, *, shift: int = 0,
                 skip: tuple[datetime, datetime] | None = None) -> list[str]:
    lines = []
    minute = int(start.timestamp()) // 60
    while minute * 60 < end.timestamp():
        moment = datetime.fromtimestamp(minute * 60, UTC)
        if skip is None or not skip[0] <= moment < skip[1]:
            i = minute + shift
            fields = [f"temperature={((i * 7) % 40) * 0.25 - 2}", f"humidity={40 + (i % 13) * 0.25}"]
            if i % 5 == 0:
                fields.append(f"battery={3.0 + (i % 9) * 0.125}")
            if i % 17 == 0:
                fields.append(f"{schema.LATE_S}={60 + i % 7 * 60}i")
            if i % 23 == 0:
                fields.append(f"{schema.FROM_AGE}=1i")
            lines.append(f"{schema.READINGS},{schema.KIT}={kit},{schema.SITE}={site} {','.join(fields)} "
                         f"{minute * 60_000}")
        minute += 1
    return lines


async def seed(influx: InfluxClient, database: str) -> None:
    start = NOW - timedelta(days=DAYS)
    lines = minute_lines(SITE, "k1", start, NOW, skip=GAP) + minute_lines(SITE, "k2", start, NOW, shift=3) + \
        minute_lines("other", "k1", start, NOW, shift=5)
    await influx.write(database, lines, precision="ms")


def columns(stats: Sequence[str], fields: Sequence[str] = FIELDS) -> list[rollups.Column]:
    return [(f"{field}__{stat}", stat, field) for field in fields for stat in stats]


def where(start: datetime, end: datetime, kits: Sequence[str] = ()) -> str:
    parts = [f"{influxql.identifier(schema.SITE)} = {influxql.string(SITE)}"]
    if kits:
        parts.append(f"{influxql.identifier(schema.KIT)} =~ {influxql.regex_exact(list(kits))}")
    parts.append(f"time >= {influxql.time_literal(start)} AND time < {influxql.time_literal(end)}")
    return " AND ".join(parts)


def raw_statement(cols: Sequence[rollups.Column], condition: str, every_s: int, zone: ZoneInfo, fill: str) -> str:
    selected = ", ".join(f"{AGGREGATES[stat]}({influxql.identifier(field)}) AS {influxql.identifier(alias)}"
                         for alias, stat, field in cols)
    tz = "" if zone.key == "UTC" else f" tz({influxql.string(zone.key)})"
    return (f"SELECT {selected} FROM {influxql.identifier(schema.READINGS)} WHERE {condition} "
            f"GROUP BY time({every_s}s), {influxql.identifier(schema.KIT)} fill({fill}){tz}")


async def answer(influx: InfluxClient, database: str, statement: str) -> list[tuple[Any, ...]]:
    """Every series as (tags, columns, rows), in the order InfluxDB gives them."""
    out: list[tuple[Any, ...]] = []
    async for series in influx.query(statement, database=database):
        out.append((sorted(series.tags.items()), series.columns, series.values))
    return out


async def compare(influx: InfluxClient, database: str, kept: dict[str, rollups.Kept], stats: Sequence[str],
                  every_s: int, zone: ZoneInfo, start: datetime, end: datetime, *, fill: str = "none",
                  fields: Sequence[str] = FIELDS, kits: Sequence[str] = ()) -> tuple[str, list[Any], list[Any]]:
    """The rollup statement, its answer and the raw aggregate's answer (the statement must exist)."""
    cols = columns(stats, fields)
    condition = where(start, end, kits)
    statement = rollups.statement_for(cols, condition, every_s, zone, start, end, fill=fill, kept=kept)
    assert statement is not None, (stats, every_s, zone, start, end, fill)
    raw = await answer(influx, database, raw_statement(cols, condition, every_s, zone, fill))
    assert raw, "the raw aggregate must have rows for the comparison to mean anything"
    return statement, await answer(influx, database, statement), raw
