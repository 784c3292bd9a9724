"""A subscriber to everything under a topic root, kept for a test to look at: what simulated kits published."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from lauks.topics import Topics


class Inbox:
    def __init__(self, port: int, topics: Topics, username: str | None = None, password: str | None = None) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, bytes(m.payload)))
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"{topics.base}/#", 1)
        self.client.loop_start()

    def of(self, kind: str, kit: str | None = None) -> list[dict[str, Any]]:
        """The payloads of one kind of message (readings, status...), of every kit or of one; an empty (cleared
        retained) one left out."""
        return [orjson.loads(p) for t, p in list(self.messages)
                if t.endswith("/" + kind) and (kit is None or t.split("/")[3] == kit) and p]

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 20) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.1)
        return False

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
