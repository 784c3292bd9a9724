"""The rollup worker: keeps the rollups (``readings_1h``, ``readings_1d``: lauks.rollups.KEPT_ROLLUPS) up to date
beside the raw readings.

Every pass (``gateway_rollups_period_s``) InfluxDB recomputes, with server-side ``SELECT ... INTO``
(``lauks.rollups``), the buckets written to since the previous pass began (less ``LATE_MARGIN``: samples up to
5 minutes late carry no notice), and the buckets of backfill: a seen point of ``kit_status`` with ``late > 0``
carries ``late_from``, the oldest late sample's time, and that kit's buckets from there are recomputed. Then it
records in ``rollup_state`` that the rollups are complete up to the pass's start less the margin, so readers use
them only there (``lauks.rollups.Kept``).

The cursor is kept in memory; at start it resumes from the recorded ``kept_to`` (at most ``resume_max`` back,
beyond that it starts afresh ``lookback`` back and records that the rollups are complete only from there).
Recomputing a bucket writes the same points again, so several gateways of a share group doing it at once, or a
pass repeated after a failure, change nothing. InfluxDB down or refusing: the pass is logged, counted and tried
again next period from the same cursor; the worker never ends the gateway.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lauks import influxql, rollups, schema
from lauks.influx import InfluxClient, InfluxError

log = logging.getLogger("lauks.gateway.rollups")

SLICE = timedelta(days=1)  # a long catch-up is recomputed a day at a time, so no statement runs for minutes
BACKFILL_SLICE = timedelta(days=31)


@dataclass
class RollupStats:
    passes: int = 0
    failures: int = 0
    backfills: int = 0  # kits whose late samples had older buckets recomputed
    points_written: int = 0
    last_pass_s: float = 0.0


async def run_into(client: InfluxClient, database: str, statement: str) -> int:
    """Run one ``SELECT ... INTO`` (a POST, as InfluxDB requires); the points it wrote."""
    written = 0
    async for series in client.query(statement, database=database, method="POST"):
        if "written" in series.columns:
            index = series.columns.index("written")
            written += sum(int(row[index] or 0) for row in series.values)
    return written


async def recompute(client: InfluxClient, database: str, start: datetime, end: datetime, *, site: str | None = None,
                    kit: str | None = None, slice_: timedelta = SLICE, widen: bool = True,
                    only: Sequence[rollups.Rollup] = rollups.KEPT_ROLLUPS) -> int:
    """Every kept rollup's buckets over ``[start, end)`` (or those of ``only``), a slice at a time, finest first
    in each slice; the points written. A daily bucket a slice's edge cuts is computed again in the next slice,
    from its whole day."""
    written = 0
    cursor = start
    while cursor < end:
        stop = min(cursor + slice_, end)
        for statement in rollups.recompute_statements(cursor, stop, site=site, kit=kit, widen=widen, only=only):
            written += await run_into(client, database, statement)
        cursor = stop
    return written


async def read_kept(client: InfluxClient, database: str) -> dict[str, rollups.Kept]:
    return rollups.parse_state(await client.query_rows(rollups.state_statement(), database=database))


async def write_state(client: InfluxClient, database: str, now: datetime, *, complete_from: datetime | None,
                      kept_to: datetime) -> None:
    ms = _ms(now)
    await client.write(database, [rollups.state_line(
        r.measurement, ms, complete_from_ms=None if complete_from is None else _ms(complete_from),
        kept_to_ms=_ms(kept_to)) for r in rollups.KEPT_ROLLUPS], precision="ms")


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def backfill_statement(since: datetime, until: datetime) -> str:
    """Per kit, the oldest late sample any seen point over ``[since, until)`` reports."""
    late_from = influxql.identifier(schema.LATE_FROM)
    return (f"SELECT MIN({late_from}) AS {late_from} FROM {influxql.identifier(schema.KIT_STATUS)} "
            f"WHERE {influxql.identifier(schema.LATE)} > 0 AND time >= {influxql.time_literal(since)} "
            f"AND time < {influxql.time_literal(until)} "
            f"GROUP BY {influxql.identifier(schema.SITE)}, {influxql.identifier(schema.KIT)}")


class RollupWorker:
    """One gateway's rollup keeper. ``clock`` is Unix seconds (tests move it)."""

    def __init__(self, client: InfluxClient, database: str, *, period_s: float = 60.0,
                 lookback: timedelta = timedelta(hours=26), resume_max: timedelta = timedelta(days=8),
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.database = database
        self.period_s = period_s
        self.lookback = lookback
        self.resume_max = resume_max
        self.clock = clock
        self.stats = RollupStats()
        self.cursor: datetime | None = None  # where the previous pass began: this one recomputes from here
        self._last_warning = 0.0

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    async def _start_cursor(self, now: datetime) -> tuple[datetime, datetime | None]:
        """Where the first pass begins, and the new start of the complete window if there is one."""
        kept = (await read_kept(self.client, self.database)).get(rollups.KEPT_ROLLUPS[0].measurement)
        if kept is not None and kept.kept_to >= now - self.resume_max:
            return kept.kept_to, None
        widest = rollups.coarsest(utc=True)
        start = rollups.floor_to(now - self.lookback, widest.seconds, widest.zone)
        if kept is None:
            older = await self.client.query_rows(
                f"SELECT * FROM {influxql.identifier(schema.READINGS)} WHERE time < {influxql.time_literal(start)} "
                "LIMIT 1", database=self.database)
            if older:
                log.info("the rollups are kept from %s on; `lauks rollups rebuild` builds them for the older "
                         "readings", start.isoformat())
            # with nothing older, what this pass computes is all there is: complete from any time
            return start, start if older else rollups.EARLIEST
        log.warning("the rollups were kept up to %s, longer ago than %s: they are kept again from %s; run "
                    "`lauks rollups rebuild --start %s` to fill the time between", kept.kept_to.isoformat(),
                    self.resume_max, start.isoformat(), kept.kept_to.date().isoformat())
        return start, start

    async def run_pass(self) -> bool:
        """One pass; False (logged and counted) if InfluxDB failed it: the next pass redoes it all."""
        began = time.monotonic()
        now = self.now()
        try:
            written = await self._pass(now)
        except (InfluxError, OSError) as error:
            self.stats.failures += 1
            if time.monotonic() - self._last_warning >= 300 or self.stats.failures == 1:
                self._last_warning = time.monotonic()
                log.warning("could not keep the rollups up to date (%s); trying again in %.0f s (%d passes failed "
                            "so far): until then charts and exports over long windows read the raw readings",
                            error, self.period_s, self.stats.failures)
            return False
        self.stats.passes += 1
        self.stats.points_written += written
        self.stats.last_pass_s = time.monotonic() - began
        return True

    async def _pass(self, now: datetime) -> int:
        complete_from: datetime | None = None
        cursor = self.cursor
        if cursor is None:
            cursor, complete_from = await self._start_cursor(now)
        since = cursor - rollups.LATE_MARGIN
        # after the first pass, the finer buckets before ``since`` are up to date (or come below, as backfill)
        written = await recompute(self.client, self.database, since, now, widen=self.cursor is None)
        # backfill: only buckets before ``since`` need it, the recent ones were just recomputed
        for row in await self.client.query_rows(backfill_statement(since, now), database=self.database):
            late_from = row.get(schema.LATE_FROM)
            site, kit = row.get(schema.SITE), row.get(schema.KIT)
            if not isinstance(site, str) or not isinstance(kit, str):
                continue
            # a seen point of a gateway that does not say late_from yet: the kit's lookback, the best we know
            start = datetime.fromtimestamp(late_from / 1000, UTC) if isinstance(late_from, int) \
                else now - self.lookback
            if start < since:
                log.info("recomputing the rollups of %s/%s from %s: late samples arrived", site, kit,
                         start.isoformat())
                # one kit's month is a few tens of thousands of points: a statement each, not one a day
                written += await recompute(self.client, self.database, start, since, site=site, kit=kit,
                                           slice_=BACKFILL_SLICE)
                self.stats.backfills += 1
        await write_state(self.client, self.database, now, complete_from=complete_from,
                          kept_to=now - rollups.LATE_MARGIN)
        self.cursor = now
        return written

    async def run(self) -> None:
        """Pass after pass until cancelled; nothing it meets ends it."""
        while True:
            try:
                await self.run_pass()
            except Exception:  # a bug must not end the gateway: count it, go on
                self.stats.failures += 1
                log.exception("the rollup pass failed")
            await asyncio.sleep(self.period_s)
