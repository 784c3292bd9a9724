"""A kit's status history for its page: boots, offline periods and backfill that arrived late, from ``kit_status``.

One request to InfluxDB (four statements), each bounded to ``DAYS`` days and aggregated on the server, so the
cost is the same for a kit that reports every 10 s as for one that sleeps: boots from each hour's lowest and
highest ``boot``, silences from 5-minute counts of ``seen`` points, the kit's own "offline" words from its status
messages (few), and late samples from the ``seen`` points that had any (few).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from lauks import influxql, schema
from lauks.influx import InfluxClient

DAYS = 7
SEEN_BUCKET_S = 300
MAX_EVENTS = 30
Kind = Literal["boot", "offline", "silent", "said_offline", "late"]


@dataclass(frozen=True)
class Event:
    """One line of the history: what happened, from when (to when, for a period), and a number where it has one."""

    kind: Kind
    start: datetime
    end: datetime | None = None
    number: int | None = None  # the boot count, or the late samples
    text: str | None = None  # the firmware after a boot


def _where(site: str, kit: str, since: datetime) -> str:
    return (f"{influxql.identifier(schema.SITE)} = {influxql.string(site)} AND "
            f"{influxql.identifier(schema.KIT)} = {influxql.string(kit)} AND time >= {influxql.time_literal(since)}")


def statements(site: str, kit: str, now: datetime, days: int = DAYS) -> str:
    since = now - timedelta(days=days)
    where = _where(site, kit, since)
    status = influxql.identifier(schema.KIT_STATUS)
    boot, seen, state = (influxql.identifier(n) for n in (schema.BOOT, schema.SEEN, schema.STATE))
    late, fw = influxql.identifier(schema.LATE), influxql.identifier(schema.FW)
    return "; ".join([
        f'SELECT MIN({boot}) AS "low", MAX({boot}) AS "high", LAST({fw}) AS "fw" FROM {status} WHERE {where} '
        "GROUP BY time(1h) fill(none)",
        f"SELECT COUNT({seen}) AS \"seen\" FROM {status} WHERE {where} AND time < {influxql.time_literal(now)} "
        f"GROUP BY time({SEEN_BUCKET_S}s) fill(0)",
        f"SELECT {state} FROM {status} WHERE {where} ORDER BY time DESC LIMIT 200",
        f"SELECT {late} FROM {status} WHERE {where} AND {late} > 0 ORDER BY time DESC LIMIT 500",
    ])


def _t(ms: Any) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, UTC)


def boots(rows: Sequence[Sequence[Any]]) -> list[Event]:
    """``[time, low, high, fw]`` per hour -> the hours in which the boot count went up (a restart)."""
    out: list[Event] = []
    previous: int | None = None
    for t, low, high, fw in rows:
        if low is None or high is None:
            continue
        if (previous is not None and int(low) != previous) or int(high) != int(low):
            out.append(Event("boot", _t(t), number=int(high), text=str(fw) if fw else None))
        previous = int(high)
    return out


def silences(rows: Sequence[Sequence[Any]], threshold_s: int, now: datetime) -> list[Event]:
    """``[time, count]`` of ``seen`` per bucket -> runs of empty buckets at least ``threshold_s`` long, after the
    kit was first seen (before that it was not set up yet). A run reaching now is "silent since"."""
    out: list[Event] = []
    started = False
    run_start: datetime | None = None
    for t, count in rows:
        moment = _t(t)
        if count:
            if run_start is not None and (moment - run_start).total_seconds() >= threshold_s:
                out.append(Event("offline", run_start, moment))
            run_start, started = None, True
        elif started and run_start is None:
            run_start = moment
    if run_start is not None and (now - run_start).total_seconds() >= threshold_s:
        out.append(Event("silent", run_start))
    return out


def said_offline(rows: Sequence[Sequence[Any]]) -> list[Event]:
    return [Event("said_offline", _t(t)) for t, state in rows if state == "offline"]


def late(rows: Sequence[Sequence[Any]], gap_s: int = 3600) -> list[Event]:
    """Seen points with late samples -> one event per burst (points within ``gap_s`` of each other), summed."""
    points = sorted((_t(t), int(n)) for t, n in rows if n)
    out: list[Event] = []
    for moment, number in points:
        if out and out[-1].end is not None and (moment - out[-1].end).total_seconds() <= gap_s:
            last = out[-1]
            out[-1] = Event("late", last.start, moment, (last.number or 0) + number)
        else:
            out.append(Event("late", moment, moment, number))
    return out


def history(answers: dict[int, list[list[Any]]], threshold_s: int, now: datetime) -> list[Event]:
    events = [*boots(answers.get(0, [])), *silences(answers.get(1, []), threshold_s, now),
              *said_offline(answers.get(2, [])), *late(answers.get(3, []))]
    events.sort(key=lambda e: e.start, reverse=True)
    return events[:MAX_EVENTS]


def current_boot(rows: Sequence[Sequence[Any]]) -> int | None:
    """The newest hour's highest boot count: the kit's start number now."""
    highs = [int(row[2]) for row in rows if row[2] is not None]
    return highs[-1] if highs else None


async def fetch_history(client: InfluxClient, database: str, site: str, kit: str, threshold_s: int,
                        now: datetime) -> tuple[list[Event], int | None]:
    """The history's events, newest first, and the kit's boot count now."""
    answers: dict[int, list[list[Any]]] = {}
    async for series in client.query(statements(site, kit, now), database=database):
        answers.setdefault(series.statement_id, []).extend(series.values)
    return history(answers, threshold_s, now), current_boot(answers.get(0, []))
