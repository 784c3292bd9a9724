"""The test publisher: a paho-mqtt v2 client that publishes at QoS 1 as a kit does, keeps every message
until the broker acknowledges it (PUBACK) and counts the acknowledgements; it can pace what it sends,
and subscribe to see what arrives. Tests and benchmarks that publish through paho use it. Where Python
would be the bottleneck (a flood, the broker's ceiling) the C ``mosquitto_pub -l`` publishes instead."""

from __future__ import annotations

import queue
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from lauks.services import find_program

WAIT_S = 10.0


class Refused(Exception):
    """The broker refused the connection (CONNACK with an error code)."""


class Publisher:
    """One MQTT connection to a broker on loopback, publishing at QoS 1.

    ``publish`` hands a message to paho and returns; paho keeps it (at most ``max_inflight`` unacknowledged,
    the rest queued without bound) and sends it again after a reconnect, so ``wait_acked`` is how a test
    knows the broker has taken everything. With ``reconnect=False`` a dropped connection stays dropped
    (``disconnected`` is set) while a test looks at why."""

    def __init__(self, port: int, username: str | None = None, password: str | None = None, *,
                 client_id: str | None = None, ca_certs: Path | None = None, mqtt5: bool = False,
                 clean_session: bool = True, max_inflight: int = 1000, reconnect: bool = True,
                 start: bool = True) -> None:
        self.port = port
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"pub-{uuid.uuid4().hex}",
                                  protocol=paho.MQTTv5 if mqtt5 else paho.MQTTv311,
                                  clean_session=None if mqtt5 else clean_session)
        self.client.max_inflight_messages_set(max_inflight)
        self.client.max_queued_messages_set(0)  # 0: no limit; nothing is dropped
        if not reconnect:
            self.client.reconnect_delay_set(60, 60)
        if username is not None:
            self.client.username_pw_set(username, password)
        if ca_certs is not None:
            self.client.tls_set(ca_certs=str(ca_certs), cert_reqs=ssl.CERT_REQUIRED)
        self.sent = 0
        self.acked = 0
        self.connack: Any = None
        self.connack_properties: Any = None
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.disconnected = threading.Event()  # set when the broker drops us (not when we close)
        self._connected = threading.Event()
        self._subscribed: queue.Queue[list[Any]] = queue.Queue()
        self._closing = False
        self._lock = threading.Lock()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = lambda _c, _u, message: self.messages.put((message.topic, bytes(message.payload)))
        self.client.on_subscribe = lambda _c, _u, _mid, codes, _props: self._subscribed.put(list(codes))
        if start:
            self.start()

    # --- the connection ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Open the connection and run paho's network thread (the CONNACK comes in the background)."""
        self.client.connect("127.0.0.1", self.port, keepalive=30)
        self.client.loop_start()
        return self

    def wait_connected(self, timeout_s: float = WAIT_S) -> Self:
        """Wait for the CONNACK; Refused (and closed) if it is a refusal."""
        if not self._connected.wait(timeout_s):
            self.close()
            raise TimeoutError(f"no CONNACK from the broker on port {self.port} within {timeout_s:g} s")
        if self.connack.is_failure:
            self.close()
            raise Refused(str(self.connack))
        return self

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self.connack = reason
        self.connack_properties = properties
        self._connected.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if not self._closing:
            self.disconnected.set()

    def close(self) -> None:
        self._closing = True
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    # --- publishing ---------------------------------------------------------------------------------

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        with self._lock:
            self.acked += 1

    def publish(self, topic: str, payload: bytes | str, retain: bool = False) -> paho.MQTTMessageInfo:
        """Hand one QoS 1 message to paho; it is sent (and sent again after a reconnect) until acknowledged."""
        self.sent += 1
        return self.client.publish(topic, payload, qos=1, retain=retain)

    def publish_and_wait(self, topic: str, payload: bytes | str, retain: bool = False,
                         timeout_s: float = WAIT_S) -> None:
        """Publish and wait for the broker's PUBACK, so that what the test does next comes after it."""
        info = Publisher.publish(self, topic, payload, retain)
        info.wait_for_publish(timeout_s)
        if not info.is_published():
            raise TimeoutError(f"the broker did not acknowledge a message on {topic} within {timeout_s:g} s")

    def publish_all(self, items: Iterable[tuple[str, bytes]], rate_per_s: float | None = None,
                    between: Callable[[int], None] | None = None, stop: threading.Event | None = None) -> int:
        """Publish every (topic, payload) of ``items``, the n-th at n / ``rate_per_s`` seconds after the first
        if a rate is given (``items`` may be a generator: each item is made when it is due, so a sample time
        taken there is its publish time); ``between(sent)`` after each; until ``stop`` is set. How many."""
        sent = 0
        started = time.monotonic()
        for topic, payload in items:
            Publisher.publish(self, topic, payload)
            sent += 1
            if between is not None:
                between(sent)
            if stop is not None and stop.is_set():
                break
            if rate_per_s:
                ahead = sent / rate_per_s - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
        return sent

    def wait_acked(self, count: int, timeout_s: float = 30.0, check: bool = True) -> int:
        """Wait until the broker has acknowledged ``count`` messages; how many it has. With ``check``,
        TimeoutError if they are fewer when ``timeout_s`` has passed."""
        deadline = time.monotonic() + timeout_s
        while self.acked < count and time.monotonic() < deadline:
            time.sleep(0.01)
        if check and self.acked < count:
            raise TimeoutError(f"the broker acknowledged {self.acked} of {count} messages within {timeout_s:g} s")
        return self.acked

    # --- subscribing --------------------------------------------------------------------------------

    def subscribe(self, *filters: str, timeout_s: float = WAIT_S) -> list[Any]:
        """Subscribe at QoS 1 and wait for the SUBACK; its reason codes, one per filter."""
        self.client.subscribe([(f, 1) for f in filters])
        return self._subscribed.get(timeout=timeout_s)

    def next_message(self, timeout: float = WAIT_S) -> tuple[str, bytes]:
        return self.messages.get(timeout=timeout)

    def drain(self) -> list[tuple[str, bytes]]:
        """Every message received so far, and none of them again."""
        out = []
        while True:
            try:
                out.append(self.messages.get_nowait())
            except queue.Empty:
                return out


# --- the C client, for floods and the broker's ceiling ----------------------------------------------


def start_c_publisher(port: int, topic: str, lines: Path) -> subprocess.Popen[bytes]:
    """``mosquitto_pub -l -q 1``: every line of the file ``lines`` one message on ``topic``, as fast as the
    broker acknowledges them (up to 1,000 in flight); wait on the process for the end."""
    with lines.open("rb") as stdin:
        return subprocess.Popen([find_program("mosquitto_pub"), "-h", "127.0.0.1", "-p", str(port), "-q", "1",
                                 "-M", "1000", "-t", topic, "-l"], stdin=stdin)


def publish_with_c_clients(port: int, per_kit: list[list[str]], directory: Path, topic_root: str = "lauks",
                           site: str = "bench") -> float:
    """Publish every kit's lines (kit i on ``<root>/v1/<site>/k<i>/readings``) with a C publisher of its own,
    all at once; the seconds until all of them exited."""
    files = []
    for kit, lines in enumerate(per_kit):
        path = directory / f"kit{kit}.jsonl"
        path.write_text("\n".join(lines) + "\n")
        files.append(path)
    started = time.monotonic()
    processes = [start_c_publisher(port, f"{topic_root}/v1/{site}/k{kit}/readings", path)
                 for kit, path in enumerate(files)]
    for process in processes:
        process.wait(600)
    return time.monotonic() - started
