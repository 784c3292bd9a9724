"""Benchmark: CSV, JSON and Parquet exports of 1,000,000 stored points through the API, against a raw
chunked InfluxDB /query.

    python -m bench.export [--points 1000000] [--kits 20] [--formats csv,json,parquet]

Starts its own InfluxDB on a free loopback port and writes the points the gateway's way (`readings`,
tags site and kit, one float field, ms precision). Times InfluxDB's own chunked /query of the window
(JSON lines, parsed), then for each format starts a fresh `lauks api` (so each peak is its own) and
times GET /v1/sites/<site>/readings?format=<format>, sampling the API process's RSS. For each format
it prints rows/s, MB, the peak RSS and ``ratio[<format>]=<API rows/s ÷ raw rows/s>``; the last line
is ``ratio=<the CSV ratio>``. The target is a peak RSS of at most 200 MB for 1,000,000 points.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import psutil

from harness.api import start_api
from harness.command import ROOT, lauks_command
from lauks import influxql, schema
from lauks.contract import Sample
from lauks.influx import InfluxClient
from lauks.services import Influxd, free_port
from metastore.registry import register_kit

START = datetime(2025, 1, 1, tzinfo=UTC)
SITE = "bench"


async def seed(url: str, database: str, points: int, kits: int) -> None:
    per_kit = points // kits
    start_ms = int(START.timestamp() * 1000)
    async with InfluxClient(url, timeout_s=120) as client:
        await client.create_database(database)
        batch: list[str] = []
        for minute in range(per_kit):
            samples = [Sample(start_ms + minute * 60_000, {"temperature": (minute % 600) / 10 - 20.0})]
            for k in range(kits):
                batch += schema.readings_lines(SITE, f"k{k:02d}", samples)
            if len(batch) >= 10_000:
                await client.write(database, batch)
                batch = []
        if batch:
            await client.write(database, batch)


def raw_query(url: str, database: str, end: datetime) -> tuple[int, float]:
    statement = (f'SELECT {influxql.identifier(schema.KIT)}, "temperature" FROM {influxql.identifier(schema.READINGS)} '
                 f"WHERE {influxql.identifier(schema.SITE)} = {influxql.string(SITE)} "
                 f"AND time >= {influxql.time_literal(START)} AND time < {influxql.time_literal(end)}")
    rows = 0
    began = time.perf_counter()
    params = {"db": database, "q": statement, "chunked": "true", "chunk_size": "20000", "epoch": "ms"}
    with httpx.stream("GET", f"{url}/query", params=params, timeout=300) as response:
        for line in response.iter_lines():
            if line.strip():
                for result in orjson.loads(line)["results"]:
                    for series in result.get("series", []):
                        rows += len(series["values"])
    return rows, time.perf_counter() - began


def count_rows(fmt: str, newlines: int, body: bytes | None) -> int:
    """Rows of a finished export: CSV lines less the header, JSON records, Parquet's own count."""
    if fmt == "csv":
        return newlines - 1
    assert body is not None
    if fmt == "json":
        return len(orjson.loads(body)["data"])
    import io

    import pyarrow.parquet as pq

    return int(pq.ParquetFile(io.BytesIO(body)).metadata.num_rows)


def api_export(api_url: str, token: str, end: datetime, process: psutil.Process,
               fmt: str) -> tuple[int, float, int, int]:
    peak = [process.memory_info().rss]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], process.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    params = {"start": START.isoformat(), "end": end.isoformat(), "quantities": "temperature", "format": fmt}
    lines = 0
    size = 0
    kept: list[bytes] = []  # JSON and Parquet, to count their rows afterwards (in this process, not the API's)
    began = time.perf_counter()
    with httpx.stream("GET", f"{api_url}/v1/sites/{SITE}/readings", params=params, timeout=600,
                      headers={"Authorization": f"Bearer {token}"}) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            lines += chunk.count(b"\n")
            size += len(chunk)
            if fmt != "csv":
                kept.append(chunk)
    elapsed = time.perf_counter() - began
    stop.set()
    sampler.join()
    return count_rows(fmt, lines, b"".join(kept) if kept else None), elapsed, peak[0], size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--kits", type=int, default=20)
    parser.add_argument("--formats", default="csv,json,parquet", help="comma-separated: csv, json, parquet")
    args = parser.parse_args()
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    with tempfile.TemporaryDirectory(prefix="lauks-bench-") as tmp:
        state = Path(tmp)
        store = Influxd(state / "influxdb", free_port())
        store.start()
        try:
            database = "bench"
            began = time.perf_counter()
            asyncio.run(seed(store.url, database, args.points, args.kits))
            print(f"seeded {args.points} points ({args.kits} kits) in {time.perf_counter() - began:.1f} s")
            end = START + timedelta(minutes=args.points // args.kits)
            env = {**os.environ, "LAUKS_STATE_DIR": str(state), "LAUKS_INFLUX_URL": store.url,
                   "LAUKS_INFLUX_DATABASE": database, "LAUKS_API_PORT": str(free_port()),
                   "LAUKS_API_RATE_LIMIT_PER_MINUTE": "100000"}

            def lauks(*argv: str) -> str:
                return subprocess.run(lauks_command(*argv), env=env, cwd=ROOT, check=True,
                                      capture_output=True, text=True).stdout.strip()

            lauks("site", "add", SITE)
            for k in range(args.kits):  # in this process: twenty `lauks` commands would take twenty seconds
                register_kit(SITE, f"k{k:02d}", "weather", state_dir=state)
            token = lauks("token", "create", "--name", "bench")
            raw_rows, raw_s = raw_query(store.url, database, end)
            raw_rate = raw_rows / raw_s
            print(f"raw InfluxDB chunked /query: {raw_rows} rows in {raw_s:.2f} s = {raw_rate:,.0f} rows/s")
            ratios: dict[str, float] = {}
            for fmt in formats:
                with start_api(env) as api:  # a fresh one for each format, so that each peak is its own
                    rows, api_s, peak, size = api_export(api.url, token, end, psutil.Process(api.pid), fmt)
                api_rate = rows / api_s
                ratios[fmt] = api_rate / raw_rate
                print(f"API {fmt.upper()} export: {rows} rows ({size / 1e6:.1f} MB) in {api_s:.2f} s = "
                      f"{api_rate:,.0f} rows/s, peak RSS of the API {peak / 1e6:.0f} MB")
                if rows != raw_rows:
                    print(f"WARNING: the API gave {rows} rows in {fmt}, InfluxDB {raw_rows}")
                print(f"ratio[{fmt}]={ratios[fmt]:.2f}")
            if "csv" in ratios:
                print(f"ratio={ratios['csv']:.2f}")
        finally:
            store.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
