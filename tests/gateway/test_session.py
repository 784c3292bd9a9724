"""The gateway's persistent MQTT session, against a real Mosquitto: a broker that closes the connection
is noticed at once, and a session the broker no longer holds (CONNACK session present = 0) is logged as
an error, counted in /metrics and shown in /healthz, since what the broker had queued is gone."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from gateway_helpers import running, settings, until

from gateway import mqttwire as wire
from gateway.service import Gateway
from harness.gateway import read_health, read_metrics
from lauks.services import Mosquitto
from lauks.topics import Topics

pytestmark = pytest.mark.services


async def healthz(gateway: Gateway) -> dict[str, Any]:
    """What the gateway's own /healthz answers (it runs on this event loop: ask from another thread)."""
    detail = await asyncio.to_thread(read_health, gateway.http_port)
    assert detail is not None, "the gateway's /healthz did not answer"
    return detail


async def metric(gateway: Gateway, name: str) -> float:
    return (await asyncio.to_thread(read_metrics, gateway.http_port))[name]


def forget_sessions(broker: Mosquitto) -> None:
    """Restart the broker without its persistence file: a broker that lost its state (a restart without
    persistence, a volume not mounted)."""
    broker.stop()
    (broker.state_dir / "mosquitto.db").unlink()
    broker.start()


def lost_session_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.ERROR and "LOST THE GATEWAY'S SESSION" in r.getMessage()]


async def test_a_broker_that_forgot_the_session_is_logged_counted_and_shown_in_healthz(
        tmp_path: Path, make_mosquitto: Callable[..., Mosquitto], influx_url: str, database: str, topics: Topics,
        caplog: pytest.LogCaptureFixture) -> None:
    broker = make_mosquitto()
    config = settings(tmp_path, broker.port, influx_url, database, topics, gateway_reconnect_max_s=0.3)
    async with running(config) as gateway:
        assert (await healthz(gateway))["sessions_lost"] == 0
        broker.stop()
        broker.start()  # with its persistence file: the session is still there
        assert await until(lambda: gateway.source.connects == 2 and gateway.source.connected, 10)
        assert gateway.source.sessions_lost == 0 and not lost_session_errors(caplog)

        started = time.monotonic()
        broker.stop()
        assert await until(lambda: not gateway.source.connected, 2), "a closed connection was not noticed"
        noticed_s = time.monotonic() - started
        (broker.state_dir / "mosquitto.db").unlink()
        broker.start()
        assert await until(lambda: gateway.source.connects == 3 and gateway.source.connected, 10)
        detail = await healthz(gateway)
        lost = await metric(gateway, "lauks_gateway_sessions_lost_total")
    assert noticed_s < 1.5  # the keep-alive (30 s) would have taken up to 15 s
    assert gateway.source.sessions_lost == 1 and lost == 1
    assert detail["sessions_lost"] == 1 and "session_lost_at" in detail
    assert any("may be lost" in str(w) for w in detail["warnings"]), detail
    assert detail["ok"] is True  # ingest works: the warning says what was lost, ok says what works now
    [error] = lost_session_errors(caplog)
    assert config.client_id in error and "may be lost" in error


async def test_a_gateway_started_again_after_its_broker_forgot_it_says_so(
        tmp_path: Path, make_mosquitto: Callable[..., Mosquitto], influx_url: str, database: str, topics: Topics,
        caplog: pytest.LogCaptureFixture) -> None:
    broker = make_mosquitto()
    config = settings(tmp_path, broker.port, influx_url, database, topics)
    async with running(config) as first:
        pass  # the first run ever: a new session is no loss
    assert first.source.sessions_lost == 0
    forget_sessions(broker)
    async with running(config) as second:
        pass
    assert second.source.sessions_lost == 1 and len(lost_session_errors(caplog)) == 1
    # a gateway with state of its own but no session marker for this broker and client id expects nothing
    other = settings(tmp_path / "other", broker.port, influx_url, database, topics,
                     gateway_client_id=f"other-{topics.root}")
    async with running(other) as fresh:
        pass
    assert fresh.source.sessions_lost == 0


def take_over(port: int, client_id: str) -> None:
    """Connect with the gateway's client id and a clean start, as an intruder would, and hang up."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as intruder:
        intruder.sendall(wire.connect_packet(client_id, keepalive_s=10, clean_start=True, session_expiry_s=0,
                                             receive_maximum=10))
        assert intruder.recv(64)[:1] == b"\x20"  # CONNACK


async def test_a_gateway_taken_over_notices_at_once_reconnects_and_reports_the_lost_session(
        tmp_path: Path, make_mosquitto: Callable[..., Mosquitto], influx_url: str, database: str,
        topics: Topics) -> None:
    # The brokers we ship bind client ids to usernames, so no kit can do this any more; an anonymous test
    # broker still lets anyone take any client id, which is what a takeover looks like to the gateway.
    broker = make_mosquitto()
    config = settings(tmp_path, broker.port, influx_url, database, topics, gateway_reconnect_max_s=0.3)
    async with running(config) as gateway:
        started = time.monotonic()
        await asyncio.to_thread(take_over, broker.port, config.client_id)
        assert await until(lambda: not gateway.source.connected, 5), "the takeover was not noticed"
        noticed_s = time.monotonic() - started
        assert await until(lambda: gateway.source.connected and gateway.source.connects == 2, 5)
        detail = await healthz(gateway)
    assert noticed_s < 1.5  # it took 7-30 s: the keep-alive noticed, not the closed connection
    assert gateway.source.sessions_lost == 1 and detail["sessions_lost"] == 1
