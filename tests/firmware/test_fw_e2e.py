"""End to end: a simulated kit (the real firmware) -> real Mosquitto -> the gateway -> real InfluxDB,
through a three-hour Wi-Fi outage with a power loss in the middle of it (time sped up 600 times).
Every sample the kit took must be stored exactly once, at the time it was taken, sent oldest first."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import paho.mqtt.client as mqtt
import pytest

from firmware.sim.board import Faults
from firmware.sim.runner import SimKit, Simulation, kit_config
from lauks.influx import InfluxClient
from lauks.services import Influxd, Mosquitto, free_port
from lauks.topics import Topics

pytestmark = [pytest.mark.slow]

SPEEDUP = 600.0
INTERVAL = 60
OUTAGE_AT, OUTAGE_FOR = 600.0, 3 * 3600.0
REBOOT_AT = OUTAGE_AT + OUTAGE_FOR / 2
WORLD_S = OUTAGE_AT + OUTAGE_FOR + 1200.0


def _start_gateway(tmp: Path, mosquitto: Mosquitto, influxd: Influxd, database: str,
                   topics: Topics) -> subprocess.Popen[bytes]:
    http_port = free_port()
    env = dict(os.environ, LAUKS_MQTT_HOST="127.0.0.1", LAUKS_MQTT_PORT=str(mosquitto.port),
               LAUKS_INFLUX_URL=influxd.url, LAUKS_INFLUX_DATABASE=database, LAUKS_TOPIC_ROOT=topics.root,
               LAUKS_STATE_DIR=str(tmp / "gateway"), LAUKS_GATEWAY_HTTP_PORT=str(http_port),
               LAUKS_ENVIRONMENT="development")
    with open(tmp / "gateway.log", "wb") as log:
        gateway = subprocess.Popen([sys.executable, "-m", "lauks", "gateway"], env=env, stdout=log, stderr=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and gateway.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{http_port}/healthz", timeout=1).status_code == 200:
                time.sleep(0.5)  # connected; its subscription follows the CONNACK
                return gateway
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    gateway.kill()
    raise AssertionError("the gateway did not come up:\n" + (tmp / "gateway.log").read_text()[-3000:])


def _watch_readings(port: int, topics: Topics) -> tuple[mqtt.Client, list[list[float]]]:
    arrived: list[list[float]] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)

    def on_message(c: Any, u: Any, msg: mqtt.MQTTMessage) -> None:
        data = orjson.loads(msg.payload)
        arrived.append([s["t"] for s in data["samples"] if "t" in s])

    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.subscribe(topics.filter("readings"), 1)
    client.loop_start()
    return client, arrived


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
    gateway = _start_gateway(tmp_path, mosquitto, influxd, database, topics)
    watcher, arrived = _watch_readings(mosquitto.port, topics)
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
        time.sleep(2.0)  # the last cycle's message is sent
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
        watcher.loop_stop()
        watcher.disconnect()
        gateway.terminate()
        gateway.wait(20)
    assert len(stored) == len(set(stored)), "a sample was stored twice"
    assert len(stored) == len(taken), f"{len(taken)} samples taken, {len(stored)} stored"
    for want, got in zip(taken, sorted(stored), strict=True):
        assert abs(want * 1000 - got) <= 1000, (want, got)
    sent = [t for message in arrived for t in message]
    assert sent == sorted(sent), "the ring is sent oldest first"
    assert max(len(m) for m in arrived) > 1, "the backlog went out in messages of several samples"
