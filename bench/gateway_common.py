"""Shared pieces of the gateway benchmarks: a private broker and InfluxDB, the gateway as a child process
(harness.gateway), and our message mix. The publishers (paho, and the C ``mosquitto_pub -l``, one process
per kit) are harness.publisher's, the ones the tests use."""

from __future__ import annotations

import json
import random
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.settings import GatewaySettings
from harness.gateway import GatewayProcess, start_gateway
from lauks.services import Influxd, Mosquitto, free_port

QUANTITIES = ("temperature", "humidity", "pressure", "battery", "rssi")


@dataclass
class Stack:
    directory: Path
    broker: Mosquitto
    store: Influxd
    gateway: GatewayProcess | None = None

    @property
    def gateway_log(self) -> Path:
        return self.directory / "gateway.log"

    def start_gateway(self, database: str, **overrides: Any) -> GatewayProcess:
        """The gateway as a child process (log level WARNING), ready once connected to the broker; its
        settings: this stack's broker and store, ``database``, and ``overrides`` (GatewaySettings fields)."""
        config = GatewaySettings(**{
            "mqtt_port": self.broker.port, "influx_url": self.store.url, "influx_database": database,
            "state_dir": self.directory / "state", "gateway_http_port": free_port(), "gateway_instance": "bench",
            "topic_root": "lauks", **overrides})
        self.gateway = start_gateway(config, self.gateway_log, log_level="WARNING")
        return self.gateway

    def start_steady_gateway(self, database: str, rate_per_s: float, kits: int) -> GatewayProcess:
        """A gateway for ``kits`` benchmark kits sending ``rate_per_s`` messages a second in all: far faster than
        real kits, so each gets a fair share of twice its rate; the check runs on every message and limits none."""
        return self.start_gateway(database, gateway_kit_rate=2 * rate_per_s / kits)

    def stop_gateway(self) -> int:
        return 0 if self.gateway is None else self.gateway.stop(60)


@contextmanager
def stack() -> Iterator[Stack]:
    with tempfile.TemporaryDirectory(prefix="lauks-bench-") as name:
        directory = Path(name)
        broker = Mosquitto(directory / "mosquitto", free_port())
        store = Influxd(directory / "influxdb", free_port())
        broker.start()
        store.start()
        running = Stack(directory, broker, store)
        try:
            yield running
        finally:
            if running.gateway is not None:
                running.stop_gateway()
            broker.stop()
            store.stop()


def influx_count(url: str, database: str, statement: str) -> int:
    query = urllib.parse.urlencode({"db": database, "q": statement})
    with urllib.request.urlopen(f"{url}/query?{query}", timeout=30) as response:
        result = json.loads(response.read())
    try:
        return int(result["results"][0]["series"][0]["values"][0][1])
    except (KeyError, IndexError):
        return 0


def message_mix(kits: int, messages: int, seed: int = 1, now: float | None = None) -> tuple[list[list[str]], int]:
    """Our mix: 90 % one weather sample with 5 quantities and 't'; 10 % a backfill of 10 samples after an
    outage. Lines per kit (JSON, one message each) and the number of samples in all."""
    rng = random.Random(seed)
    start = int(now or time.time()) - 3600 - messages // kits - 1  # every sample in the past
    per_kit: list[list[str]] = [[] for _ in range(kits)]
    samples = 0
    for index in range(messages):
        kit = index % kits
        seq = index // kits
        base = start + seq  # one second per message and kit: every sample has a time of its own
        count = 10 if rng.random() < 0.1 else 1
        body = [{"t": base - 0.01 * n, "temperature": round(rng.uniform(-5, 30), 2),
                 "humidity": round(rng.uniform(20, 99), 1), "pressure": round(rng.uniform(980, 1030), 1),
                 "battery": round(rng.uniform(3.3, 4.2), 2), "rssi": rng.randint(-90, -40)} for n in range(count)]
        samples += count
        per_kit[kit].append(json.dumps({"v": 1, "kit": f"k{kit}", "boot": 1, "seq": seq, "fw": "0.3.0",
                                        "samples": body}, separators=(",", ":")))
    return per_kit, samples


def rss_mb(pid: int) -> float:
    import psutil

    return float(psutil.Process(pid).memory_info().rss) / 1e6

