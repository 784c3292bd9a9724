"""The gateway's own MQTT 5 client against a real Mosquitto (and a scripted stand-in for what Mosquitto
cannot be made to do): refusals are reported with the broker's reason, less than at-least-once (a QoS 0
grant, a maximum QoS of 0) is a refusal, PUBACKs leave in receive order, a hung broker is noticed by
keep-alive, a broker that speaks garbage is dropped, and the gateway's rejection notices never overrun
the broker's receive maximum."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from gateway_helpers import T0, running, settings, until, wait_for_count

from gateway import mqttwire as wire
from gateway.mqtt import Ack, MqttSource
from gateway.service import Gateway
from gateway.settings import GatewaySettings
from harness.publisher import Publisher
from lauks.brokerauth import GATEWAY_USER, BrokerAuth
from lauks.influx import InfluxClient
from lauks.services import Mosquitto, free_port
from lauks.topics import Topics

pytestmark = pytest.mark.services


def _mqtt(gateway: Gateway) -> MqttSource:
    """The gateway's source, which in these tests is always the MQTT client."""
    assert isinstance(gateway.source, MqttSource)
    return gateway.source


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
        assert await until(lambda: condition(gateway) or task.done(), timeout_s), "the condition never held"
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
    assert _mqtt(gateway).connects == 0
    ok, detail = gateway.health()
    assert not ok and detail["mqtt_refused"] == refusal


class StandIn:
    """A scripted broker on loopback, for what a real Mosquitto cannot be made to do: it answers each
    CONNECT with ``connack`` and, given ``suback_codes``, the SUBSCRIBE with those reason codes, followed
    at once (same write) by ``publishes[n]`` on the n-th connection; a moment later sends ``then``; then
    it reads, answering only UNSUBSCRIBEs, until the gateway hangs up (or ``hang_up`` is called). Every
    packet the gateway sends is kept in ``received``, one list per connection."""

    def __init__(self, connack: bytes, suback_codes: bytes | None = None, then: bytes = b"",
                 publishes: dict[int, bytes] | None = None) -> None:
        self.connack = connack
        self.suback_codes = suback_codes
        self.then = then
        self.publishes = publishes or {}
        self.connections = 0
        self.received: list[list[tuple[int, bytes]]] = []
        self.port = 0
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> StandIn:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", free_port())
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    def hang_up(self, connection: int) -> None:
        self._writers[connection].close()

    def pubacks(self, connection: int) -> list[int]:
        return [wire.parse_puback(body)[0] for first, body in self.received[connection] if first >> 4 == wire.PUBACK]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = self.connections
        self.connections += 1
        self._writers.append(writer)
        received: list[tuple[int, bytes]] = []
        self.received.append(received)
        packets = wire.PacketReader()
        waiting: list[tuple[int, bytes]] = []

        async def next_packet() -> tuple[int, bytes] | None:
            while not waiting:
                data = await reader.read(4096)
                if not data:
                    return None
                waiting.extend(packets.feed(data))
            received.append(waiting[0])
            return waiting.pop(0)

        try:
            await next_packet()  # the CONNECT
            writer.write(self.connack)
            if self.suback_codes is not None:
                subscribe = await next_packet()
                assert subscribe is not None and subscribe[0] >> 4 == wire.SUBSCRIBE
                writer.write(bytes((0x90, 3 + len(self.suback_codes))) + subscribe[1][:2] + b"\x00" +
                             self.suback_codes + self.publishes.get(number, b""))
            await writer.drain()
            if self.then:
                await asyncio.sleep(0.2)  # the gateway is connected by now, not still reading its SUBACK
                writer.write(self.then)
                await writer.drain()
            while (packet := await next_packet()) is not None:  # PINGREQs and the like, unanswered
                first, body = packet
                if first >> 4 == wire.UNSUBSCRIBE:  # success for each filter
                    filters = len(_filters(body))
                    writer.write(bytes((0xB0, 3 + filters)) + body[:2] + b"\x00" + bytes(filters))
        except ConnectionError:
            pass
        writer.close()


def _filters(body: bytes) -> list[str]:
    """The topic filters of an UNSUBSCRIBE's body (no properties: the gateway sends none)."""
    assert body[2] == 0
    index, filters = 3, []
    while index < len(body):
        size = body[index] << 8 | body[index + 1]
        filters.append(body[index + 2:index + 2 + size].decode())
        index += 2 + size
    return filters


