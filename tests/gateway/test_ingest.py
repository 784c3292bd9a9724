"""The gateway end to end against a real Mosquitto and InfluxDB: store, de-duplicate, reject, report."""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from gateway_helpers import count, readings, running, settings, until, wait_for_count
from golden_set import Golden

from harness.gateway import start_gateway
from harness.publisher import Publisher
from lauks.influx import InfluxClient
from lauks.services import Influxd, Mosquitto
from lauks.topics import Topics


async def test_readings_are_stored_with_their_sample_times(tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd,
                                                         influx: InfluxClient, database: str, topics: Topics) -> None:
    config = settings(tmp_path, mosquitto.port, influxd.url, database, topics)
    async with running(config):
        publisher = Publisher(mosquitto.port)
        for seq in range(20):
            publisher.publish(topics.readings("s1", "k1"), readings("k1", 1, seq))
        publisher.wait_acked(20)
        found = await wait_for_count(influx, database, "SELECT count(temperature) FROM readings", 20)
        publisher.close()
    assert found == 20
    assert await count(influx, database, "SELECT count(humidity) FROM readings") == 20
    rows = await influx.query_rows("SELECT temperature, site, kit FROM readings ORDER BY time LIMIT 1",
                                   database=database)
    assert rows[0]["site"] == "s1" and rows[0]["kit"] == "k1"
    assert rows[0]["time"] == (1_780_000_000 + 1_000_000) * 1000


async def test_copies_of_a_message_are_stored_once(tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd,
                                                   influx: InfluxClient, database: str, topics: Topics) -> None:
    config = settings(tmp_path, mosquitto.port, influxd.url, database, topics)
    async with running(config) as gateway:
        publisher = Publisher(mosquitto.port)
        publisher.publish(topics.readings("s1", "k1"), readings("k1", 1, 7))
        publisher.wait_acked(1)
        await wait_for_count(influx, database, "SELECT count(humidity) FROM readings", 1)
        await asyncio.sleep(1.1)  # a copy arriving later would be re-dated if it were not recognised
        for _ in range(3):
            publisher.publish(topics.readings("s1", "k1"), readings("k1", 1, 7))
        publisher.wait_acked(4)
        await until(lambda: gateway.stats.duplicates >= 3, 10)
        publisher.close()
    assert gateway.stats.duplicates == 3
    assert await count(influx, database, "SELECT count(humidity) FROM readings") == 1
    assert await count(influx, database, "SELECT count(temperature) FROM readings") == 1


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        return bytes(response.read())


def _poisoned_stream(golden: Golden, topics: Topics) -> tuple[list[tuple[str, bytes]], dict[str, int], list[str]]:
    """Golden messages (each valid or partly valid one from a kit of its own, so no two share a
    timestamp) interleaved with ordinary valid traffic; the expected points per kit and reasons."""
    stream: list[tuple[str, bytes]] = []
    expected: dict[str, int] = {"v1": 0}
    reasons: list[str] = []
    items = golden.valid + golden.invalid
    for index, item in enumerate(items):
        if isinstance(item.data, dict) and not item.whole:
            kit = f"p{index}"
            payload = json.dumps(dict(item.data, kit=kit, boot=1000 + index, seq=index)).encode()
        else:
            kit, payload = golden.kit, item.payload
        stream.append((topics.readings(golden.site, kit), payload))
        expected[kit] = expected.get(kit, 0) + item.samples
        reasons.extend(item.reasons)
        for seq in range(index * 5, index * 5 + 5):
            stream.append((topics.readings(golden.site, "v1"), readings("v1", 1, seq)))
            expected["v1"] += 2
    return stream, expected, reasons


@pytest.mark.slow
async def test_a_poisoned_stream_stores_every_valid_reading_and_rejects_every_invalid_one(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, influx: InfluxClient, database: str,
        topics: Topics, golden: Golden) -> None:
    stream, expected, reasons = _poisoned_stream(golden, topics)
    notices: list[dict[str, Any]] = []
    listener = Publisher(mosquitto.port).wait_connected()
    listener.subscribe(topics.filter("rejected"))
    started = time.time()
    config = settings(tmp_path, mosquitto.port, influxd.url, database, topics)
    async with running(config, clock=lambda: golden.received_at + (time.time() - started)):
        publisher = Publisher(mosquitto.port)
        for topic, payload in stream:
            publisher.publish(topic, payload)
        publisher.wait_acked(len(stream))
        total = sum(expected.values())
        await wait_for_count(influx, database, "SELECT count(*) FROM (SELECT * FROM readings)", 0, 1)
        deadline = time.monotonic() + 20
        stored: dict[str, int] = {}
        while time.monotonic() < deadline:
            rows = await influx.query_rows("SELECT * FROM readings", database=database)
            stored = collections.Counter(row["kit"] for row in rows)
            notices += [json.loads(payload) for _, payload in listener.drain()]
            if sum(stored.values()) >= total and len(notices) >= sum(1 for i in golden.invalid):
                break
            await asyncio.sleep(0.2)
        publisher.close()
    listener.close()
    assert {k: v for k, v in stored.items()} == {k: v for k, v in expected.items() if v}
    rows = await influx.query_rows('SELECT "count", detail, reason FROM rejections', database=database)
    assert sorted(row["reason"] for row in rows) == sorted(reasons)
    assert "humidity 140 % is above 100 %" in {row["detail"] for row in rows}
    noticed = sorted(r["reason"] for notice in notices for r in notice["rejections"])
    assert noticed == sorted(reasons)
    dead = (tmp_path / "dead-letter-test" / "dead-letter.jsonl").read_text().splitlines()
    assert len(dead) == len(golden.invalid)


