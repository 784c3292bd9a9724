"""The gateway's own MQTT 5 client against a real Mosquitto: refusals are reported with the broker's
reason, a hung broker is noticed by keep-alive, a broker that speaks garbage is dropped, and the
gateway's rejection notices never overrun the broker's receive maximum."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from gateway_helpers import T0, Publisher, running, settings, wait_for_count

from gateway.mqtt import Ack, MqttSource
from gateway.service import Gateway
from gateway.settings import GatewaySettings
from lauks.brokerauth import GATEWAY_USER, BrokerAuth
from lauks.influx import InfluxClient
from lauks.services import Mosquitto, free_port
from lauks.topics import Topics

pytestmark = pytest.mark.services


async def _until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


def _secured_broker(tmp_path: Path, make_mosquitto: Callable[..., Mosquitto]) -> tuple[Mosquitto, BrokerAuth,
                                                                                          dict[str, str]]:
    auth = BrokerAuth(tmp_path / "auth", root="lauks")
    services = auth.ensure_service_users()
    broker = make_mosquitto(password_file=auth.password_file, acl_file=auth.acl_file)
    return broker, auth, services


async def _run_briefly(config: GatewaySettings, condition: Callable[[Gateway], bool], timeout_s: float) -> Gateway:
    gateway = Gateway(config)
    stop = asyncio.Event()
    task = asyncio.create_task(gateway.run(stop))
    try:
        await _until(lambda: condition(gateway) or task.done(), timeout_s, "the condition never held")
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
    return gateway


async def test_a_wrong_password_is_reported_with_the_brokers_reason(
        tmp_path: Path, make_mosquitto: Callable[..., Mosquitto], influx_url: str, database: str,
        topics: Topics) -> None:
    broker, _, _ = _secured_broker(tmp_path, make_mosquitto)
    config = settings(tmp_path / "state", broker.port, influx_url, database, Topics("lauks"),
                      mqtt_username=GATEWAY_USER, mqtt_password="not-the-password", gateway_reconnect_max_s=0.5)
    gateway = await _run_briefly(config, lambda g: g.source.refusal is not None, 10)
    refusal = gateway.source.refusal or ""
    assert "refused the connection" in refusal
    assert "bad user name or password" in refusal or "not authorized" in refusal, refusal
    assert gateway.source.connects == 0
    ok, detail = gateway.health()
    assert not ok and detail["mqtt_refused"] == refusal


class StandIn:
    """A scripted broker on loopback, for what a real Mosquitto cannot be made to do: it answers each
    CONNECT with ``connack`` and, given ``suback_codes``, the SUBSCRIBE with those reason codes; a moment
    later sends ``then``; then it reads, answering nothing, until the gateway hangs up."""

    def __init__(self, connack: bytes, suback_codes: bytes | None = None, then: bytes = b"") -> None:
        self.connack = connack
        self.suback_codes = suback_codes
        self.then = then
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> StandIn:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", free_port())
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        await reader.read(1024)  # the CONNECT
        writer.write(self.connack)
        if self.suback_codes is not None:
            subscribe = await reader.read(1024)
            packet_id = subscribe[2:4]  # after the first byte and a one-byte length
            writer.write(bytes((0x90, 3 + len(self.suback_codes))) + packet_id + b"\x00" + self.suback_codes)
        await writer.drain()
        if self.then:
            await asyncio.sleep(0.2)  # the gateway is connected by now, not still reading its SUBACK
            writer.write(self.then)
            await writer.drain()
        while await reader.read(1024):  # PINGREQs and the like, unanswered
            pass
        writer.close()


async def test_a_refused_subscription_is_reported_not_taken_for_success(
        tmp_path: Path, influx_url: str, database: str, topics: Topics) -> None:
    # Mosquitto's acl_file grants every SUBSCRIBE and filters at delivery, but a broker with an ACL plugin
    # (or another broker) answers a forbidden one with reason 0x87 in the SUBACK. This stand-in does that:
    # CONNACK success with no properties; SUBACK readings refused, status granted.
    async with StandIn(b"\x20\x03\x00\x00\x00", suback_codes=b"\x87\x01") as broker:
        config = settings(tmp_path / "state", broker.port, influx_url, database, topics, gateway_reconnect_max_s=0.5)
        gateway = await _run_briefly(config, lambda g: g.source.refusal is not None, 10)
    refusal = gateway.source.refusal or ""
    assert "refused the subscription" in refusal and topics.filter("readings") in refusal, refusal
    assert "not authorized (0x87)" in refusal and topics.filter("status") not in refusal
    assert gateway.source.connects == 0


async def test_a_hung_broker_is_noticed_by_keepalive_and_the_gateway_comes_back_when_it_does(
        tmp_path: Path, make_mosquitto: Callable[..., Mosquitto], influx_url: str, database: str,
        topics: Topics, influx: InfluxClient) -> None:
    broker = make_mosquitto()
    config = settings(tmp_path / "state", broker.port, influx_url, database, topics, gateway_mqtt_keepalive_s=2,
                      gateway_reconnect_max_s=0.5)
    async with running(config) as gateway:
        assert broker.child is not None
        broker.child.signal(signal.SIGSTOP)  # TCP stays open; nothing answers
        try:
            await _until(lambda: not gateway.source.connected, 8, "a silent broker was not noticed")
        finally:
            broker.child.signal(signal.SIGCONT)
        await _until(lambda: gateway.source.connected and gateway.source.connects >= 2, 15,
                     "the gateway did not reconnect")
        publisher = Publisher(broker.port)
        try:
            body = {"v": 1, "kit": "k01", "boot": 1, "seq": 1, "samples": [{"t": T0, "temperature": 21.5}]}
            publisher.publish(topics.readings("s1", "k01"), json.dumps(body).encode())
            publisher.wait_acked(1)
        finally:
            publisher.close()
        stored = await wait_for_count(influx, database, "SELECT count(temperature) FROM readings", 1)
    assert stored == 1


async def test_a_disconnect_from_the_broker_is_noticed_at_once_and_the_gateway_connects_again(
        tmp_path: Path, influx_url: str, database: str, topics: Topics, caplog: pytest.LogCaptureFixture) -> None:
    # What Mosquitto sends an MQTT 5 client whose session another client takes over: DISCONNECT with reason
    # 0x8E. The stand-in sends it right after the SUBACK and keeps the TCP connection open: the gateway must
    # close and connect again at once, not when its keep-alive (30 s here) finds the link quiet.
    async with StandIn(b"\x20\x03\x00\x00\x00", suback_codes=b"\x01\x01", then=b"\xe0\x02\x8e\x00") as broker:
        config = settings(tmp_path / "state", broker.port, influx_url, database, topics,
                          gateway_mqtt_keepalive_s=30, gateway_reconnect_max_s=0.2)
        started = time.monotonic()
        gateway = await _run_briefly(config, lambda g: g.source.connects >= 3, 6)
    assert gateway.source.connects >= 3 and time.monotonic() - started < 6
    assert any("session taken over" in r.getMessage() for r in caplog.records), caplog.text


async def test_a_broker_that_sends_garbage_is_dropped_and_tried_again(
        tmp_path: Path, influx_url: str, database: str, topics: Topics) -> None:
    # a CONNACK whose length needs five bytes: not MQTT
    async with StandIn(b"\x20\xff\xff\xff\xff\x7f") as broker:
        config = settings(tmp_path / "state", broker.port, influx_url, database, topics, gateway_reconnect_max_s=0.2)
        gateway = await _run_briefly(config, lambda g: broker.connections >= 3, 10)
    assert gateway.source.connects == 0 and broker.connections >= 3


async def test_the_brokers_server_keep_alive_wins_over_ours(
        tmp_path: Path, influx_url: str, database: str, topics: Topics) -> None:
    # MQTT 5: a broker may set the keep-alive in its CONNACK (Server Keep Alive), and the client must use it.
    # This stand-in says 1 s and then never answers a PINGREQ: with our own 30 s, nobody would notice.
    started = time.monotonic()
    async with StandIn(b"\x20\x06\x00\x00\x03\x13\x00\x01", suback_codes=b"\x01\x01") as broker:
        config = settings(tmp_path / "state", broker.port, influx_url, database, topics,
                          gateway_mqtt_keepalive_s=30, gateway_reconnect_max_s=0.2)
        gateway = await _run_briefly(config, lambda g: g.source.connects >= 2, 10)
    assert gateway.source.connects >= 2 and broker.connections >= 2
    assert time.monotonic() - started < 10


async def test_rejection_notices_respect_the_brokers_receive_maximum(
        tmp_path: Path, make_mosquitto: Callable[..., Mosquitto], influx_url: str, database: str,
        topics: Topics, influx: InfluxClient) -> None:
    # The broker lets each client have only 2 of its own QoS 1 messages unacknowledged; one bad message
    # after another makes the gateway publish many notices at once. It must not be disconnected for that.
    broker = make_mosquitto(extra_config="max_inflight_messages 2")
    config = settings(tmp_path / "state", broker.port, influx_url, database, topics)
    bad = 40
    async with running(config) as gateway:
        source: MqttSource = gateway.source
        assert source.connection is not None and source.connection.server_receive_maximum == 2
        publisher = Publisher(broker.port)
        try:
            for seq in range(bad):
                body = {"v": 1, "kit": "k01", "boot": 1, "seq": seq, "samples": [{"t": T0 + seq, "humidity": 140}]}
                publisher.publish(topics.readings("s1", "k01"), json.dumps(body).encode())
            publisher.publish(topics.readings("s1", "k01"), json.dumps(
                {"v": 1, "kit": "k01", "boot": 1, "seq": bad, "samples": [{"t": T0, "humidity": 40}]}).encode())
            publisher.wait_acked(bad + 1)
        finally:
            publisher.close()
        stored = await wait_for_count(influx, database, "SELECT count(humidity) FROM readings", 1)
        rejected = await wait_for_count(influx, database, "SELECT count(\"count\") FROM rejections", bad)
        assert source.connects == 1, "the broker dropped the gateway"
    assert (stored, rejected) == (1, bad)


async def test_the_gateway_never_holds_more_than_its_window_even_when_the_broker_sends_more(
        tmp_path: Path, make_mosquitto: Callable[..., Mosquitto], influx_url: str, database: str,
        topics: Topics, influx: InfluxClient) -> None:
    # Mosquitto 2.0.11 goes past a client's receive maximum once PUBACKs flow (mosquitto#2301): without
    # the gateway pausing its reads, it held ~1,000 messages here with a window of 100, and ~15,000
    # with 4,000 in the ingest benchmark.
    broker = make_mosquitto()
    window, total = 50, 3000
    config = settings(tmp_path / "state", broker.port, influx_url, database, topics, gateway_max_inflight=window,
                      gateway_batch_ms=200)
    async with running(config) as gateway:
        held: set[int] = set()
        most = 0
        handle, acknowledge = gateway.handle, gateway.source.acknowledge

        def counting_handle(topic: str, payload: bytes, retained: bool, ack: Ack | None) -> None:
            nonlocal most
            if ack is not None:
                held.add(ack.packet_id)
                most = max(most, len(held))
            handle(topic, payload, retained, ack)

        def counting_acknowledge(acks: list[Ack]) -> None:
            held.difference_update(ack.packet_id for ack in acks)
            acknowledge(acks)

        assert gateway.source.connection is not None
        gateway.source.connection.handler = counting_handle
        gateway.source.acknowledge = counting_acknowledge  # type: ignore[method-assign]
        publisher = Publisher(broker.port)
        try:
            for seq in range(total):
                body = {"v": 1, "kit": "k01", "boot": 1, "seq": seq, "samples": [{"t": T0 + seq, "humidity": 40}]}
                publisher.publish(topics.readings("s1", "k01"), json.dumps(body).encode())
            publisher.wait_acked(total)
        finally:
            publisher.close()
        stored = await wait_for_count(influx, database, "SELECT count(humidity) FROM readings", total)
    assert stored == total
    assert 0 < most <= window
