"""Honest health with a hung InfluxDB (a real influxd, SIGSTOPped): /healthz says so within seconds, not
after the whole write timeout; ingest goes on through the spool; and a gateway started while InfluxDB
hangs serves /healthz and subscribes at once."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from gateway_helpers import count, readings, running, settings, until, wait_for_count

from gateway.service import Gateway
from harness.publisher import Publisher
from lauks.influx import InfluxClient
from lauks.services import Influxd, Mosquitto
from lauks.topics import Topics

pytestmark = pytest.mark.services


async def healthz(gateway: Gateway) -> tuple[int, dict[str, object]]:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(f"http://127.0.0.1:{gateway.http_port}/healthz")
    return response.status_code, dict(response.json())


@contextlib.contextmanager
def hung(store: Influxd) -> Iterator[None]:
    """InfluxDB stopped dead: connections open, nothing answered."""
    assert store.child is not None
    store.child.signal(signal.SIGSTOP)
    try:
        yield
    finally:
        store.child.signal(signal.SIGCONT)


async def test_a_hung_influxdb_is_reported_within_seconds_and_ingest_goes_on_through_the_spool(
        tmp_path: Path, mosquitto: Mosquitto, make_influxd: Callable[..., Influxd], topics: Topics) -> None:
    store = make_influxd()
    database = "hung"
    # the write timeout as shipped: the old gateway said nothing, and held every message, for all of it
    config = settings(tmp_path, mosquitto.port, store.url, database, topics, influx_timeout_s=10.0)
    messages = 200
    async with InfluxClient(store.url) as influx:
        await influx.create_database(database)
        async with running(config) as gateway:
            publisher = Publisher(mosquitto.port)
            try:
                with hung(store):
                    started = time.monotonic()
                    for seq in range(messages):
                        publisher.publish(topics.readings("s1", "k1"), readings("k1", 1, seq))
                    reported = None
                    while time.monotonic() - started < 8:
                        status, detail = await healthz(gateway)
                        if detail["influx_reachable"] is False:
                            reported = time.monotonic() - started
                            break
                        await asyncio.sleep(0.1)
                    assert reported is not None and reported < 4, "a hung InfluxDB was not reported in time"
                    assert "answer" in str(detail.get("influx_problem")), detail
                    # the held messages go to the spool and are acknowledged while InfluxDB still hangs
                    assert await until(lambda: gateway.stats.stored_messages == messages, 8), gateway.stats
                    assert gateway.stats.spooled > 0
                    status, detail = await healthz(gateway)
                    assert status == 200 and detail["ok"] is True and detail["influx_reachable"] is False, detail
            finally:
                publisher.close()
            stored = await wait_for_count(influx, database, "SELECT count(temperature) FROM readings", messages, 30)
            humidity = await count(influx, database, "SELECT count(humidity) FROM readings")
            assert (stored, humidity) == (messages, messages)
            assert await until(lambda: gateway.spool.empty and gateway.influx_reachable()[0], 10)


async def test_a_gateway_started_while_influxdb_hangs_serves_healthz_and_subscribes_at_once(
        tmp_path: Path, mosquitto: Mosquitto, make_influxd: Callable[..., Influxd], topics: Topics) -> None:
    store = make_influxd()
    database = "created_later"  # does not exist yet: the gateway creates it once InfluxDB answers
    config = settings(tmp_path, mosquitto.port, store.url, database, topics, influx_timeout_s=10.0)
    with hung(store):
        started = time.monotonic()
        async with running(config, connect_timeout_s=8) as gateway:
            connected_s = time.monotonic() - started
            status, detail = await healthz(gateway)
            publisher = Publisher(mosquitto.port)
            try:
                publisher.publish(topics.readings("s1", "k1"), readings("k1", 1, 0))
                await asyncio.to_thread(publisher.wait_acked, 1, 5)
            finally:
                publisher.close()
            assert connected_s < 3, f"connected only after {connected_s:.1f} s"  # it waited 10 s on CREATE DATABASE
            assert status == 200 and detail["mqtt_connected"] is True
            store.child.signal(signal.SIGCONT)  # type: ignore[union-attr]
            async with InfluxClient(store.url) as influx:
                stored = await wait_for_count(influx, database, "SELECT count(temperature) FROM readings", 1, 30)
    assert stored == 1
