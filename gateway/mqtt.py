"""The MQTT shell: our own small MQTT 5 client, one reconnect loop, acknowledgements by hand.

Why our own: the gateway is CPU-bound, and gmqtt (measured best of the libraries, see
bench/gateway_clients.py) spends about as long per message as our whole validation does: a
property dictionary, a task and a future per message. Here each PUBLISH is read in
``data_received`` and handed straight to the gateway's synchronous handler with an ``Ack`` token;
the gateway calls ``acknowledge`` with the tokens of a batch once its points are durable. PUBACKs
leave in the order their PUBLISHes came (MQTT 5, 4.6), whatever order the batches become durable
in: a token acknowledged early waits behind the earlier-received ones, and each write sends as many
as are due. A token from a connection that has since dropped is not sent: the broker delivers that
message again in the next session, and de-duplication takes it from there.

At-least-once or nothing: a broker whose CONNACK says its maximum QoS is 0, or whose SUBACK grants
QoS 0 where we asked for 1, is refused like a wrong password (logged, ``mqtt_refused`` in /healthz,
tried again with backoff); no message of such a subscription reaches the gateway. The protocol
subset is written down in docs/gateway.md, "MQTT protocol subset".

Session: MQTT 5, clean start off and a session that never expires, so the broker keeps what we have
not acknowledged; ``receive_maximum`` caps how many unacknowledged messages it sends us. One loop
owns reconnecting (capped, randomised backoff) and subscribes on every connect. A CONNACK without a
session where one should exist (any reconnect, or a first connect that a previous run's marker says
had one) is a lost session: what the broker had queued for us is gone, so it is logged as an error,
counted and shown in /healthz.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from gateway import mqttwire as wire
from gateway.core import backoff
from gateway.settings import GatewaySettings

log = logging.getLogger("lauks.gateway.mqtt")

SESSION_NEVER_EXPIRES = 0xFFFFFFFF
CONNECT_TIMEOUT_S = 15.0
SUBACK_TIMEOUT_S = 15.0
UNSUBACK_TIMEOUT_S = 5.0
SUBSCRIBE_QOS = 1  # at least once; the gateway neither needs nor speaks QoS 2
# far above the contract's 16 KiB: the core rejects big payloads with a reason. Said in the CONNECT (Maximum
# Packet Size), so a broker drops a bigger one for us instead of sending it: we would close the connection,
# and it would send the same message again in the next session, for ever
MAX_PACKET_BYTES = 1024 * 1024

# the gateway's handler: (topic, payload, retained, ack) -> None; ack is None for a QoS 0 message
Handler = Callable[[str, bytes, bool, "Ack | None"], None]


class MqttRefused(Exception):
    """The broker said no (CONNACK or SUBACK with an error reason), or offers less than at-least-once."""


class Connection(asyncio.Protocol):
    """One TCP (or TLS) connection to the broker."""

    def __init__(self, handler: Handler, keepalive_s: int) -> None:
        self.handler = handler
        self.reader = wire.PacketReader(MAX_PACKET_BYTES)
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.connack: asyncio.Future[wire.Connack] = loop.create_future()
        # SUBACKs and UNSUBACKs awaited, by packet identifier: their reason codes
        self.subacks: dict[int, asyncio.Future[list[int]]] = {}
        self.lost: asyncio.Future[None] = loop.create_future()
        self.open = False
        self.pong_due = False  # a PINGREQ is out and its PINGRESP has not come back
        self.paused = False  # not reading: the gateway holds as many messages as it allows itself
        # PUBLISHes go to the handler only once the subscription is granted as asked: before that (a kept
        # session delivers at once after the CONNACK) they wait in the backlog, and a refusal drops them
        self.delivering = False
        self._backlog: list[tuple[int, bytes]] = []  # packets read before a pause, handled after it
        self.keepalive_s = keepalive_s  # ours, until the broker's CONNACK says otherwise
        self.server_receive_maximum = 65535  # how many of our own QoS 1 publishes may be unacknowledged
        self.maximum_qos = 2  # the broker's CONNACK Maximum QoS (absent: 2)
        self.maximum_packet_size = wire.MAX_REMAINING_LENGTH  # the broker's CONNACK Maximum Packet Size
        self.session_present = False  # the broker's CONNACK said it still held our session
        self.outgoing: set[int] = set()  # packet ids of our QoS 1 publishes not yet acknowledged
        # every QoS 1 message received and not yet acknowledged, in receive order; the front ones whose
        # token is ready go out (MQTT 5, 4.6: PUBACKs in the order the PUBLISHes came)
        self.unacked: deque[Ack] = deque()
        self._next_id = 0

    # --- asyncio.Protocol ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.open = True

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self.unacked.clear()  # never sent: the broker delivers these again in the next session
        self._backlog = []
        if not self.lost.done():
            self.lost.set_result(None)
        waiters: list[asyncio.Future[Any]] = [self.connack, *self.subacks.values()]
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(ConnectionError("the connection to the broker closed"))

    def data_received(self, data: bytes) -> None:
        try:
            packets = self.reader.feed(data)
        except wire.ProtocolError as error:
            self._violation(error)
            return
        if self._backlog and self.delivering and not self.paused:
            packets, self._backlog = self._backlog + packets, []
        self._handle(packets)

    def _handle(self, packets: list[tuple[int, bytes]]) -> None:
        try:
            for index, (first, body) in enumerate(packets):
                if first >> 4 == wire.PUBLISH:
                    if self.paused:  # the rest waits for ``pause(False)``
                        self._backlog += packets[index:]
                        return
                    if not self.delivering:
                        # before the SUBACK is checked: PUBLISHes wait for ``deliver``; the SUBACK itself (and
                        # any other control packet) must still be read
                        self._backlog.append((first, body))
                        continue
                    self._publish(first, body)
                else:
                    self._control(first >> 4, body)
        except wire.ProtocolError as error:
            self._violation(error)

    def _violation(self, error: wire.ProtocolError) -> None:
        log.error("the broker sent something that is not MQTT 5 (%s): closing the connection", error)
        self.close()

    def eof_received(self) -> bool | None:
        return None  # close the transport

    # --- incoming packets ---------------------------------------------------------------------------

    def _publish(self, first: int, body: bytes) -> None:
        message = wire.parse_publish(first, body)
        if message.qos == 2:
            raise wire.ProtocolError("QoS 2 PUBLISH on a QoS 1 subscription")
        ack = None
        if message.packet_id is not None:
            ack = Ack(self, message.packet_id)
            self.unacked.append(ack)
        try:
            self.handler(message.topic, message.payload, message.retain, ack)
        except Exception:
            # the handler's own bug (the gateway's handler contains its own): this message is not acknowledged,
            # and as PUBACKs go in receive order it would hold back every later one. Drop the connection:
            # it and the messages after it come again in the next session.
            log.exception("the handler failed on a message on %s: dropping the connection, so that the broker "
                          "delivers it again", message.topic)
            self.close()

    def _control(self, kind: int, body: bytes) -> None:
        if kind == wire.PUBACK:
            packet_id, _reason = wire.parse_puback(body)
            self.outgoing.discard(packet_id)
        elif kind == wire.PINGRESP:
            self.pong_due = False
        elif kind == wire.CONNACK:
            connack = wire.parse_connack(body)
            self.server_receive_maximum = int(connack.properties.get("receive_maximum", 65535))
            self.maximum_qos = int(connack.properties.get("maximum_qos", 2))
            self.maximum_packet_size = int(connack.properties.get("maximum_packet_size", wire.MAX_REMAINING_LENGTH))
            if not self.connack.done():
                self.connack.set_result(connack)
        elif kind in (wire.SUBACK, wire.UNSUBACK):
            packet_id, codes, _ = wire.parse_suback(body) if kind == wire.SUBACK else wire.parse_unsuback(body)
            waiter = self.subacks.pop(packet_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(codes)
        elif kind == wire.DISCONNECT:
            reason, properties = wire.parse_disconnect(body)
            log.warning("the broker closed the session: %s%s", wire.reason_text(reason),
                        f" ({properties['reason_string']})" if "reason_string" in properties else "")
            self.close()
        else:
            raise wire.ProtocolError(f"unexpected packet type {kind}")

    # --- outgoing -----------------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        if self.open and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def packet_id(self) -> int:
        """A packet identifier not in use by our own unacknowledged publishes (1..65535)."""
        for _ in range(65535):
            self._next_id = self._next_id % 65535 + 1
            if self._next_id not in self.outgoing and self._next_id not in self.subacks:
                return self._next_id
        raise RuntimeError("no free packet identifier")

    def pause(self, paused: bool) -> None:
        if paused != self.paused and self.open and self.transport is not None and not self.transport.is_closing():
            self.paused = paused
            if paused:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()
                if self._backlog:
                    asyncio.get_running_loop().call_soon(self._resume_backlog)

    def deliver(self) -> None:
        """The subscription is granted as asked: hand the PUBLISHes to the handler from now on."""
        self.delivering = True
        if self._backlog:
            asyncio.get_running_loop().call_soon(self._resume_backlog)

    def _resume_backlog(self) -> None:
        if self._backlog and not self.paused and self.delivering and self.open:
            packets, self._backlog = self._backlog, []
            self._handle(packets)

    def send_acks_due(self) -> None:
        """Send, in one write, the PUBACKs at the front of the receive order whose tokens are ready."""
        unacked = self.unacked
        if not unacked or not unacked[0].ready or not self.open:
            return
        packet_ids = []
        popleft = unacked.popleft
        while unacked and unacked[0].ready:
            packet_ids.append(popleft().packet_id)
        self.send(wire.puback_packets(packet_ids))

    def close(self) -> None:
        self.open = False
        if self.transport is not None:
            self.transport.close()


class Ack:
    """What the gateway hands back to acknowledge one QoS 1 message. ``ready``: the gateway has
    acknowledged it; its PUBACK leaves once every message received before it on its connection is ready."""

    __slots__ = ("connection", "packet_id", "ready")

    def __init__(self, connection: Connection, packet_id: int) -> None:
        self.connection = connection
        self.packet_id = packet_id
        self.ready = False


class MqttSource:
    def __init__(self, settings: GatewaySettings, filters: list[str], handler: Handler,
                 expect_session: bool = False, on_connect: Callable[[bool], None] | None = None) -> None:
        self.settings = settings
        self.filters = filters
        self.handler = handler
        self.connection: Connection | None = None
        self.connected = False
        self.connects = 0
        self.refusal: str | None = None  # why the broker last refused to connect or subscribe, for /healthz
        # True once the broker must hold a session for us: after our first connect, or from the start when
        # a previous run left a marker saying it had one (see Gateway). A CONNACK without one then is a loss.
        self.expect_session = expect_session
        self.on_connect = on_connect  # called with session_present after each successful connect
        self.sessions_lost = 0
        self.session_lost_at: float | None = None  # Unix time of the last loss
        self.lost_at: float | None = None  # monotonic time the last connection was lost
        self.notices_too_large = 0  # notices not sent: larger than the broker's maximum packet size
        self._acks_soon: list[Ack] = []
        self._stop = asyncio.Event()

    def _ssl(self) -> ssl.SSLContext | None:
        if not self.settings.mqtt_tls:
            return None
        ca = self.settings.mqtt_ca_file
        return ssl.create_default_context(cafile=str(ca) if ca else None)

    async def _connect(self) -> Connection:
        s = self.settings
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(lambda: Connection(self.handler, s.gateway_mqtt_keepalive_s),
                                                     s.mqtt_host, s.mqtt_port, ssl=self._ssl())
        try:
            password = s.mqtt_password.get_secret_value() if s.mqtt_password else None
            connection.send(wire.connect_packet(
                s.client_id, keepalive_s=s.gateway_mqtt_keepalive_s, clean_start=False,
                session_expiry_s=SESSION_NEVER_EXPIRES, receive_maximum=s.gateway_max_inflight,
                username=s.mqtt_username or None, password=password, maximum_packet_size=MAX_PACKET_BYTES))
            connack = await connection.connack
            connection.session_present = connack.session_present
            # MQTT 5: a broker may set the keep-alive itself (Server Keep Alive), and we must use its value
            connection.keepalive_s = int(connack.properties.get("server_keep_alive", connection.keepalive_s))
            if connack.reason != 0:
                detail = connack.properties.get("reason_string")
                raise MqttRefused(f"the broker refused the connection: {wire.reason_text(connack.reason)}"
                                  + (f" ({detail})" if detail else ""))
            if connection.maximum_qos < SUBSCRIBE_QOS:
                raise MqttRefused(
                    f"the broker's maximum QoS is {connection.maximum_qos} (CONNACK Maximum QoS): it cannot deliver "
                    "readings at least once, so the gateway could lose them without anyone knowing; allow QoS 1 on "
                    "the broker (Mosquitto: remove max_qos from the listener, or set it to 1 or 2)")
            codes = await self._request(connection, wire.subscribe_packet, self.filters, SUBACK_TIMEOUT_S, "SUBACK")
            refused = [f"{f}: {wire.reason_text(code)}" for f, code in zip(self.filters, codes, strict=True)
                       if code >= 0x80]
            if refused:
                raise MqttRefused("the broker refused the subscription " + "; ".join(refused))
            downgraded = [f for f, code in zip(self.filters, codes, strict=True) if code < SUBSCRIBE_QOS]
            if downgraded:
                await self._take_back(connection, downgraded)
                raise MqttRefused(
                    f"the broker granted only QoS 0 on {', '.join(downgraded)} where the gateway asked for QoS "
                    f"{SUBSCRIBE_QOS}: at QoS 0 a reading lost on the way is lost for good, so the gateway does not "
                    "take it (a broker's ACL or plugin, or a max_qos setting, downgraded the subscription)")
        except BaseException:
            connection.close()
            raise
        return connection

    @staticmethod
    async def _request(connection: Connection, build: Callable[[int, list[str]], bytes], filters: list[str],
                       timeout_s: float, answer: str) -> list[int]:
        """Send a SUBSCRIBE or UNSUBSCRIBE; the reason codes of its answer, one per filter."""
        packet_id = connection.packet_id()
        waiter: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        connection.subacks[packet_id] = waiter
        connection.send(build(packet_id, filters))
        try:
            codes = await asyncio.wait_for(waiter, timeout_s)
        finally:
            connection.subacks.pop(packet_id, None)
        if len(codes) != len(filters):
            raise wire.ProtocolError(f"{answer} with {len(codes)} reason codes for {len(filters)} topic filters")
        return codes

    async def _take_back(self, connection: Connection, filters: list[str]) -> None:
        """Unsubscribe ``filters``: the session must not keep a QoS 0 subscription, or the broker would go on
        queueing (and, at the next connect, deliver) messages of it at QoS 0."""
        try:
            codes = await self._request(connection, wire.unsubscribe_packet, filters, UNSUBACK_TIMEOUT_S, "UNSUBACK")
        except (TimeoutError, ConnectionError) as error:
            log.warning("could not take back the QoS 0 subscription to %s (%r): the broker's session may keep it "
                        "until the next connect", ", ".join(filters), error)
            return
        failed = [f"{f}: {wire.reason_text(code)}" for f, code in zip(filters, codes, strict=True) if code >= 0x80]
        if failed:
            log.warning("the broker would not take back the QoS 0 subscription: %s", "; ".join(failed))

    async def run(self) -> None:
        """Connect, subscribe, keep the connection alive until it drops, and again, until ``stop``."""
        attempt = 0
        s = self.settings
        while not self._stop.is_set():
            try:
                connection = await asyncio.wait_for(self._connect(), CONNECT_TIMEOUT_S)
            except (OSError, TimeoutError, ConnectionError, MqttRefused, wire.ProtocolError, ssl.SSLError) as error:
                delay = backoff(attempt, 0.5, s.gateway_reconnect_max_s)
                attempt += 1
                refused = isinstance(error, MqttRefused)
                self.refusal = str(error) if refused else None
                # a refusal needs a person (a password, an ACL, the broker's QoS); a broker not up yet may not
                log.log(logging.ERROR if refused else logging.WARNING,
                        "cannot connect to MQTT at %s:%s (%s); trying again in %.1f s", s.mqtt_host, s.mqtt_port,
                        error if refused else repr(error), delay)
                await self._sleep_unless_stopped(delay)
                continue
            attempt = 0
            self.refusal = None
            self.connection = connection
            self.connects += 1
            self.connected = True
            log.info("connected to MQTT at %s:%s as %s (%s); subscribed to %s", s.mqtt_host, s.mqtt_port,
                     s.client_id, "the broker kept our session" if connection.session_present else "a new session",
                     ", ".join(self.filters))
            self._session(connection.session_present)
            connection.deliver()
            await self._keep_alive(connection)
            self.connected = False
            self.lost_at = time.monotonic()  # what the broker queues from now on arrives in one rush at the reconnect
            if self._stop.is_set():
                return
            log.warning("lost the MQTT connection; reconnecting")
            await self._sleep_unless_stopped(backoff(0, 0.2, 1.0))

    def _session(self, present: bool) -> None:
        if not present and self.expect_session:
            self.sessions_lost += 1
            self.session_lost_at = time.time()
            log.error("THE BROKER LOST THE GATEWAY'S SESSION: it answered client id %s with no session "
                      "(CONNACK session present = 0), though it held one. Messages queued for the gateway while it "
                      "was away, some possibly already acknowledged to kits, may be lost; only kits that still "
                      "hold them can send them again. Causes: a broker restarted without its persistence file, "
                      "the session expired (persistent_client_expiration), or another client connected with "
                      "this client id and a clean start. Lost sessions so far: %d", self.settings.client_id,
                      self.sessions_lost)
        self.expect_session = True
        if self.on_connect is not None:
            self.on_connect(present)

    async def _keep_alive(self, connection: Connection) -> None:
        """PINGREQ every half keep-alive; a PINGRESP missing by the next one means the link is dead
        (a broker that hangs, or a network path that silently drops, leaves the TCP connection open)."""
        stop: asyncio.Future[Any] = asyncio.ensure_future(self._stop.wait())
        ends: set[asyncio.Future[Any]] = {stop, connection.lost}
        try:
            while connection.open:
                # FIRST_COMPLETED: a broker that closes the connection (a takeover, a restart) is noticed at
                # once, not at the next keep-alive check
                done, _ = await asyncio.wait(ends, timeout=max(connection.keepalive_s, 1) / 2,
                                             return_when=asyncio.FIRST_COMPLETED)
                if done:
                    return
                if connection.pong_due and not connection.paused:  # paused, we cannot read its PINGRESP
                    log.warning("no answer from the broker for %.0f s: dropping the connection",
                                connection.keepalive_s / 2)
                    connection.close()
                    return
                connection.pong_due = True
                connection.send(wire.PINGREQ_PACKET)
        finally:
            stop.cancel()

    async def _sleep_unless_stopped(self, delay: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), delay)
        except TimeoutError:
            pass

    # --- used by the gateway ------------------------------------------------------------------------

    @staticmethod
    def acknowledge(acks: list[Ack]) -> None:
        """Acknowledge ``acks``: each PUBACK leaves once all the messages received before it on its connection
        are acknowledged too, in receive order, one write per connection. Those of a closed connection are
        never sent (the broker sends those messages again)."""
        if not acks:
            return
        connection = acks[0].connection
        for ack in acks:
            ack.ready = True
        if all(ack.connection is connection for ack in acks):
            connection.send_acks_due()
            return
        for other in {id(ack.connection): ack.connection for ack in acks}.values():
            other.send_acks_due()

    def acknowledge_soon(self, ack: Ack) -> None:
        """Acknowledge at the end of this event-loop turn, in one write with the others of the turn
        (for messages with nothing to wait for, which come in bursts, such as copies already stored)."""
        if not self._acks_soon:
            asyncio.get_running_loop().call_soon(self._send_acks_soon)
        self._acks_soon.append(ack)

    def _send_acks_soon(self) -> None:
        acks, self._acks_soon = self._acks_soon, []
        self.acknowledge(acks)

    def hold(self, paused: bool) -> None:
        """Stop (or go on) reading from the broker. The gateway's own cap on the messages it holds:
        Mosquitto 2.0.11 sends past the client's receive maximum once acknowledgements flow
        (eclipse-mosquitto/mosquitto#2301), so the receive maximum alone does not bound memory."""
        if self.connection is not None:
            self.connection.pause(paused)

    def publish(self, topic: str, payload: bytes) -> None:
        """Best effort (a rejection notice): QoS 1 while the broker has room for it (and its maximum QoS
        allows it), else QoS 0; skipped while not connected, or if it is larger than the broker takes."""
        connection = self.connection
        if connection is None or not connection.open or not self.connected:
            return
        qos = 1 if connection.maximum_qos >= 1 and len(connection.outgoing) < connection.server_receive_maximum else 0
        packet_id = connection.packet_id() if qos else None
        packet = wire.publish_packet(topic, payload, qos=qos, packet_id=packet_id)
        if len(packet) > connection.maximum_packet_size:
            # the broker would disconnect us for it, before the message's own PUBACK
            self.notices_too_large += 1
            log.warning("a notice of %d bytes to %s is not sent: the broker takes packets of at most %d bytes "
                        "(notices too large so far: %d)", len(packet), topic, connection.maximum_packet_size,
                        self.notices_too_large)
            return
        if packet_id is not None:
            connection.outgoing.add(packet_id)
        connection.send(packet)

    def stop(self) -> None:
        self._stop.set()

    async def close(self) -> None:
        """Say goodbye (the session stays) and close; what is written before this goes out first."""
        self.stop()
        connection = self.connection
        self.connected = False
        if connection is not None and connection.open:
            connection.send(wire.DISCONNECT_PACKET)
            connection.close()  # asyncio writes out the buffer, then closes
            try:
                await asyncio.wait_for(asyncio.shield(connection.lost), 2)
            except (TimeoutError, ConnectionError):
                pass

