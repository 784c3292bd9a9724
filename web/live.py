"""Live readings for an open kit page: server-sent events at ``/w/live/kit/{site}/{kit}``.

Each stream asks InfluxDB about once a second for the kit's readings newer than the last one it sent, so a
reading is on the page within about a second or two of being stored. Streams are bounded: a few per address and
a cap for the server (a 429 beyond them), and each ends after ``LIFETIME_S``; the browser's EventSource then
reconnects by itself (``retry:``), sending ``Last-Event-ID`` so nothing is lost or sent twice. Comments every
``HEARTBEAT_S`` keep proxies from closing a quiet stream. Compression must not wrap this path (``/w/live/``):
a compressor buffers, and events would come in lumps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from api.deps import client_of
from api.errors import ApiError
from api.ratelimit import address_key
from lauks import influxql, schema
from lauks.catalog import QUANTITY_NAMES
from lauks.influx import InfluxError
from metastore import registry

POLL_S = 1.0
HEARTBEAT_S = 15.0
LIFETIME_S = 300.0
RETRY_MS = 2000
PER_ADDRESS = 32  # a class behind one school NAT (one address) watching their kits; the server has MAX_STREAMS
MAX_STREAMS = 200
CATCH_UP_S = 600  # how far back a reconnect (Last-Event-ID) or ?since= may reach
MAX_ROWS = 200

router = APIRouter(prefix="/w/live")


@dataclass
class Streams:
    """Open streams per address, and in all."""

    per_address: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.per_address.values())

    def open(self, key: str) -> bool:
        if self.total >= MAX_STREAMS or self.per_address.get(key, 0) >= PER_ADDRESS:
            return False
        self.per_address[key] = self.per_address.get(key, 0) + 1
        return True

    def close(self, key: str) -> None:
        left = self.per_address.get(key, 0) - 1
        if left > 0:
            self.per_address[key] = left
        else:
            self.per_address.pop(key, None)


def streams_of(request: Request) -> Streams:
    state = request.app.state
    if not hasattr(state, "live_streams"):
        state.live_streams = Streams()
    found: Streams = state.live_streams
    return found


def statement(site: str, kit: str, after_ms: int) -> str:
    fields = ", ".join(influxql.identifier(q) for q in QUANTITY_NAMES)
    after = influxql.time_literal(datetime.fromtimestamp(after_ms / 1000, UTC)).rstrip()
    return (f"SELECT {fields} FROM {influxql.identifier(schema.READINGS)} WHERE "
            f"{influxql.identifier(schema.SITE)} = {influxql.string(site)} AND "
            f"{influxql.identifier(schema.KIT)} = {influxql.string(kit)} AND time > {after} "
            f"ORDER BY time ASC LIMIT {MAX_ROWS}")


def event(time_ms: int, values: dict[str, float]) -> bytes:
    """One SSE event: ``id`` is the reading's time in ms (what a reconnect resumes from)."""
    data = orjson.dumps({"t": time_ms / 1000, "values": values}).decode()
    return f"id: {time_ms}\nevent: reading\ndata: {data}\n\n".encode()


def start_after(last_event_id: str | None, since: str | None, now_ms: int) -> int:
    """The time after which readings are sent: the reconnect's last id, else the page's ``since``, else now;
    never further back than ``CATCH_UP_S``."""
    for text in (last_event_id, since):
        if text and text.strip().isdigit():
            return max(int(text), now_ms - CATCH_UP_S * 1000)
    return now_ms


def rows_of(columns: list[str], values: list[list[Any]]) -> list[tuple[int, dict[str, float]]]:
    out = []
    for row in values:
        readings = {name: float(v) for name, v in zip(columns[1:], row[1:], strict=True)
                    if isinstance(v, int | float)}
        if readings:
            out.append((int(row[0]), readings))
    return out


@router.get("/kit/{site}/{kit}")
async def kit_stream(site: str, kit: str, request: Request) -> StreamingResponse:
    from web.series import require_reader  # the pages' read rules, answered as JSON

    require_reader(request)
    with request.app.state.sessions() as db:
        found = registry.get_kit(db, site, kit)
        if found.retired_at is not None:
            raise ApiError(410, "kit_retired", f"kit {kit!r} is retired: it sends no readings")
    streams = streams_of(request)
    key = address_key(client_of(request))
    if not streams.open(key):
        raise ApiError(429, "too_many_streams", "too many live pages are open from here: close a few tabs",
                       headers={"Retry-After": "30"})
    after = start_after(request.headers.get("last-event-id"), request.query_params.get("since"),
                        int(time.time() * 1000))
    client, database = request.app.state.influx, request.app.state.settings.influx_database

    async def events() -> AsyncIterator[bytes]:
        nonlocal after
        try:
            yield f"retry: {RETRY_MS}\n: live readings of {site}/{kit}\n\n".encode()
            started = beat = time.monotonic()
            while time.monotonic() - started < LIFETIME_S:
                if await request.is_disconnected():
                    return
                try:
                    async for answer in client.query(statement(site, kit, after), database=database):
                        for time_ms, values in rows_of(answer.columns, answer.values):
                            after = max(after, time_ms)
                            yield event(time_ms, values)
                            beat = time.monotonic()
                except InfluxError:
                    yield b"event: store\ndata: unavailable\n\n"  # the page says so; the stream goes on
                if time.monotonic() - beat >= HEARTBEAT_S:
                    yield b": still here\n\n"
                    beat = time.monotonic()
                await asyncio.sleep(POLL_S)
        finally:
            streams.close(key)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"})
