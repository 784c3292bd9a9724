"""``lauks rollups rebuild`` and ``lauks rollups status``: recompute the rollups from the raw readings, and say
how far they are kept.

A rebuild recomputes every bucket of the window (all of it by default: from the oldest raw reading to now) a
month at a time, printing each month's points and seconds, so a class of mistakes (a bug, a new rollup) is put
right with one command while the gateway goes on keeping the recent buckets. It only rewrites rollup points:
raw readings are read, never changed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from gateway.rollups import read_kept, recompute, write_state
from lauks import influxql, rollups, schema
from lauks.influx import InfluxClient, InfluxError
from lauks.topics import is_valid_id

MONTH = timedelta(days=31)


class RebuildError(Exception):
    """Bad input to the rebuild: said to the person, nothing done."""


def register(commands: argparse._SubParsersAction[Any], kit_commands: argparse._SubParsersAction[Any]) -> None:
    del kit_commands
    parser = commands.add_parser("rollups", help="rebuild the rollups of readings from raw, or say how far "
                                                 "they are kept")
    sub = parser.add_subparsers(dest="rollups_command", metavar="ROLLUPS_COMMAND")
    parser.set_defaults(func=lambda args: _usage(parser))
    rebuild = sub.add_parser("rebuild", help="recompute the rollups from the raw readings (all, or a site / window)",
                             description="Recompute the rollups (readings_1h, then readings_1d from it) from the raw "
                                         "readings, a month at a time. Raw readings are never changed.")
    rebuild.add_argument("--site", help="only this site's kits")
    rebuild.add_argument("--start", help="from this day (2025-03-01, UTC) or time (2025-03-01T08:00+02:00); "
                                         "default: the oldest raw reading")
    rebuild.add_argument("--end", help="up to this day (included) or time; default: now")
    rebuild.add_argument("--parallel", type=int, default=2, choices=range(1, 9), metavar="N",
                         help="months recomputed at once (default 2; InfluxDB uses a core for each)")
    rebuild.set_defaults(func=run_rebuild)
    status = sub.add_parser("status", help="how far each rollup is kept, and how many points it has")
    status.set_defaults(func=run_status)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def parse_moment(text: str, *, is_end: bool, what: str) -> datetime:
    """A day (UTC midnight; an end day is included) or an ISO 8601 time (UTC if it has no offset)."""
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text) + timedelta(days=1 if is_end else 0)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except (ValueError, OverflowError):
        raise RebuildError(f"--{what} {text[:40]!r} is not a day like 2025-03-01 or a time like 2025-03-01T08:00 "
                           "or 2025-03-01T08:00+02:00") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _settings() -> Any:
    from lauks.settings import Settings

    return Settings()


async def _sites(client: InfluxClient, database: str) -> list[str]:
    statement = f"SHOW TAG VALUES FROM {influxql.identifier(schema.READINGS)} WITH KEY = " \
                f"{influxql.identifier(schema.SITE)}"
    return sorted(str(row["value"]) for row in await client.query_rows(statement, database=database))


async def _oldest(client: InfluxClient, database: str, site: str | None) -> datetime | None:
    where = f" WHERE {influxql.identifier(schema.SITE)} = {influxql.string(site)}" if site else ""
    rows = await client.query_rows(f"SELECT * FROM {influxql.identifier(schema.READINGS)}{where} LIMIT 1",
                                   database=database)
    return datetime.fromtimestamp(rows[0]["time"] / 1000, UTC) if rows else None


async def rebuild(client: InfluxClient, database: str, *, site: str | None, start: datetime | None,
                  end: datetime | None, out: Any = sys.stdout, now: datetime | None = None, parallel: int = 2) -> int:
    """Recompute the rollups over the window, ``parallel`` months at once; the points written. ``RebuildError``
    for bad input (nothing done)."""
    if site is not None:
        if not is_valid_id(site):
            raise RebuildError(f"--site {site[:40]!r} is not a site name (1-32 of a-z, 0-9 and '-')")
        known = await _sites(client, database)
        if site not in known:
            raise RebuildError(f"site {site!r} has no readings in database {database!r}; the sites with readings "
                               f"are: {', '.join(known) or 'none'}")
    began = now or datetime.now(UTC)
    stop = end or began
    first = start or await _oldest(client, database, site)
    if first is None:
        print("no raw readings: nothing to rebuild", file=out)
        return 0
    if first >= stop:
        raise RebuildError(f"the window ends ({stop.isoformat()}) before it starts ({first.isoformat()}): "
                           "swap --start and --end")
    widest = rollups.coarsest()
    first, stop = rollups.floor_to(first, widest.seconds, widest.zone), rollups.ceil_to(stop, widest.seconds,
                                                                                         widest.zone)
    kept = (await read_kept(client, database)).get(rollups.KEPT_ROLLUPS[0].measurement)
    print(f"rebuilding {', '.join(r.measurement for r in rollups.KEPT_ROLLUPS)} from raw readings"
          f"{f' of site {site}' if site else ''}, {first.isoformat()} to {stop.isoformat()}, a month at a time",
          file=out, flush=True)
    clock = time.monotonic()
    months: list[tuple[datetime, datetime]] = []
    while first + MONTH * len(months) < stop:
        months.append((first + MONTH * len(months), min(first + MONTH * (len(months) + 1), stop)))
    slots = asyncio.Semaphore(max(1, parallel))

    async def month(rollup: rollups.Rollup, since: datetime, until: datetime) -> int:
        async with slots:
            started = time.monotonic()
            written = await recompute(client, database, since, until, site=site, slice_=MONTH, only=(rollup,))
            print(f"  {rollup.measurement} {since.date()} .. {until.date()}: {written:,} rollup points in "
                  f"{time.monotonic() - started:.1f} s", file=out, flush=True)
            return written

    # a level at a time: months run at once, and a day a month's edge cuts needs the hours of both months
    total = 0
    for rollup in rollups.KEPT_ROLLUPS:
        total += sum(await asyncio.gather(*(month(rollup, since, until) for since, until in months)))
    seconds = time.monotonic() - clock
    # the complete window grows only by a rebuild of every site that reaches it (or, with none yet, reaches now)
    reaches_now = stop >= began - rollups.LATE_MARGIN
    if kept is None:
        grows = site is None and reaches_now
        kept_to = began - rollups.LATE_MARGIN
    else:
        grows = site is None and first <= kept.complete_from <= stop
        kept_to = max(began - rollups.LATE_MARGIN, kept.kept_to) if reaches_now else kept.kept_to
    if grows:
        # from the oldest reading on: nothing is older, so they are complete from any time
        complete_from = rollups.EARLIEST if start is None else first
        await write_state(client, database, began, complete_from=complete_from, kept_to=kept_to)
        print(f"the rollups are complete from {complete_from.date()}", file=out)
    print(f"rebuilt: {total:,} rollup points in {seconds:.1f} s", file=out, flush=True)
    return total


async def status(client: InfluxClient, database: str, out: Any = sys.stdout) -> None:
    kept = await read_kept(client, database)
    now = datetime.now(UTC)
    for rollup in rollups.KEPT_ROLLUPS:
        window = kept.get(rollup.measurement)
        rows = await client.query_rows(f"SELECT COUNT(*) FROM {influxql.identifier(rollup.measurement)}",
                                       database=database)
        points = max((v for row in rows for k, v in row.items() if k != "time" and isinstance(v, int)), default=0)
        if window is None:
            print(f"{rollup.measurement}: not kept yet ({points:,} points); the gateway keeps it from its start, "
                  "`lauks rollups rebuild` builds the rest", file=out)
            continue
        behind = (now - window.kept_to).total_seconds()
        print(f"{rollup.measurement}: complete from {window.complete_from.isoformat()} to "
              f"{window.kept_to.isoformat()} ({behind:.0f} s ago), {points:,} points", file=out)


def _run(work: Any) -> int:
    try:
        asyncio.run(work)
    except RebuildError as error:
        print(f"lauks rollups: {error}", file=sys.stderr)
        return 2
    except InfluxError as error:
        print(f"lauks rollups: InfluxDB failed: {error}. The months printed above are done; run the command "
              "again when InfluxDB is back (recomputing a bucket twice is harmless)", file=sys.stderr)
        return 1
    return 0


def run_rebuild(args: argparse.Namespace) -> int:
    try:
        start = parse_moment(args.start, is_end=False, what="start") if args.start else None
        end = parse_moment(args.end, is_end=True, what="end") if args.end else None
    except RebuildError as error:
        print(f"lauks rollups: {error}", file=sys.stderr)
        return 2
    settings = _settings()

    async def work() -> None:
        async with settings.influx_client() as client:
            await rebuild(client, settings.influx_database, site=args.site, start=start, end=end,
                          parallel=args.parallel)

    return _run(work())


def run_status(args: argparse.Namespace) -> int:
    del args
    settings = _settings()

    async def work() -> None:
        async with settings.influx_client() as client:
            await status(client, settings.influx_database)

    return _run(work())
