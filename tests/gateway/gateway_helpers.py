"""Helpers for the gateway's tests: their settings, a gateway running in this process, messages, counts.
(A gateway as a child process and the test publisher are harness.gateway's and harness.publisher's.)"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from gateway.service import Gateway
from gateway.settings import GatewaySettings
from lauks.influx import InfluxClient
from lauks.topics import Topics

T0 = 1_780_000_000  # a fixed time in 2026 for the samples' 't'


def settings(state_dir: Path, mqtt_port: int, influx_url: str, database: str, topics: Topics,
             **overrides: Any) -> GatewaySettings:
    options: dict[str, Any] = dict(
        state_dir=state_dir, mqtt_port=mqtt_port, influx_url=influx_url, influx_database=database,
        topic_root=topics.root, gateway_http_port=0, gateway_instance="test", gateway_batch_ms=20,
        gateway_client_id=f"gw-{topics.root}", influx_timeout_s=2.0, gateway_stats_interval_s=1.0,
    )
    options.update(overrides)
    return GatewaySettings(**options)


@contextlib.asynccontextmanager
async def running(config: GatewaySettings, connect_timeout_s: float = 10.0,
                  clock: Callable[[], float] = time.time) -> AsyncIterator[Gateway]:
    """A gateway running in this event loop, connected to the broker; stopped (and flushed) after."""
    gateway = Gateway(config, clock)
    stop = asyncio.Event()
    task = asyncio.create_task(gateway.run(stop))
    deadline = time.monotonic() + connect_timeout_s
    while not gateway.source.connected:  # set once the SUBACK is in
        if task.done():
            task.result()
        assert time.monotonic() < deadline, "the gateway did not connect to the broker"
        await asyncio.sleep(0.02)
    try:
        yield gateway
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


def readings(kit: str, boot: int, seq: int) -> bytes:
    """A message with one 't' sample and one 'age' sample, both unique to (kit, boot, seq).

    The 'age' grows by 1000 s per message, so two different messages can never land on the same
    timestamp, while a copy of one message re-dated at a later receipt would show up as a new point.
    """
    return json.dumps({"v": 1, "kit": kit, "boot": boot, "seq": seq, "fw": "t1", "samples": [
        {"t": T0 + boot * 1_000_000 + seq, "temperature": round(10 + (seq % 100) / 10, 1)},
        {"age": 100_000 + seq * 1000, "humidity": 50.0},
    ]}).encode()


async def count(influx: InfluxClient, database: str, statement: str) -> int:
    rows = await influx.query_rows(statement, database=database)
    if not rows:
        return 0
    return int(next(v for k, v in rows[0].items() if k.startswith("count")))


async def wait_for_count(influx: InfluxClient, database: str, statement: str, expected: int,
                         timeout_s: float = 30.0) -> int:
    """Poll until the count reaches ``expected`` (or the time is up); the last count."""
    deadline = time.monotonic() + timeout_s
    found = -1
    while time.monotonic() < deadline:
        try:
            found = await count(influx, database, statement)
        except Exception:
            found = -1
        if found >= expected:
            await asyncio.sleep(0.3)  # anything beyond expected would show up now
            return await count(influx, database, statement)
        await asyncio.sleep(0.2)
    return found


async def until(predicate: Callable[[], bool], timeout_s: float, what: str = "") -> bool:
    """Poll ``predicate`` (state in another process or the gateway) until true or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True
