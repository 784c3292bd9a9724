"""A real full disk under a real gateway process: its state folder (spool, de-duplication log, dead
letters) on a small tmpfs that the test fills. The gateway starts on it and says so, rides out a full
disk while it replays its spool, stops in bounded time on SIGTERM, and once there is room again every
reading the broker accepted is stored exactly once. (The spool's and the de-duplication log's own
full-disk behaviour is tested in test_spool.py and test_core.py.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from gateway_helpers import T0, count, readings, settings, wait_for_count

from gateway.dedup import Dedup
from gateway.settings import GatewaySettings
from gateway.spool import Spool
from harness.gateway import GatewayProcess, start_gateway
from harness.publisher import Publisher
from lauks.influx import InfluxClient
from lauks.services import Influxd, Mosquitto
from lauks.topics import Topics

pytestmark = pytest.mark.slow
KITS = 4


def stream(topics: Topics, messages: int) -> list[tuple[str, bytes]]:
    return [(topics.readings("full", f"k{i % KITS}"), readings(f"k{i % KITS}", 1, i // KITS)) for i in range(messages)]


def publish(port: int, items: list[tuple[str, bytes]]) -> None:
    """Publish and wait until the broker has every message (acknowledged to the publisher, as to a kit)."""
    with Publisher(port) as publisher:
        publisher.publish_all(items)
        publisher.wait_acked(len(items), 20)


def stop(gateway: GatewayProcess, timeout_s: float = 20) -> tuple[int, float]:
    """SIGTERM; the exit code and how long it took."""
    started = time.monotonic()
    code = gateway.stop(timeout_s)
    return code, time.monotonic() - started


async def assert_exactly_once(influx: InfluxClient, database: str, messages: int) -> None:
    temperature = await wait_for_count(influx, database, "SELECT count(temperature) FROM readings", messages, 30)
    humidity = await count(influx, database, "SELECT count(humidity) FROM readings")
    assert (temperature, humidity) == (messages, messages)


def gateway_settings(state: Path, mqtt_port: int, influx_url: str, database: str, topics: Topics,
                     **overrides: Any) -> GatewaySettings:
    return settings(state, mqtt_port, influx_url, database, topics, gateway_client_id=f"full-{topics.root}",
                    gateway_kit_rate=0, **overrides)


def what_an_earlier_run_left(config: GatewaySettings, points: int) -> None:
    """A de-duplication log to load and a spool waiting to be replayed, with no cursor yet (an earlier run
    that never replayed anything), so that replaying needs a new file."""
    earlier = Dedup(config.dedup_dir, fsync=False)
    for seq in range(3000):
        earlier.see(("old", f"k{seq % 7}", 3, seq), 1_700_000_000_000 + seq)
    earlier.persist()
    earlier.close()
    spool = Spool(config.spool_dir, fsync=False)
    for batch in range(points // 40):
        spool.append(b"".join(b"readings,kit=old,site=full humidity=50,temperature=%d %d\n" % (i, T0 * 1000 + i)
                              for i in range(batch * 40, batch * 40 + 40)), 40)
    spool.close()
    (config.spool_dir / "cursor").unlink()


async def test_a_gateway_starts_on_a_full_disk_replays_its_spool_and_ingests_once_there_is_room(
        tmp_path: Path, small_fs: Callable[..., Any], mosquitto: Mosquitto, influxd: Influxd,
        influx: InfluxClient, database: str, topics: Topics) -> None:
    fs = small_fs(1024)
    config = gateway_settings(fs.path / "state", mosquitto.port, influxd.url, database, topics)
    spooled = 200
    what_an_earlier_run_left(config, spooled)
    fs.fill()
    log = tmp_path / "gateway.log"
    with start_gateway(config, log) as gateway:  # connected to the broker, though not ok
        detail = gateway.health()
        assert detail is not None and detail["disk_writable"] is False and detail["ok"] is False, detail
        # the spool goes to InfluxDB, but how far it got cannot be recorded: the replay is tried again
        gateway.wait_for(lambda d: "replayed" in d.get("disk_problem", ""), 15,
                         "the replay's full disk was not reported")
        messages = 120
        await asyncio.to_thread(publish, mosquitto.port, stream(topics, messages))
        assert gateway.process.poll() is None, f"the gateway exited:\n{gateway.tail()}"
        fs.free()
        gateway.wait_for(lambda d: d["ok"] and d["disk_writable"] and not d["spool_depth_points"], 15,
                         "the gateway did not see the room made on its disk")
        await assert_exactly_once(influx, database, messages + spooled)
        code, _ = stop(gateway)
        assert code == 0
    text = log.read_text()
    assert "CANNOT WRITE TO DISK: writing a test file in" in text
    assert "CANNOT WRITE TO DISK: recording how far the spool" in text


async def test_sigterm_on_a_full_disk_exits_in_bounded_time_and_the_messages_come_back(
        tmp_path: Path, small_fs: Callable[..., Any], mosquitto: Mosquitto, influxd: Influxd,
        influx: InfluxClient, database: str, topics: Topics) -> None:
    fs = small_fs(1024)
    config = gateway_settings(fs.path / "state", mosquitto.port, influxd.url, database, topics,
                              gateway_shutdown_timeout_s=2.0)
    log = tmp_path / "gateway.log"
    messages = 200
    with start_gateway(config, log) as gateway:
        fs.fill()  # InfluxDB is up; what fails is the de-duplication log, written before any point
        await asyncio.to_thread(publish, mosquitto.port, stream(topics, messages))
        gateway.wait_for(lambda d: not d["disk_writable"], 15, "the full disk was not reported")
        code, took_s = stop(gateway)
        assert code == 0 and took_s < 8, (code, took_s)
    text = log.read_text()
    assert "CANNOT WRITE TO DISK: appending to the de-duplication key log" in text
    assert "InfluxDB is reachable" in text and "InfluxDB is unavailable" not in text
    assert "NOT acknowledged and stay in the broker" in text
    fs.free()
    with start_gateway(config, log) as again:  # the broker kept what was not acknowledged
        await assert_exactly_once(influx, database, messages)
        code, _ = stop(again)
        assert code == 0
