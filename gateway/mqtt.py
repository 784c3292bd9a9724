"""The MQTT shell: one reconnect loop around gmqtt, a persistent session and manual acknowledgements.

gmqtt runs our async handler as a task per message and, with ``optimistic_acknowledgement=False``,
sends the PUBACK only when that task returns: the handler returns once the message's points are
durable. gmqtt's own reconnect logic is switched off; this loop owns reconnecting (capped,
randomised backoff) and subscribes again on every connect. ``receive_maximum`` (MQTT 5) caps how
many unacknowledged messages the broker sends us.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import gmqtt
from gmqtt.mqtt.constants import MQTTv50

from gateway.core import backoff
from gateway.settings import GatewaySettings

log = logging.getLogger("lauks.gateway.mqtt")

Handler = Callable[[str, bytes, bool], Awaitable[None]]
SESSION_NEVER_EXPIRES = 0xFFFFFFFF
_NO_RECONNECTS = -2  # gmqtt reconnects while failed_connections <= reconnect_retries; -1 means forever


class CoalescingTransport:
    """Gathers the writes of one event-loop turn into one ``send``: a burst of PUBACKs (one per
    message, 4 bytes each) costs one system call instead of hundreds. Anything else is delegated."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self._pending: list[bytes] = []
        self._loop = asyncio.get_running_loop()

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))

    def _flush(self) -> None:
        data, self._pending = b"".join(self._pending), []
        if data and not self._transport.is_closing():
            self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def coalesce_writes(client: gmqtt.Client) -> bool:
    """Wrap the connection's transport, which gmqtt keeps in ``_connection._transport`` and in
    ``_connection._protocol._transport``; False (and nothing changed) if gmqtt's insides differ."""
    connection = getattr(client, "_connection", None)
    protocol = getattr(connection, "_protocol", None)
    transport = getattr(protocol, "_transport", None)
    if transport is None or isinstance(transport, CoalescingTransport) or \
            getattr(connection, "_transport", None) is not transport:
        return False
    wrapped = CoalescingTransport(transport)
    connection._transport = wrapped  # type: ignore[union-attr]
    protocol._transport = wrapped  # type: ignore[union-attr]
    return True


class MqttSource:
    def __init__(self, settings: GatewaySettings, filters: list[str], handler: Handler) -> None:
        self.settings = settings
        self.filters = filters
        self.handler = handler
        self.client: gmqtt.Client | None = None
        self.connected = False
        self.connects = 0
        self._stop = asyncio.Event()
        self._lost = asyncio.Event()

    def _make_client(self) -> gmqtt.Client:
        s = self.settings
        client = gmqtt.Client(s.client_id, clean_session=False, optimistic_acknowledgement=False,
                              session_expiry_interval=SESSION_NEVER_EXPIRES,
                              receive_maximum=s.gateway_max_inflight)
        client.set_config({"reconnect_retries": _NO_RECONNECTS})
        if s.mqtt_username:
            client.set_auth_credentials(s.mqtt_username,
                                        s.mqtt_password.get_secret_value() if s.mqtt_password else None)
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        return client

    async def _on_message(self, client: Any, topic: str, payload: bytes, qos: int, properties: dict[str, Any]) -> int:
        await self.handler(topic, payload, bool(properties.get("retain")))
        return 0  # PUBACK reason code: success

    def _on_disconnect(self, client: Any, packet: Any, exc: Any = None) -> None:
        if client is self.client:
            self.connected = False
            self._lost.set()

    def _ssl(self) -> ssl.SSLContext | bool:
        if not self.settings.mqtt_tls:
            return False
        context = ssl.create_default_context(
            cafile=str(self.settings.mqtt_ca_file) if self.settings.mqtt_ca_file else None)
        return context

    async def run(self) -> None:
        """Connect, subscribe, wait for the connection to drop, and again, until ``stop``."""
        attempt = 0
        s = self.settings
        while not self._stop.is_set():
            client = self._make_client()
            self.client = client
            self._lost.clear()
            try:
                await asyncio.wait_for(client.connect(s.mqtt_host, s.mqtt_port, ssl=self._ssl(), keepalive=30,
                                                      version=MQTTv50), timeout=15)
            except Exception as error:  # refused, unreachable, bad credentials: all retried
                delay = backoff(attempt, 0.5, s.gateway_reconnect_max_s)
                attempt += 1
                log.warning("cannot connect to MQTT at %s:%s (%r); trying again in %.1f s",
                            s.mqtt_host, s.mqtt_port, error, delay)
                await self._quietly_close(client)
                await self._sleep_unless_stopped(delay)
                continue
            attempt = 0
            coalesce_writes(client)
            self.connects += 1
            self.connected = True
            client.subscribe([gmqtt.Subscription(f, qos=1) for f in self.filters])
            log.info("connected to MQTT at %s:%s as %s; subscribed to %s", s.mqtt_host, s.mqtt_port,
                     s.client_id, ", ".join(self.filters))
            stop_task = asyncio.ensure_future(self._stop.wait())
            lost_task = asyncio.ensure_future(self._lost.wait())
            await asyncio.wait({stop_task, lost_task}, return_when=asyncio.FIRST_COMPLETED)
            stop_task.cancel()
            lost_task.cancel()
            if self._stop.is_set():
                return  # the service disconnects after flushing, so the last PUBACKs go out
            self.connected = False
            log.warning("lost the MQTT connection; reconnecting")
            await self._quietly_close(client)
            await self._sleep_unless_stopped(backoff(0, 0.2, 1.0))

    async def _sleep_unless_stopped(self, delay: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), delay)
        except TimeoutError:
            pass

    @staticmethod
    async def _quietly_close(client: gmqtt.Client) -> None:
        try:
            await asyncio.wait_for(client.disconnect(), 2)
        except Exception:  # already gone
            log.debug("closing an MQTT client that was already closed", exc_info=True)

    def publish(self, topic: str, payload: bytes) -> None:
        """Best effort (a rejection notice): sent at QoS 1 while connected, skipped when not."""
        if self.client is not None and self.connected:
            try:
                self.client.publish(topic, payload, qos=1)
            except Exception:
                log.debug("could not publish to %s", topic, exc_info=True)

    def stop(self) -> None:
        self._stop.set()

    async def close(self) -> None:
        self.stop()
        if self.client is not None:
            self.connected = False
            await self._quietly_close(self.client)
