"""Benchmark: the whole stack's footprint with 300 simulated kits, for sizing a school server.

    python -m bench.footprint [--kits 300] [--minutes 5] [--warmup 90]

Runs ``lauks up --kits N`` (Mosquitto, InfluxDB, the gateway, the API with the web app, and N simulated kits,
each running the real firmware code and sending a reading a minute) in a temporary state folder. After
``--warmup`` seconds (start-up, every kit connected) it samples each process every second for ``--minutes``
and prints, per service, the peak RSS and the CPU share of one core over that window, then the total of the
services a school server runs (the simulated kits are not among them: real kits are ESP32s) and how many
readings were stored in the window, to show the kits were reporting all along.

It prints figures and never asserts them. Target (issue 14): the school server's stack at most 500 MB RSS and
5 % of one core.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from harness.command import ROOT
from lauks import influxql, schema
from lauks.influx import InfluxClient

SERVER_SIDE = ("mosquitto", "influxdb", "gateway", "api", "alerts", "lauks up")  # what a school server runs
_INFLUX_URL = re.compile(r"InfluxDB\s+(http://127\.0\.0\.1:\d+)")


def service_of(process: psutil.Process) -> str:
    """Which part of the stack a process is, from its command line."""
    try:
        argv = process.cmdline()
    except psutil.Error:
        return "gone"
    text = " ".join(argv)
    if argv and Path(argv[0]).name.startswith("mosquitto"):
        return "mosquitto"
    if argv and Path(argv[0]).name.startswith("influxd"):
        return "influxdb"
    if "kit simulate" in text:
        return "simulated kits"
    for name in ("gateway", "api", "alerts"):
        if f"stack {name}" in text:
            return name
    if "stack up" in text:
        return "lauks up"
    return "other"


@dataclass
class Usage:
    """Per service: peak RSS (sum of its processes at one sample) and CPU seconds of each process seen."""

    peak_rss: dict[str, int] = field(default_factory=dict)
    cpu_start: dict[int, float] = field(default_factory=dict)
    cpu_last: dict[int, float] = field(default_factory=dict)
    service: dict[int, str] = field(default_factory=dict)

    def sample(self, root: psutil.Process) -> None:
        rss: dict[str, int] = {}
        for process in [root, *root.children(recursive=True)]:
            try:
                times = process.cpu_times()
                memory = process.memory_info().rss
            except psutil.Error:
                continue
            name = self.service.setdefault(process.pid, service_of(process))
            cpu = times.user + times.system
            self.cpu_start.setdefault(process.pid, cpu)
            self.cpu_last[process.pid] = cpu
            rss[name] = rss.get(name, 0) + memory
        for name, total in rss.items():
            self.peak_rss[name] = max(self.peak_rss.get(name, 0), total)

    def cpu_s(self, name: str) -> float:
        return sum(self.cpu_last[pid] - self.cpu_start[pid] for pid, service in self.service.items()
                   if service == name)


def wait_for_banner(process: subprocess.Popen[str], timeout_s: float) -> str:
    """The stack's output up to its banner's InfluxDB line; the InfluxDB URL."""
    deadline = time.monotonic() + timeout_s
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise SystemExit(f"lauks up stopped before it was up (exit {process.poll()})")
        match = _INFLUX_URL.search(line)
        if match:
            return match.group(1)
    raise SystemExit("lauks up did not print its banner in time")


async def readings_stored(url: str, seconds: float) -> tuple[int, int]:
    """(samples, distinct kits) stored in the last ``seconds``, by arrival: the gateway's seen points count them."""
    samples, status, kit = (influxql.identifier(n) for n in (schema.SAMPLES, schema.KIT_STATUS, schema.KIT))
    statement = f'SELECT sum({samples}) AS "n" FROM {status} WHERE time > now() - {int(seconds)}s GROUP BY {kit}'
    async with InfluxClient(url) as client:
        rows = await client.query_rows(statement, database="lauks")
    return sum(int(str(row.get("n", 0))) for row in rows), len(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kits", type=int, default=300)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=90.0, help="seconds before measuring")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lauks-footprint-") as folder:
        env = dict(os.environ, LAUKS_LOG_LEVEL="WARNING")
        began = time.monotonic()
        stack = subprocess.Popen([sys.executable, "-m", "stack", "up", "--state-dir", str(Path(folder) / "state"),
                                  "--kits", str(args.kits)], cwd=ROOT, env=env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            influx_url = wait_for_banner(stack, 300)
            print(f"lauks up --kits {args.kits}: up in {time.monotonic() - began:.1f} s; warming up "
                  f"{args.warmup:.0f} s, then measuring {args.minutes:g} min", flush=True)
            root = psutil.Process(stack.pid)
            usage = Usage()
            time.sleep(args.warmup)
            usage.sample(root)
            window = args.minutes * 60
            start = time.monotonic()
            while time.monotonic() - start < window:
                time.sleep(1.0)
                if stack.poll() is not None:
                    raise SystemExit(f"lauks up stopped during the measurement (exit {stack.returncode})")
                usage.sample(root)
            elapsed = time.monotonic() - start
            points, kits = asyncio.run(readings_stored(influx_url, elapsed))
        finally:
            os.killpg(stack.pid, signal.SIGTERM)
            try:
                stack.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(stack.pid, signal.SIGKILL)
    print(f"over {elapsed:.0f} s: {points:,} samples stored from {kits} kits "
          f"({points / max(elapsed / 60, 1e-9) / max(args.kits, 1):.2f} a kit a minute)")
    print(f"{'service':<16} {'peak RSS':>10} {'CPU (% of one core)':>20}")
    names = sorted(usage.peak_rss, key=lambda n: (n not in SERVER_SIDE, n))
    for name in names:
        print(f"{name:<16} {usage.peak_rss[name] / 1e6:8.0f} MB {100 * usage.cpu_s(name) / elapsed:18.2f} %")
    server = [n for n in names if n in SERVER_SIDE]
    # the peaks of the services need not coincide, so their sum is an upper bound of the stack's peak
    print(f"{'school server':<16} {sum(usage.peak_rss[n] for n in server) / 1e6:8.0f} MB "
          f"{100 * sum(usage.cpu_s(n) for n in server) / elapsed:18.2f} %   "
          "(target <= 500 MB and 5 % of one core; peaks summed)")
    print(f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB; load average "
          f"after: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
