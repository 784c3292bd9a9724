"""The four reliability tests of the gateway, against real Mosquitto and InfluxDB, each bounded in time (a full
disk has its own, on a real full filesystem: test_fulldisk.py).

Every message carries a 't' sample and an 'age' sample (see ``gateway_helpers.readings``): a message
stored twice with a re-dated copy would show up as an extra 'humidity' point, one lost as a missing
'temperature' point. So "stored exactly once" is: both counts equal the number of messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from gateway_helpers import count, readings, running, settings, wait_for_count

from harness.gateway import GatewayProcess, start_gateway
from harness.publisher import Publisher
from lauks.influx import InfluxClient
from lauks.services import Influxd, Mosquitto
from lauks.topics import Topics

pytestmark = pytest.mark.slow
KITS = 5


def stream(topics: Topics, messages: int, boot: int = 1) -> list[tuple[str, bytes]]:
    return [(topics.readings("rel", f"k{i % KITS}"), readings(f"k{i % KITS}", boot, i // KITS))
            for i in range(messages)]


async def assert_exactly_once(influx: InfluxClient, database: str, messages: int, timeout_s: float = 40) -> None:
    temperature = await wait_for_count(influx, database, "SELECT count(temperature) FROM readings", messages,
                                       timeout_s)
    humidity = await count(influx, database, "SELECT count(humidity) FROM readings")
    assert (temperature, humidity) == (messages, messages)


async def test_an_influxdb_outage_under_load_loses_and_doubles_nothing(
        tmp_path: Path, mosquitto: Mosquitto, make_influxd: Callable[..., Influxd], topics: Topics) -> None:
    store = make_influxd()
    database = "outage"
    config = settings(tmp_path, mosquitto.port, store.url, database, topics)
    messages = 3000
    async with InfluxClient(store.url) as influx:
        await influx.create_database(database)
        async with running(config) as gateway:
            publisher = Publisher(mosquitto.port)

            def outage(sent: int) -> None:
                if sent == 600:
                    store.stop()
                elif sent == 2000:
                    store.start()

            await asyncio.to_thread(publisher.publish_all, stream(topics, messages), 300.0, outage)
            await asyncio.to_thread(publisher.wait_acked, messages, 30)
            publisher.close()
            await assert_exactly_once(influx, database, messages)
            assert gateway.stats.spooled > 0, "InfluxDB was down: something should have gone through the spool"
            assert gateway.spool.empty
            assert gateway.stats.replayed == gateway.stats.spooled


async def test_a_gateway_killed_again_and_again_under_load_stores_everything_once(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, influx: InfluxClient, database: str,
        topics: Topics) -> None:
    config = settings(tmp_path, mosquitto.port, influxd.url, database, topics, gateway_http_port=0,
                      gateway_client_id=f"killed-{topics.root}")
    log = tmp_path / "gateway.log"
    messages = 4000
    children: list[GatewayProcess] = [start_gateway(config, log)]
    kills = 0

    def kill_now_and_then(sent: int) -> None:
        nonlocal kills
        if sent % 900 == 0:
            children[-1].kill()
            kills += 1
            children.append(GatewayProcess(config, log))  # not waited for: the broker keeps what comes meanwhile

    try:
        publisher = Publisher(mosquitto.port)
        await asyncio.to_thread(publisher.publish_all, stream(topics, messages), 400.0, kill_now_and_then)
        await asyncio.to_thread(publisher.wait_acked, messages, 30)
        publisher.close()
        await assert_exactly_once(influx, database, messages, 60)
    finally:
        for child in children:
            child.stop(20)
    assert kills >= 4
    assert children[-1].process.returncode == 0


async def test_a_broker_restart_under_load_loses_nothing_it_accepted(
        tmp_path: Path, make_mosquitto: Callable[..., Mosquitto], influxd: Influxd, influx: InfluxClient,
        database: str, topics: Topics) -> None:
    broker = make_mosquitto()
    config = settings(tmp_path, broker.port, influxd.url, database, topics)
    messages = 3000
    async with running(config) as gateway:
        publisher = Publisher(broker.port, client_id=f"pub-{topics.root}")

        def restart(sent: int) -> None:
            if sent == 1500:
                broker.stop()
                broker.start()

        await asyncio.to_thread(publisher.publish_all, stream(topics, messages), 300.0, restart)
        # paho keeps every unacknowledged message and sends it again after it reconnects
        await asyncio.to_thread(publisher.wait_acked, messages, 40)
        publisher.close()
        await assert_exactly_once(influx, database, messages)
        assert gateway.source.connects >= 2


async def test_two_gateways_in_a_share_group_split_the_load_and_store_everything_once(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, influx: InfluxClient, database: str,
        topics: Topics) -> None:
    group = f"g{topics.root}"
    one = settings(tmp_path, mosquitto.port, influxd.url, database, topics, gateway_share_group=group,
                   gateway_instance="one", gateway_client_id=f"one-{topics.root}")
    two = settings(tmp_path, mosquitto.port, influxd.url, database, topics, gateway_share_group=group,
                   gateway_instance="two", gateway_client_id=f"two-{topics.root}")
    messages = 3000
    async with running(one) as first, running(two) as second:
        publisher = Publisher(mosquitto.port)
        await asyncio.to_thread(publisher.publish_all, stream(topics, messages), 1000.0)
        await asyncio.to_thread(publisher.wait_acked, messages, 30)
        publisher.close()
        await assert_exactly_once(influx, database, messages)
    shares = (first.stats.stored_messages, second.stats.stored_messages)
    assert sum(shares) == messages
    assert min(shares) > messages * 0.2, shares