async def test_status_messages_and_activity_become_kit_status(tmp_path: Path, mosquitto: Mosquitto,
                                                              influxd: Influxd, influx: InfluxClient, database: str,
                                                              topics: Topics) -> None:
    config = settings(tmp_path, mosquitto.port, influxd.url, database, topics)
    async with running(config) as gateway:
        publisher = Publisher(mosquitto.port)
        publisher.publish(topics.status("s1", "k1"), b'{"v":1,"state":"online","fw":"0.3.0","battery":3.9}', True)
        publisher.publish(topics.readings("s1", "k1"), readings("k1", 1, 0))
        publisher.wait_acked(2)
        await wait_for_count(influx, database, 'SELECT count("state") FROM kit_status', 1)
        publisher.close()
        http_port = gateway.http_port
        assert http_port
        metrics = (await asyncio.to_thread(_get, f"http://127.0.0.1:{http_port}/metrics")).decode()
        health = json.loads(await asyncio.to_thread(_get, f"http://127.0.0.1:{http_port}/healthz"))
    rows = await influx.query_rows('SELECT LAST("state"), LAST(battery) FROM kit_status WHERE kit = \'k1\'',
                                   database=database)
    assert rows[0]["last"] == "online" and rows[0]["last_1"] == 3.9
    rows = await influx.query_rows('SELECT "seen", samples, late, boot, fw FROM kit_status WHERE "seen" = 1',
                                   database=database)
    assert rows and rows[0]["samples"] == 2 and rows[0]["late"] == 2 and rows[0]["fw"] == "t1"
    assert "lauks_gateway_stored_messages_total 1.0" in metrics
    assert health["ok"] is True and health["mqtt_connected"] is True
    gateway_rows = await influx.query_rows("SELECT LAST(received) FROM gateway", database=database)
    assert gateway_rows[0]["last"] >= 2


async def test_sigterm_flushes_and_exits_zero(tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd,
                                              influx: InfluxClient, database: str, topics: Topics) -> None:
    config = settings(tmp_path, mosquitto.port, influxd.url, database, topics, gateway_batch_ms=2000)
    child = start_gateway(config, tmp_path / "gateway.log")
    try:
        publisher = Publisher(mosquitto.port)
        for seq in range(50):
            publisher.publish(topics.readings("s1", "k1"), readings("k1", 1, seq))
        publisher.wait_acked(50)
        # held in the gateway's 2 s batch
        assert await until(lambda: child.metrics().get("lauks_gateway_received_total", 0) >= 50, 10)
        code = await asyncio.to_thread(child.stop, 20)
        publisher.close()
    finally:
        child.kill()
    assert code == 0, (tmp_path / "gateway.log").read_text()
    assert await count(influx, database, "SELECT count(temperature) FROM readings") == 50


async def test_a_broker_that_is_not_there_is_retried_and_health_says_so(
        tmp_path: Path, influxd: Influxd, database: str, topics: Topics, caplog: pytest.LogCaptureFixture) -> None:
    from gateway.service import Gateway
    from lauks.services import free_port

    config = settings(tmp_path, free_port(), influxd.url, database, topics)
    gateway = Gateway(config)
    stop = asyncio.Event()
    caplog.set_level(logging.WARNING, logger="lauks.gateway")
    task = asyncio.create_task(gateway.run(stop))

    def tries() -> int:
        return sum("cannot connect to MQTT" in record.getMessage() for record in caplog.records)

    assert await until(lambda: tries() >= 2 and gateway.http_port is not None, 10), "no second attempt to connect"
    port = gateway.http_port
    with pytest.raises(urllib.error.HTTPError) as answer:
        await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/healthz")
    assert answer.value.code == 503
    assert not task.done()
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_workers_share_one_subscription_and_stop_together(tmp_path: Path, mosquitto: Mosquitto,
                                                                influxd: Influxd, influx: InfluxClient,
                                                                database: str, topics: Topics) -> None:
    config = settings(tmp_path, mosquitto.port, influxd.url, database, topics, gateway_workers=2,
                      gateway_share_group=f"w{topics.root}")
    log = tmp_path / "gateway.log"
    child = start_gateway(config, log)  # both workers connected
    try:
        publisher = Publisher(mosquitto.port)
        for seq in range(400):
            publisher.publish(topics.readings("s1", f"k{seq % 4}"), readings(f"k{seq % 4}", 1, seq))
        publisher.wait_acked(400)
        assert await wait_for_count(influx, database, "SELECT count(humidity) FROM readings", 400) == 400
        publisher.close()
        code = await asyncio.to_thread(child.stop, 30)
    finally:
        child.kill()
    assert code == 0
    assert await count(influx, database, "SELECT count(temperature) FROM readings") == 400
    instances = await influx.query_rows("SHOW TAG VALUES FROM gateway WITH KEY = instance", database=database)
    assert {row["value"] for row in instances} == {"test-w0", "test-w1"}
