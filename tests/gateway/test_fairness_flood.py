"""Fair share per kit through a real Mosquitto, a real gateway process and a real InfluxDB: one kit
floods while well-behaved kits report, and the gateway stores every well-behaved reading."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from gateway_helpers import Publisher, count, publish_all, readings, settings, start_child, until, wait_for_count
from paho.mqtt.enums import CallbackAPIVersion

from lauks.influx import InfluxClient
from lauks.services import Influxd, Mosquitto, find_program, free_port
from lauks.topics import Topics

pytestmark = pytest.mark.slow
FLOOD = 20_000
QUIET_KITS = 3
QUIET_MESSAGES = 10  # per kit, at 20 a second in all, while the flood goes on


def metric(port: int, name: str, labels: str = "") -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    match = re.search(rf"^{re.escape(name + labels)} ([-0-9.e+]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def listen(port: int, topic: str) -> tuple[paho.Client, list[bytes]]:
    got: list[bytes] = []
    subscribed = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2)
    client.on_message = lambda _c, _u, message: got.append(bytes(message.payload))
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.subscribe(topic, qos=1)
    assert subscribed.wait(10)
    return client, got


def flood(path: Path, port: int, topic: str) -> subprocess.Popen[bytes]:
    """The C client publishing FLOOD messages as fast as the broker takes them."""
    path.write_bytes(b"".join(readings("flood", 1, seq) + b"\n" for seq in range(FLOOD)))
    with path.open("rb") as stdin:
        return subprocess.Popen([find_program("mosquitto_pub"), "-h", "127.0.0.1", "-p", str(port), "-q", "1",
                                 "-M", "1000", "-t", topic, "-l"], stdin=stdin)


async def test_a_flooding_kit_is_limited_while_every_well_behaved_reading_is_stored(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, influx: InfluxClient, database: str,
        topics: Topics) -> None:
    http_port = free_port()
    config = settings(tmp_path, mosquitto.port, influxd.url, database, topics, gateway_http_port=http_port,
                      gateway_client_id=f"fair-{topics.root}", gateway_kit_rate=100.0, gateway_kit_burst=500)
    log = tmp_path / "gateway.log"
    gateway = start_child(config, log)
    listener, notices = listen(mosquitto.port, topics.rejected("fair", "flood"))
    quiet_listener, quiet_notices = listen(mosquitto.port, f"{topics.root}/v1/fair/+/rejected")
    try:
        assert await until(lambda: "connected to MQTT" in log.read_text(), 20), log.read_text()
        started = time.monotonic()
        flooder = flood(tmp_path / "flood.jsonl", mosquitto.port, topics.readings("fair", "flood"))
        publisher = Publisher(mosquitto.port)
        quiet = [(topics.readings("fair", f"k{i % QUIET_KITS}"), readings(f"k{i % QUIET_KITS}", 1, i // QUIET_KITS))
                 for i in range(QUIET_KITS * QUIET_MESSAGES)]
        flood_running = flooder.poll() is None
        await asyncio.to_thread(publish_all, publisher, quiet, 20.0)
        await asyncio.to_thread(publisher.wait_acked, len(quiet), 30)
        publisher.close()
        assert await asyncio.to_thread(flooder.wait, 60) == 0
        elapsed = time.monotonic() - started
        assert flood_running, "the flood was over before the well-behaved kits began"

        stored_quiet = await wait_for_count(
            influx, database, "SELECT count(temperature) FROM readings WHERE kit != 'flood'", len(quiet))
        assert stored_quiet == len(quiet)
        rate_limited = 'lauks_gateway_rejections_total{reason="rate_limited"}'
        assert await until(lambda: metric(http_port, "lauks_gateway_received_total") >= FLOOD + len(quiet), 30)
        limited = metric(http_port, rate_limited)
        # everything of the flood is either stored or counted as limited, and most of it was limited
        stored_flood = await wait_for_count(influx, database, "SELECT count(temperature) FROM readings "
                                            "WHERE kit = 'flood'", FLOOD - int(limited))
        assert stored_flood + limited == FLOOD
        assert limited >= FLOOD - 500 - 100 * elapsed - 100
        # a few notices, not one per message; none for the well-behaved kits
        await asyncio.sleep(0.5)
        assert 1 <= len(notices) <= elapsed / 10 + 2
        assert all(json.loads(n)["rejections"][0]["reason"] == "rate_limited" for n in notices)
        assert len(quiet_notices) == len(notices)
        # the dead-letter log keeps the first few payloads of the flood, not 19,000 of them
        dead = [json.loads(line) for line in (config.dead_letter_dir / "dead-letter.jsonl").read_text().splitlines()]
        assert 1 <= len(dead) <= 10
        assert json.loads(dead[0]["payload"])["kit"] == "flood"
        rows = await influx.query_rows("SELECT sum(count) FROM rejections WHERE reason = 'rate_limited'",
                                       database=database)
        assert 1 <= int(next(v for k, v in rows[0].items() if k == "sum")) <= limited
        assert await count(influx, database, "SELECT count(count) FROM rejections") <= elapsed / 10 + 3
    finally:
        listener.loop_stop()
        quiet_listener.loop_stop()
        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(30) == 0, log.read_text()[-3000:]


async def test_what_the_broker_kept_while_the_gateway_was_stopped_is_stored_beyond_any_kit_s_burst(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, influx: InfluxClient, database: str,
        topics: Topics) -> None:
    # a kit within its share (10 a second) while the gateway is stopped: at the restart its 40 messages come
    # in one rush, four times its burst, and none of them may be taken for a flood
    http_port = free_port()
    config = settings(tmp_path, mosquitto.port, influxd.url, database, topics, gateway_http_port=http_port,
                      gateway_kit_rate=10.0, gateway_kit_burst=10, gateway_kit_backlog_rate=10.0)
    log = tmp_path / "gateway.log"
    publisher = Publisher(mosquitto.port)
    try:
        gateway = start_child(config, log)
        assert await until(lambda: "connected to MQTT" in log.read_text(), 20), log.read_text()
        publisher.publish(topics.readings("back", "k1"), readings("k1", 1, 0))
        assert await wait_for_count(influx, database, "SELECT count(temperature) FROM readings", 1) == 1
        gateway.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(gateway.wait, 30) == 0, log.read_text()[-3000:]

        backlog = [(topics.readings("back", "k1"), readings("k1", 1, seq)) for seq in range(1, 41)]
        await asyncio.to_thread(publish_all, publisher, backlog, 10.0)
        await asyncio.to_thread(publisher.wait_acked, 1 + len(backlog), 30)

        gateway = start_child(config, log)
        stored = await wait_for_count(influx, database, "SELECT count(temperature) FROM readings", 41)
        assert stored == 41, log.read_text()[-3000:]
        assert metric(http_port, 'lauks_gateway_rejections_total{reason="rate_limited"}') == 0
        assert "for the catch-up, each kit may send" in log.read_text()
        gateway.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(gateway.wait, 30) == 0, log.read_text()[-3000:]
    finally:
        publisher.close()
