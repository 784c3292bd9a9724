"""Benchmark: rollups against raw readings on a year of one-minute data.

    python -m bench.rollups [--days 365] [--kits 20] [--repeat 20] [--raw-repeat 3]

Starts its own InfluxDB (lauks.services), seeds ``--days`` of one-minute readings of ``--kits`` kits x 5
quantities (bench.web's seeding: line protocol in large batches) and prints how long that took. With the real
``lauks api`` process it times the web kit page's year chart (/w/series/kit/...?range=1y&width=800) on raw
readings; then builds the rollups with ``lauks rollups rebuild``'s code and prints how long that took, and
times, rollup against raw in one run:

- the hourly and the daily aggregate (mean of the 5 quantities) of the whole site over the year, and of one
  kit, each as one statement read the way the API reads (chunked, parsed): p50/p95 and the ratio raw/rollup;
- the same year chart again, now reading the rollups.

It prints figures and never asserts them. Targets (issue 13): ratio >= 20 and p95 <= 100 ms for the
aggregates, year chart p95 <= 150 ms; the whole run under 10 minutes.
"""

from __future__ import annotations

import asyncio
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from bench.command import arguments
from bench.web import DATABASE, QUANTITIES, SITE, kit_names, seed, wait_for_quiet
from gateway.rollups_cli import rebuild
from harness.api import start_api
from harness.command import ROOT, lauks_command
from lauks import influxql, rollups, schema
from lauks.influx import InfluxClient
from lauks.services import Influxd, free_port
from metastore.registry import register_kit

ZONE = ZoneInfo("Europe/Riga")


class Tee(io.StringIO):
    """The rebuild's progress, printed as it comes and kept to count its slices."""

    def write(self, text: str) -> int:
        sys.stdout.write(text)
        return super().write(text)


