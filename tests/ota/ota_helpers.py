"""What the over-the-air tests share: releases built by lauks.fleet and served by the API over HTTP, offers published on
the real broker, kits that run from their own flash folders (firmware/sim/flashkit.py), and an inbox."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import uvicorn

from api.app import create_app
from api.settings import ApiSettings
from firmware.device_path import DEVICE_DIR
from firmware.kitconfig import kit_config
from firmware.sim.board import Faults
from firmware.sim.flashkit import FlashKit, install, wait_until
from firmware.sim.world import Clock
from harness.inbox import Inbox as BaseInbox
from lauks.contract import decode_status
from lauks.fleet import build_release, kit_update_key, offer_payload
from lauks.services import free_port
from lauks.topics import Topics

MASTER = bytes(range(32))
SITE = "ota"
SPEEDUP = 60.0


class Inbox(BaseInbox):
    """Everything published under the test's topic root, as it arrives, and the kits' update states."""

    def updates(self, kit: str) -> list[dict[str, Any]]:
        """The "update" object of each status the kit sent, in order (repeats dropped)."""
        out: list[dict[str, Any]] = []
        for status in self.of("status", kit):
            update = status.get("update")
            if update and (not out or out[-1] != update):
                out.append(update)
        return out

    def last_update(self, kit: str) -> dict[str, Any] | None:
        found = self.updates(kit)
        return found[-1] if found else None

    def statuses_hold_to_the_contract(self) -> int:
        """Every status sent is one the gateway takes (lauks.contract); how many there were."""
        count = 0
        for topic, payload in list(self.messages):
            if topic.endswith("/status") and payload:
                decode_status(payload)
                count += 1
        return count

    def fw_of_readings(self, kit: str) -> list[str]:
        return [m["fw"] for m in self.of("readings", kit)]


wait_for = wait_until  # the simulator's own: true once predicate() is, or its last answer at the timeout


def release(releases: Path, version: str, change: Callable[[Path], None] | None = None) -> Path:
    """A py-format release (the simulator is CPython) of firmware/device, changed first by ``change``."""
    source = releases.parent / f"source-{version}"
    shutil.copytree(DEVICE_DIR, source, ignore=shutil.ignore_patterns("__pycache__"))
    if change is not None:
        change(source)
    return build_release(source, releases, version, "py")


@contextmanager
def file_server(state_dir: Path) -> Iterator[str]:
    """The real API (api/routers/firmware.py serves ``state_dir``/releases) under uvicorn on a free loopback
    port; yields its base URL. Every simulated kit downloads from 127.0.0.1, so the per-address rate limit
    is raised (a real school's kits each have an address of their own)."""
    settings = ApiSettings(state_dir=state_dir, influx_url="http://127.0.0.1:9", influx_database="none",
                           api_rate_limit_per_minute=100_000, api_rate_burst=10_000)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        assert wait_for(lambda: server.started, 20), "the API did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def offer_bytes(kit: str, release_dir: Path, base_url: str) -> bytes:
    version = release_dir.name
    return offer_payload(release_dir, version, f"{base_url}/v1/firmware/{version}/", kit_update_key(MASTER, SITE, kit))


def offer(port: int, topics: Topics, kit: str, release_dir: Path, base_url: str) -> None:
    """Publish the retained offer of a release to one kit, as `lauks fleet update` does."""
    publish_offer(port, topics, kit, offer_bytes(kit, release_dir, base_url))


def publish_offer(port: int, topics: Topics, kit: str, payload: bytes) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        info = client.publish(f"{topics.base}/{SITE}/{kit}/update", payload, qos=1, retain=True)
        info.wait_for_publish(10)
        assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def kits(tmp: Path, port: int, topics: Topics, names: list[str], faults: dict[str, Faults] | None = None,
         clock: Clock | None = None) -> list[FlashKit]:
    """Kits flashed with today's firmware (and an update key), not started yet."""
    clock = clock or Clock(speedup=SPEEDUP, start_ago_s=6 * 3600)
    out = []
    for i, name in enumerate(names):
        cfg = kit_config(SITE, name, "weather", interval_s=10)
        cfg["update_key"] = kit_update_key(MASTER, SITE, name).hex()
        flash = tmp / "kits" / name
        install(flash, cfg)
        out.append(FlashKit(flash, cfg, ("127.0.0.1", port), clock, topics.root, seed=i,
                            faults=(faults or {}).get(name, Faults())))
    return out


@contextmanager
def running(kit_list: list[FlashKit]) -> Iterator[list[FlashKit]]:
    for kit in kit_list:
        kit.start()
    try:
        yield kit_list
    finally:
        for kit in kit_list:
            kit.stop()
        for kit in kit_list:
            assert kit.error is None, kit.error + "\n" + kit.log()[-3000:]
