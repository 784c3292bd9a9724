"""InfluxDB writes on a thread of their own, with its own event loop and connection pool.

The gateway's main loop is busy with MQTT packets under load; a write whose HTTP exchange had to
wait for turns of that loop took hundreds of milliseconds for a 10 ms job, and every acknowledgement
waited with it. On its own loop the write runs at InfluxDB's speed; only its result comes back. The writes still
waiting for an answer are timed, so /healthz can say InfluxDB stalls long before a write times out.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

from gateway.settings import GatewaySettings
from lauks.influx import InfluxClient

T = TypeVar("T")


class ThreadedWriter:
    """The gateway's ``PointWriter`` (``gateway.stages``): raises the typed errors of ``lauks.influx``."""

    def __init__(self, settings: GatewaySettings) -> None:
        self._settings = settings
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._client: InfluxClient | None = None
        self._waiting: dict[int, float] = {}  # writes sent and not answered yet: when each started (monotonic)
        self._ids = itertools.count()
        self._thread = threading.Thread(target=self._run, name="influx-writer", daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def make() -> None:
            self._client = self._settings.influx_client()

        self._loop.run_until_complete(make())
        self._ready.set()
        self._loop.run_forever()

    async def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self._loop))

    @property
    def client(self) -> InfluxClient:
        assert self._client is not None
        return self._client

    async def write(self, database: str, body: bytes) -> None:
        """Write; cancelling this cancels the request on the writer's loop too."""
        token = next(self._ids)
        self._waiting[token] = time.monotonic()
        try:
            await self._call(self.client.write(database, body))
        finally:
            del self._waiting[token]

    def waiting_s(self) -> float:
        """How long the oldest write still in flight has waited for InfluxDB (0 if none is)."""
        if not self._waiting:
            return 0.0
        return time.monotonic() - min(self._waiting.values())

    async def create_database(self, database: str) -> None:
        await self._call(self.client.create_database(database))

    async def aclose(self) -> None:
        await self._call(self.client.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join, 5)