def percentiles(samples: Sequence[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def timed(client: InfluxClient, statement: str, repeat: int, *, warm: bool = True) -> tuple[list[float], int]:
    """Seconds of each run of ``statement`` (read chunked and parsed, as the API reads), and the rows it gave; with
    ``warm``, a first run warms the caches and is not counted."""
    times, rows = [], 0
    for _ in range(repeat + int(warm)):
        began = time.perf_counter()
        rows = 0
        async for series in client.query(statement, database=DATABASE):
            rows += len(series.values)
        times.append(time.perf_counter() - began)
    return times[int(warm):], rows


async def buckets(client: InfluxClient, statement: str) -> set[tuple[str, int]]:
    """Each row's kit and time."""
    found = set()
    async for series in client.query(statement, database=DATABASE):
        index = series.columns.index("time")
        found |= {(series.tags.get(schema.KIT, ""), int(row[index])) for row in series.values}
    return found


async def missing(client: InfluxClient, rolled: str, raw: str) -> str:
    """Which buckets the raw aggregate has and the rollup does not (or the other way): a rollup must miss none."""
    mine, theirs = await buckets(client, rolled), await buckets(client, raw)
    lacking, extra = sorted(theirs - mine, key=lambda b: b[1]), sorted(mine - theirs, key=lambda b: b[1])

    def span(found: list[tuple[str, int]]) -> str:
        kits = sorted({kit for kit, _ in found})
        return (f"{len(found)} from {datetime.fromtimestamp(found[0][1] / 1000, UTC).isoformat()} to "
                f"{datetime.fromtimestamp(found[-1][1] / 1000, UTC).isoformat()} of {len(kits)} kits ({kits[0]}...)")

    return (f"    the rollup lacks {span(lacking) if lacking else 'none'}; it has beyond raw "
            f"{span(extra) if extra else 'none'}")


def year_window(now: datetime) -> tuple[datetime, datetime]:
    """The last 365 whole local days before today."""
    today = datetime.combine(now.astimezone(ZONE).date(), clock_time(0), ZONE)
    return (today - timedelta(days=365)).astimezone(UTC), today.astimezone(UTC)


async def aggregates(url: str, now: datetime, kit: str, repeat: int, raw_repeat: int) -> None:
    start, end = year_window(now)
    async with InfluxClient(url, timeout_s=600) as client:
        kept = rollups.parse_state(await client.query_rows(rollups.state_statement(), database=DATABASE))
        print(f"aggregates of {start.date()} .. {end.date()} (mean of {len(QUANTITIES)} quantities, Europe/Riga; "
              f"rollup {repeat} runs, raw {raw_repeat}; target ratio >= 20, p95 <= 100 ms):")
        for label, kits in (("site", []), (f"one kit ({kit})", [kit])):
            for every_s, name in ((3600, "hourly"), (86400, "daily")):
                where = [f"{influxql.identifier(schema.SITE)} = {influxql.string(SITE)}"]
                if kits:
                    where.append(f"{influxql.identifier(schema.KIT)} =~ {influxql.regex_exact(kits)}")
                where.append(f"time >= {influxql.time_literal(start)} AND time < {influxql.time_literal(end)}")
                condition = " AND ".join(where)
                columns = [(q, "mean", q) for q in QUANTITIES]
                rolled = rollups.statement_for(columns, condition, every_s, ZONE, start, end, kept=kept)
                if rolled is None:
                    print(f"  {label} {name}: no rollup answers it")
                    continue
                selected = ", ".join(f"MEAN({influxql.identifier(q)}) AS {influxql.identifier(q)}" for q in QUANTITIES)
                raw = (f"SELECT {selected} FROM {influxql.identifier(schema.READINGS)} WHERE {condition} "
                       f"GROUP BY time({every_s}s), {influxql.identifier(schema.KIT)} fill(none) "
                       f"tz({influxql.string(ZONE.key)})")
                # a site's hourly year is 175,200 rows: InfluxDB's JSON alone takes a while, so fewer runs
                rollup_times, rollup_rows = await timed(client, rolled, repeat if kits or every_s > 3600 else
                                                        max(3, repeat // 4))
                # a raw run takes seconds and reads every point: no warm-up run
                raw_times, raw_rows = await timed(client, raw, raw_repeat, warm=False)
                (r50, r95), (w50, w95) = percentiles(rollup_times), percentiles(raw_times)
                source = rolled.split(" FROM ", 1)[1].split(" ", 1)[0]
                print(f"  {label:<16} {name:<6} rollup {source:<16} p50={r50 * 1000:7.1f} ms p95={r95 * 1000:7.1f} ms"
                      f" | raw p50={w50 * 1000:8.1f} ms p95={w95 * 1000:8.1f} ms | ratio (p50) {w50 / r50:6.1f}"
                      f" | {rollup_rows:,} rows{'' if rollup_rows == raw_rows else f' (raw {raw_rows:,})'}")
                if rollup_rows != raw_rows:
                    print(await missing(client, rolled, raw))


def chart(api_url: str, kit: str, repeat: int, label: str) -> None:
    path = f"/w/series/kit/{SITE}/{kit}?q=temperature&range=1y&width=800"
    times = []
    with httpx.Client(base_url=api_url, timeout=300) as client:
        for n in range(repeat + 1):
            began = time.perf_counter()
            answer = client.get(path)
            if n:
                times.append(time.perf_counter() - began)
            if answer.status_code != 200:
                print(f"year chart: {path} answered {answer.status_code} {answer.text[:200]}")
                return
    p50, p95 = percentiles(times)
    points = len(answer.json()["t"])
    print(f"web kit page's year chart, {label} ({repeat} requests, {points} buckets): p50={p50 * 1000:.1f} ms "
          f"p95={p95 * 1000:.1f} ms (target with rollups <= 150 ms)")


def main() -> int:
    parser = arguments(__doc__)
    parser.add_argument("--days", type=int, default=365, help="days of one-minute data (default a year)")
    parser.add_argument("--kits", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=20, help="runs of each rollup statement and chart request")
    parser.add_argument("--raw-repeat", type=int, default=2, help="runs of each raw statement (seconds each)")
    parser.add_argument("--parallel", type=int, default=2, help="months the rebuild recomputes at once")
    args = parser.parse_args()
    kits = kit_names(args.kits)
    now = datetime.now(UTC)
    whole = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lauks-bench-rollups-") as name:
        directory = Path(name)
        store = Influxd(directory / "influxdb", free_port())
        store.start()
        try:
            began = time.perf_counter()
            lines = seed(store.url, kits, args.days, now)
            seconds = time.perf_counter() - began
            print(f"seeded {args.days} days of one-minute data, {args.kits} kits x {len(QUANTITIES)} quantities: "
                  f"{lines:,} lines in {seconds:.1f} s ({lines / seconds:,.0f} lines/s)")
            state = directory / "state"
            for kit in kits:
                register_kit(SITE, kit, "weather", state_dir=state)
            env = {**os.environ, "LAUKS_STATE_DIR": str(state), "LAUKS_INFLUX_URL": store.url,
                   "LAUKS_INFLUX_DATABASE": DATABASE, "LAUKS_API_PORT": str(free_port()),
                   "LAUKS_API_RATE_LIMIT_PER_MINUTE": "1000000", "LAUKS_API_RATE_BURST": "100000",
                   "LAUKS_API_PUBLIC_READ": "true", "LAUKS_API_MAP_TILES_URL": "",
                   "LAUKS_API_TIMEZONE": "Europe/Riga"}
            subprocess.run(lauks_command("site", "edit", SITE, "--timezone", "Europe/Riga"), env=env, cwd=ROOT,
                           check=True, capture_output=True)
            if store.child is not None and store.child.process is not None:
                print(f"waited {wait_for_quiet(store.child.process.pid):.0f} s for InfluxDB's compactions")
            print(f"load average: {' '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} cores")
            with start_api(env) as api:
                chart(api.url, kits[0], max(3, args.raw_repeat), "raw readings (no rollups yet)")
            # (every request of the raw chart and each raw run below is one full pass over the kit's or site's year)
            began = time.perf_counter()
            out = Tee()

            async def build() -> int:
                async with InfluxClient(store.url, timeout_s=600) as client:
                    return await rebuild(client, DATABASE, site=None, start=None, end=None, out=out,
                                         parallel=args.parallel)

            written = asyncio.run(build())
            print(f"rebuild: {written:,} rollup points from {lines:,} raw lines in {time.perf_counter() - began:.1f} s"
                  f" ({out.getvalue().count(' .. ')} slices)")
            if store.child is not None and store.child.process is not None:
                print(f"waited {wait_for_quiet(store.child.process.pid):.0f} s for InfluxDB's compactions")
            asyncio.run(aggregates(store.url, now, kits[0], args.repeat, args.raw_repeat))
            with start_api(env) as api:
                chart(api.url, kits[0], args.repeat, "with rollups")
        finally:
            store.stop()
    print(f"load average after: {' '.join(f'{v:.1f}' for v in os.getloadavg())}; "
          f"the whole run took {time.perf_counter() - whole:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
