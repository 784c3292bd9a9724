"""End to end: a simulated kit (the real firmware) -> real Mosquitto -> the gateway -> real InfluxDB,
through a three-hour Wi-Fi outage with a power loss in the middle of it (time sped up 600 times).
Every sample the kit took must be stored exactly once, at the time it was taken, sent oldest first."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import orjson
import pytest

from firmware.kitconfig import kit_config
from firmware.sim.board import Faults
from firmware.sim.runner import SimKit, Simulation
from gateway.settings import GatewaySettings
from harness.gateway import start_gateway
from harness.publisher import Publisher
from lauks.influx import InfluxClient
from lauks.services import Influxd, Mosquitto
from lauks.topics import Topics

pytestmark = [pytest.mark.slow]

SPEEDUP = 600.0
INTERVAL = 60
OUTAGE_AT, OUTAGE_FOR = 600.0, 3 * 3600.0
REBOOT_AT = OUTAGE_AT + OUTAGE_FOR / 2
WORLD_S = OUTAGE_AT + OUTAGE_FOR + 1200.0


def _gateway_settings(tmp: Path, mosquitto: Mosquitto, influxd: Influxd, database: str,
                      topics: Topics) -> GatewaySettings:
    return GatewaySettings(mqtt_host="127.0.0.1", mqtt_port=mosquitto.port, influx_url=influxd.url,
                           influx_database=database, topic_root=topics.root, state_dir=tmp / "gateway",
                           gateway_client_id=f"e2e-{topics.root}", gateway_http_port=0, environment="development")


def _sample_times(messages: list[tuple[str, bytes]]) -> list[list[float]]:
    """The 't' of every sample of every readings message, message by message."""
    return [[s["t"] for s in orjson.loads(payload)["samples"] if "t" in s] for _, payload in messages]


async def _stored(influxd: Influxd, database: str, topics: Topics, expect: int, timeout_s: float) -> list[int]:
    async with InfluxClient(influxd.url) as influx:
        deadline = time.monotonic() + timeout_s
        times: list[int] = []
        while time.monotonic() < deadline:
            rows = await influx.query_rows(
                "SELECT temperature FROM readings WHERE kit = 'e2e01'", database=database, epoch="ms")
            times = [int(r["time"]) for r in rows]
            if len(times) >= expect:
                return times
            await asyncio.sleep(0.5)
        return times


def test_a_long_outage_with_a_reboot_loses_and_duplicates_nothing(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, database: str, topics: Topics) -> None:
    gateway = start_gateway(_gateway_settings(tmp_path, mosquitto, influxd, database, topics),
                            tmp_path / "gateway.log")
    watcher = Publisher(mosquitto.port)
    watcher.subscribe(topics.filter("readings"))
    seen: list[tuple[str, bytes]] = []
    faults = Faults(wifi_drop_at=OUTAGE_AT, wifi_drop_for=OUTAGE_FOR, reboot_at=REBOOT_AT)
    kit = SimKit(tmp_path / "kit", kit_config("demo", "e2e01", "weather", interval_s=INTERVAL), faults, seed=4)
    sim = Simulation([kit], ("127.0.0.1", mosquitto.port), topics.root, SPEEDUP,
                     start_ago_s=WORLD_S + 900, quiet=True)
    try:
        sim.start()
        done = threading.Event()
        deadline = time.monotonic() + WORLD_S / SPEEDUP + 30
        while time.monotonic() < deadline and not done.is_set():
            boards = kit.boards
            if boards and boards[-1].elapsed() >= WORLD_S and boards[-1].wifi_connected() and \
                    kit.boards[-1].rtc.get("rebooted"):
                done.set()
            time.sleep(0.2)
        # the last cycle's message is sent: every sample taken so far has gone out
        deadline = time.monotonic() + 10
        while sum(map(len, _sample_times(seen))) < len(kit.taken) and time.monotonic() < deadline:
            seen += watcher.drain()
            time.sleep(0.05)
        sim.shutdown()
        assert kit.error is None, repr(kit.error)
        taken = sorted(kit.taken)
        assert len(kit.boards) == 2, "the kit rebooted once"
        in_outage = [t for t in taken if OUTAGE_AT < t - sim.clock.real_start + sim.clock.start_ago_s
                     < OUTAGE_AT + OUTAGE_FOR]
        assert len(in_outage) >= OUTAGE_FOR / INTERVAL * 0.9, "the kit kept sampling through the outage"
        stored = asyncio.run(_stored(influxd, database, topics, len(taken), 60))
    finally:
        sim.shutdown()
        watcher.close()
        gateway.stop(20)
    arrived = _sample_times(seen + watcher.drain())
    assert len(stored) == len(set(stored)), "a sample was stored twice"
    assert len(stored) == len(taken), f"{len(taken)} samples taken, {len(stored)} stored"
    for want, got in zip(taken, sorted(stored), strict=True):
        assert abs(want * 1000 - got) <= 1000, (want, got)
    sent = [t for message in arrived for t in message]
    assert sent == sorted(sent), "the ring is sent oldest first"
    assert max(len(m) for m in arrived) > 1, "the backlog went out in messages of several samples"
