"""A small synchronous MQTT client (paho-mqtt) for the security tests: connect, publish, collect."""

from __future__ import annotations

import queue
import ssl
import threading
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

WAIT_S = 10.0


class Refused(Exception):
    """The broker refused the connection (CONNACK with an error code)."""


class Client:
    def __init__(self, port: int, username: str | None = None, password: str | None = None, *,
                 ca_certs: Path | None = None, client_id: str | None = None, mqtt5: bool = False) -> None:
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._connected = threading.Event()
        self._subscribed: queue.Queue[list[Any]] = queue.Queue()
        self.connack: Any = None
        self.connack_properties: Any = None
        self.disconnected = threading.Event()  # set when the broker drops us (not when we close)
        self._closing = False
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or uuid.uuid4().hex,
                                  protocol=mqtt.MQTTv5 if mqtt5 else mqtt.MQTTv311)
        self.client.reconnect_delay_set(60, 60)  # a dropped client stays dropped while a test looks
        self.client.on_disconnect = self._on_disconnect
        if username is not None:
            self.client.username_pw_set(username, password)
        if ca_certs is not None:
            self.client.tls_set(ca_certs=str(ca_certs), cert_reqs=ssl.CERT_REQUIRED)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda c, u, msg: self.messages.put((msg.topic, msg.payload))
        self.client.on_subscribe = lambda c, u, mid, codes, props: self._subscribed.put(list(codes))
        self.port = port

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self.connack = reason
        self.connack_properties = props
        self._connected.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if not self._closing:
            self.disconnected.set()

    def connect(self) -> Client:
        self.client.connect("127.0.0.1", self.port, keepalive=30)
        self.client.loop_start()
        if not self._connected.wait(WAIT_S):
            self.close()
            raise TimeoutError("no CONNACK")
        if self.connack.is_failure:
            self.close()
            raise Refused(str(self.connack))
        return self

    def subscribe(self, *filters: str) -> list[Any]:
        self.client.subscribe([(f, 1) for f in filters])
        return self._subscribed.get(timeout=WAIT_S)

    def publish(self, topic: str, payload: bytes | str, *, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(WAIT_S)

    def next_message(self, timeout: float = WAIT_S) -> tuple[str, bytes]:
        return self.messages.get(timeout=timeout)

    def drain(self) -> list[tuple[str, bytes]]:
        out = []
        while not self.messages.empty():
            out.append(self.messages.get_nowait())
        return out

    def close(self) -> None:
        self._closing = True
        self.client.disconnect()
        self.client.loop_stop()


def refused(port: int, username: str | None, password: str | None, **options: Any) -> bool:
    try:
        Client(port, username, password, **options).connect().close()
    except Refused:
        return True
    return False