CONNACK_OK = b"\x20\x03\x00\x00\x00"  # success, no session, no properties


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
    assert _mqtt(gateway).connects == 0


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
            assert await until(lambda: not gateway.source.connected, 8), "a silent broker was not noticed"
        finally:
            broker.child.signal(signal.SIGCONT)
        reconnected = await until(lambda: gateway.source.connected and _mqtt(gateway).connects >= 2, 15)
        assert reconnected, "the gateway did not reconnect"
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
        gateway = await _run_briefly(config, lambda g: _mqtt(g).connects >= 3, 6)
    assert _mqtt(gateway).connects >= 3 and time.monotonic() - started < 6
    assert any("session taken over" in r.getMessage() for r in caplog.records), caplog.text


async def test_a_broker_that_sends_garbage_is_dropped_and_tried_again(
        tmp_path: Path, influx_url: str, database: str, topics: Topics) -> None:
    # a CONNACK whose length needs five bytes: not MQTT
    async with StandIn(b"\x20\xff\xff\xff\xff\x7f") as broker:
        config = settings(tmp_path / "state", broker.port, influx_url, database, topics, gateway_reconnect_max_s=0.2)
        gateway = await _run_briefly(config, lambda g: broker.connections >= 3, 10)
    assert _mqtt(gateway).connects == 0 and broker.connections >= 3


async def test_the_brokers_server_keep_alive_wins_over_ours(
        tmp_path: Path, influx_url: str, database: str, topics: Topics) -> None:
    # MQTT 5: a broker may set the keep-alive in its CONNACK (Server Keep Alive), and the client must use it.
    # This stand-in says 1 s and then never answers a PINGREQ: with our own 30 s, nobody would notice.
    started = time.monotonic()
    async with StandIn(b"\x20\x06\x00\x00\x03\x13\x00\x01", suback_codes=b"\x01\x01") as broker:
        config = settings(tmp_path / "state", broker.port, influx_url, database, topics,
                          gateway_mqtt_keepalive_s=30, gateway_reconnect_max_s=0.2)
        gateway = await _run_briefly(config, lambda g: _mqtt(g).connects >= 2, 10)
    assert _mqtt(gateway).connects >= 2 and broker.connections >= 2
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
        source = _mqtt(gateway)
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
        source = _mqtt(gateway)
        handle, acknowledge = gateway.handle, source.acknowledge

        def counting_handle(topic: str, payload: bytes, retained: bool, ack: Ack | None) -> None:
            nonlocal most
            if ack is not None:
                held.add(ack.packet_id)
                most = max(most, len(held))
            handle(topic, payload, retained, ack)

        def counting_acknowledge(acks: list[Ack]) -> None:
            held.difference_update(ack.packet_id for ack in acks)
            acknowledge(acks)

        assert source.connection is not None
        source.connection.handler = counting_handle
        source.acknowledge = counting_acknowledge  # type: ignore[method-assign]
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


# --- at least once or nothing ---------------------------------------------------------------------------

async def test_a_subscription_granted_at_qos_0_is_refused_taken_back_and_none_of_its_messages_is_ingested(
        tmp_path: Path, influx_url: str, database: str, topics: Topics, caplog: pytest.LogCaptureFixture) -> None:
    # SUBACK: readings granted QoS 0 (0x00) where the gateway asked for 1, status granted 1; straight after
    # it (same write) the broker delivers a reading at QoS 0 and one at QoS 1
    topic = topics.readings("s1", "k01")
    body = json.dumps({"v": 1, "kit": "k01", "boot": 1, "seq": 1, "samples": [{"t": T0, "humidity": 40}]}).encode()
    publishes = wire.publish_packet(topic, body, 0) + wire.publish_packet(topic, body, 1, 1)
    async with StandIn(CONNACK_OK, suback_codes=b"\x00\x01", publishes={0: publishes, 1: publishes}) as broker:
        config = settings(tmp_path / "state", broker.port, influx_url, database, topics, gateway_reconnect_max_s=0.2)
        gateway = await _run_briefly(config, lambda g: broker.connections >= 2 and g.source.refusal is not None, 10)
    refusal = gateway.source.refusal or ""
    assert "granted only QoS 0" in refusal and topics.filter("readings") in refusal, refusal
    assert topics.filter("status") not in refusal
    ok, detail = gateway.health()
    assert not ok and detail["mqtt_refused"] == refusal
    assert gateway.stats.received == 0 and _mqtt(gateway).connects == 0
    # the session keeps no QoS 0 subscription: the broker would go on queueing readings at QoS 0
    unsubscribed = [_filters(body) for first, body in broker.received[0] if first >> 4 == wire.UNSUBSCRIBE]
    assert unsubscribed == [[topics.filter("readings")]]
    assert any(r.levelno == logging.ERROR and "granted only QoS 0" in r.getMessage() for r in caplog.records)


