"""Fair share per kit through a real Mosquitto, a real gateway process and a real InfluxDB: one kit
floods while well-behaved kits report, and the gateway stores every well-behaved reading."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

import pytest
from gateway_helpers import count, readings, settings, until, wait_for_count

from gateway.service import BACKLOG_AFTER_S
from harness.gateway import start_gateway
from harness.publisher import Publisher, start_c_publisher
from lauks.influx import InfluxClient
from lauks.services import Influxd, Mosquitto
from lauks.topics import Topics

pytestmark = pytest.mark.slow
FLOOD = 20_000
QUIET_KITS = 3
QUIET_MESSAGES = 10  # per kit, at 20 a second in all, while the flood goes on


def listen(port: int, topic: str) -> Publisher:
    """A client subscribed to ``topic`` (the SUBACK is in), collecting what arrives."""
    client = Publisher(port)
    client.subscribe(topic)
    return client


def flood(path: Path, port: int, topic: str) -> subprocess.Popen[bytes]:
    """The C client publishing FLOOD messages as fast as the broker takes them."""
    path.write_bytes(b"".join(readings("flood", 1, seq) + b"\n" for seq in range(FLOOD)))
    return start_c_publisher(port, topic, path)


async def test_a_flooding_kit_is_limited_while_every_well_behaved_reading_is_stored(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, influx: InfluxClient, database: str,
        topics: Topics) -> None:
    config = settings(tmp_path, mosquitto.port, influxd.url, database, topics,
                      gateway_client_id=f"fair-{topics.root}", gateway_kit_rate=100.0, gateway_kit_burst=500)
    listener = listen(mosquitto.port, topics.rejected("fair", "flood"))
    quiet_listener = listen(mosquitto.port, f"{topics.root}/v1/fair/+/rejected")
    with listener, quiet_listener, start_gateway(config, tmp_path / "gateway.log") as gateway:
        started = time.monotonic()
        flooder = flood(tmp_path / "flood.jsonl", mosquitto.port, topics.readings("fair", "flood"))
        quiet = [(topics.readings("fair", f"k{i % QUIET_KITS}"), readings(f"k{i % QUIET_KITS}", 1, i // QUIET_KITS))
                 for i in range(QUIET_KITS * QUIET_MESSAGES)]
        flood_running = flooder.poll() is None
        with Publisher(mosquitto.port) as publisher:
            await asyncio.to_thread(publisher.publish_all, quiet, 20.0)
            await asyncio.to_thread(publisher.wait_acked, len(quiet), 30)
        assert await asyncio.to_thread(flooder.wait, 60) == 0
        elapsed = time.monotonic() - started
        assert flood_running, "the flood was over before the well-behaved kits began"

        stored_quiet = await wait_for_count(
            influx, database, "SELECT count(temperature) FROM readings WHERE kit != 'flood'", len(quiet))
        assert stored_quiet == len(quiet)
        rate_limited = 'lauks_gateway_rejections_total{reason="rate_limited"}'
        assert await until(lambda: gateway.metrics()["lauks_gateway_received_total"] >= FLOOD + len(quiet), 30)
        limited = gateway.metrics(labelled=True).get(rate_limited, 0.0)
        # everything of the flood is either stored or counted as limited, and most of it was limited
        stored_flood = await wait_for_count(influx, database, "SELECT count(temperature) FROM readings "
                                            "WHERE kit = 'flood'", FLOOD - int(limited))
        assert stored_flood + limited == FLOOD
        assert limited >= FLOOD - 500 - 100 * elapsed - 100
        # a few notices, not one per message; none for the well-behaved kits
        await asyncio.sleep(0.5)  # a notice sent after the last count would arrive by now
        notices = [payload for _, payload in listener.drain()]
        assert 1 <= len(notices) <= elapsed / 10 + 2
        assert all(json.loads(n)["rejections"][0]["reason"] == "rate_limited" for n in notices)
        assert len(quiet_listener.drain()) == len(notices)
        # the dead-letter log keeps the first few payloads of the flood, not 19,000 of them
        dead = [json.loads(line) for line in (config.dead_letter_dir / "dead-letter.jsonl").read_text().splitlines()]
        assert 1 <= len(dead) <= 10
        assert json.loads(dead[0]["payload"])["kit"] == "flood"
        rows = await influx.query_rows("SELECT sum(count) FROM rejections WHERE reason = 'rate_limited'",
                                       database=database)
        assert 1 <= int(next(v for k, v in rows[0].items() if k == "sum")) <= limited
        assert await count(influx, database, "SELECT count(count) FROM rejections") <= elapsed / 10 + 3
        assert gateway.stop() == 0, gateway.tail()


async def test_what_the_broker_kept_while_the_gateway_was_stopped_is_stored_beyond_any_kit_s_burst(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, influx: InfluxClient, database: str,
        topics: Topics) -> None:
    # a kit within its share (10 a second) while the gateway is stopped: at the restart its 40 messages come
    # in one rush, four times its burst, and none of them may be taken for a flood
    config = settings(tmp_path, mosquitto.port, influxd.url, database, topics,
                      gateway_kit_rate=10.0, gateway_kit_burst=10, gateway_kit_backlog_rate=10.0)
    log = tmp_path / "gateway.log"
    with Publisher(mosquitto.port) as publisher:
        with start_gateway(config, log) as gateway:
            publisher.publish(topics.readings("back", "k1"), readings("k1", 1, 0))
            assert await wait_for_count(influx, database, "SELECT count(temperature) FROM readings", 1) == 1
            assert gateway.stop() == 0, gateway.tail()

        backlog = [(topics.readings("back", "k1"), readings("k1", 1, seq)) for seq in range(1, 41)]
        await asyncio.to_thread(publisher.publish_all, backlog, 10.0)
        await asyncio.to_thread(publisher.wait_acked, 1 + len(backlog), 30)
        # away long enough to leave a backlog (it counts from the de-duplication log's last write)
        keys = config.dedup_dir / "keys.log"
        assert await until(lambda: time.time() - keys.stat().st_mtime > BACKLOG_AFTER_S + 0.5, 10)

        with start_gateway(config, log) as gateway:
            stored = await wait_for_count(influx, database, "SELECT count(temperature) FROM readings", 41)
            assert stored == 41, gateway.tail()
            assert gateway.metrics(labelled=True).get('lauks_gateway_rejections_total{reason="rate_limited"}', 0.0) == 0
            assert "for the catch-up, each kit may send" in gateway.log_text()
            assert gateway.stop() == 0, gateway.tail()