async def test_a_broker_whose_maximum_qos_is_0_is_refused_with_the_reason(
        tmp_path: Path, make_mosquitto: Callable[..., Mosquitto], influx_url: str, database: str,
        topics: Topics) -> None:
    broker = make_mosquitto(extra_config="max_qos 0")  # Mosquitto then says Maximum QoS 0 in its CONNACK
    config = settings(tmp_path / "state", broker.port, influx_url, database, topics, gateway_reconnect_max_s=0.5)
    gateway = await _run_briefly(config, lambda g: g.source.refusal is not None, 10)
    refusal = gateway.source.refusal or ""
    assert "maximum QoS is 0" in refusal and "at least once" in refusal, refusal
    ok, detail = gateway.health()
    assert not ok and detail["mqtt_refused"] == refusal
    assert _mqtt(gateway).connects == 0


# --- PUBACKs in receive order (MQTT 5, 4.6) ---------------------------------------------------------------

class Held:
    """A handler that keeps every message and its ack token, for the test to acknowledge when it likes."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes, Ack | None]] = []

    def __call__(self, topic: str, payload: bytes, retained: bool, ack: Ack | None) -> None:
        self.messages.append((topic, payload, ack))

    @property
    def acks(self) -> list[Ack]:
        return [ack for _, _, ack in self.messages if ack is not None]


@contextlib.asynccontextmanager
async def _subscribed(config: GatewaySettings, topics: Topics, handler: Held) -> AsyncIterator[MqttSource]:
    """An MqttSource alone (no gateway) subscribed to readings and status; closed (DISCONNECT) after."""
    source = MqttSource(config, [topics.filter("readings"), topics.filter("status")], handler)
    task = asyncio.create_task(source.run())
    try:
        assert await until(lambda: source.connected or task.done(), 10), "the source did not connect"
        yield source
    finally:
        await source.close()
        await asyncio.wait_for(task, 10)


def _source_settings(tmp_path: Path, port: int, topics: Topics) -> GatewaySettings:
    return settings(tmp_path / "state", port, "http://127.0.0.1:9", "unused", topics, gateway_reconnect_max_s=0.2)


async def test_pubacks_leave_in_receive_order_when_a_later_batch_is_durable_first(tmp_path: Path,
                                                                                  topics: Topics) -> None:
    topic = topics.readings("s1", "k01")
    publishes = b"".join(wire.publish_packet(topic, b"{}", 1, packet_id) for packet_id in (11, 12, 13, 14, 15))
    held = Held()
    async with StandIn(CONNACK_OK, suback_codes=b"\x01\x01", publishes={0: publishes}) as broker:
        async with _subscribed(_source_settings(tmp_path, broker.port, topics), topics, held) as source:
            assert await until(lambda: len(held.acks) == 5, 5), "the five messages did not arrive"
            first_batch, second_batch, rejected = held.acks[:2], held.acks[2:4], held.acks[4]
            source.acknowledge(second_batch)  # the later batch is durable first
            source.acknowledge_soon(rejected)  # a message with nothing to write, acknowledged at once
            await asyncio.sleep(0.05)
            assert broker.pubacks(0) == [], "a PUBACK went out before an earlier-received message's"
            source.acknowledge(first_batch)
        hung_up = await until(lambda: bool(broker.received[0]) and broker.received[0][-1][0] >> 4 == wire.DISCONNECT, 5)
        assert hung_up, "the stand-in did not read up to the DISCONNECT"
    assert broker.pubacks(0) == [11, 12, 13, 14, 15]


async def test_acks_of_a_dropped_connection_are_never_sent_on_the_next(tmp_path: Path, topics: Topics) -> None:
    topic = topics.readings("s1", "k01")
    first = wire.publish_packet(topic, b"{}", 1, 1) + wire.publish_packet(topic, b"{}", 1, 2)
    again = wire.publish_packet(topic, b"{}", 1, 1)  # the next session delivers again what was not acknowledged
    held = Held()
    async with StandIn(CONNACK_OK, suback_codes=b"\x01\x01", publishes={0: first, 1: again}) as broker:
        async with _subscribed(_source_settings(tmp_path, broker.port, topics), topics, held) as source:
            assert await until(lambda: len(held.acks) == 2, 5), "the two messages did not arrive"
            broker.hang_up(0)
            assert await until(lambda: source.connects == 2 and len(held.acks) == 3, 5), "no second session"
            source.acknowledge(held.acks)  # the first connection's two (made durable late), then the new one
        hung_up = await until(lambda: bool(broker.received[1]) and broker.received[1][-1][0] >> 4 == wire.DISCONNECT, 5)
        assert hung_up, "the stand-in did not read up to the DISCONNECT"
    assert broker.pubacks(0) == [] and broker.pubacks(1) == [1]


async def test_a_handler_that_fails_drops_the_connection_and_the_message_comes_again(
        tmp_path: Path, topics: Topics, caplog: pytest.LogCaptureFixture) -> None:
    # as PUBACKs go in receive order, a message left unacknowledged on a live connection would hold back
    # every later one: the connection is dropped instead, and the broker delivers it again
    topic = topics.readings("s1", "k01")
    held = Held()
    calls = 0

    def failing_once(topic: str, payload: bytes, retained: bool, ack: Ack | None) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a bug")
        held(topic, payload, retained, ack)

    packet = wire.publish_packet(topic, b"{}", 1, 1)
    async with StandIn(CONNACK_OK, suback_codes=b"\x01", publishes={0: packet, 1: packet}) as broker:
        source = MqttSource(_source_settings(tmp_path, broker.port, topics), [topics.filter("readings")], failing_once)
        task = asyncio.create_task(source.run())
        try:
            assert await until(lambda: len(held.acks) == 1, 5), "the message did not come again"
        finally:
            await source.close()
            await asyncio.wait_for(task, 10)
    assert source.connects == 2 and broker.connections == 2
    assert any("the handler failed" in r.getMessage() for r in caplog.records)


async def test_with_mosquitto_a_message_acknowledged_before_an_earlier_one_waits_for_it(
        tmp_path: Path, mosquitto: Mosquitto, topics: Topics) -> None:
    # the later two are acknowledged, the first never: none of the three PUBACKs may leave, so the broker
    # delivers all three again in the next session (out of order, it would deliver only the first)
    topic = topics.readings("s1", "k01")
    config = _source_settings(tmp_path, mosquitto.port, topics)
    held = Held()
    async with _subscribed(config, topics, held) as source:  # the session, with its subscription, starts here
        publisher = Publisher(mosquitto.port)
        try:
            for seq in range(3):
                publisher.publish(topic, str(seq).encode())
            publisher.wait_acked(3)
        finally:
            publisher.close()
        assert await until(lambda: len(held.acks) == 3, 5), "the three messages did not arrive"
        source.acknowledge(held.acks[1:])
    again = Held()
    async with _subscribed(config, topics, again) as source:
        assert source.connection is not None and source.connection.session_present
        assert await until(lambda: len(again.acks) == 3, 5), f"the broker delivered {len(again.acks)} of 3 again"
        source.acknowledge(again.acks)
    assert [payload for _, payload, _ in again.messages] == [b"0", b"1", b"2"]


async def test_a_message_of_hundreds_of_rejections_gets_a_notice_that_fits_and_the_gateway_stays_connected(
        tmp_path: Path, make_mosquitto: Callable[..., Mosquitto], influx_url: str, database: str,
        topics: Topics, influx: InfluxClient) -> None:
    # 363 samples with two fields out of range each fill the contract's 16 KiB; all their rejections would take
    # ~80 KB, more than the broker's max_packet_size (32 KiB, said in its CONNACK). Sent whole, that notice got
    # the gateway disconnected before the message's PUBACK, and the broker delivered the same message again,
    # for ever. The notice now carries the first rejections and counts the rest; one the broker would refuse
    # anyway is not sent.
    broker = make_mosquitto()
    config = settings(tmp_path / "state", broker.port, influx_url, database, topics)
    samples = [{"t": T0 + n, "humidity": 140, "pressure": 5} for n in range(363)]
    bad = json.dumps({"v": 1, "kit": "k01", "boot": 1, "seq": 1, "samples": samples}, separators=(",", ":")).encode()
    good = json.dumps({"v": 1, "kit": "k01", "boot": 1, "seq": 2, "samples": [{"t": T0, "humidity": 40}]}).encode()
    async with running(config) as gateway:
        source = _mqtt(gateway)
        assert source.connection is not None and source.connection.maximum_packet_size == 32768
        kit = Publisher(broker.port).wait_connected()
        kit.subscribe(topics.rejected("s1", "k01"))
        publisher = Publisher(broker.port)
        try:
            publisher.publish(topics.readings("s1", "k01"), bad)
            publisher.publish(topics.readings("s1", "k01"), good)
            publisher.wait_acked(2)
            _, payload = await asyncio.to_thread(kit.next_message, 10)
            source.publish(topics.rejected("s1", "k01"), b"x" * 40_000)  # over the broker's limit: not sent
        finally:
            publisher.close()
            kit.close()
        stored = await wait_for_count(influx, database, "SELECT count(humidity) FROM readings", 1)
        assert source.connects == 1, "the broker dropped the gateway"
        assert gateway.stats.received == 2 and source.notices_too_large == 1
    assert stored == 1
    notice = json.loads(payload)
    assert len(payload) <= 16 * 1024 and notice["seq"] == 1
    assert notice["rejections"][0]["message"] == "humidity 140 % is above 100 %"
    assert len(notice["rejections"]) + notice["more"] == 2 * 363
