"""The gateway's commit and replay with its stages handed in: a fake source and a fake writer where the test
is of the gateway's logic (with a real spool and de-duplication log in tmp_path), and the real threaded
writer against a real influxd where it is of what InfluxDB answers (a missing database, 401, 413)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from gateway_helpers import readings
from prometheus_client import generate_latest

from gateway.service import Gateway
from gateway.settings import GatewaySettings
from gateway.spool import Spool
from gateway.stages import Handler, MessageSource
from lauks.influx import (
    InfluxBadData,
    InfluxClient,
    InfluxRefused,
    InfluxThrottled,
    InfluxTooLarge,
    InfluxUnavailable,
    split_points,
)
from lauks.services import Influxd, free_port


@dataclass(frozen=True)
class FakeAck:
    n: int


@dataclass
class FakeSource:
    """Hands the gateway nothing by itself (the test calls ``handler``); records what it is told."""

    handler: Handler[FakeAck]
    connected: bool = True
    refusal: str | None = None
    sessions_lost: int = 0
    notices_too_large: int = 0
    session_lost_at: float | None = None
    lost_at: float | None = None
    acked: list[FakeAck] = field(default_factory=list)
    held: bool = False
    notices: list[tuple[str, bytes]] = field(default_factory=list)
    stopped: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        await self.stopped.wait()

    def stop(self) -> None:
        self.stopped.set()

    async def close(self) -> None:
        self.stop()

    def acknowledge(self, acks: list[FakeAck]) -> None:
        self.acked.extend(acks)

    def acknowledge_soon(self, ack: FakeAck) -> None:
        self.acked.append(ack)

    def hold(self, paused: bool) -> None:
        self.held = paused

    def publish(self, topic: str, payload: bytes) -> None:
        self.notices.append((topic, payload))


class FakeWriter:
    """Stores what it is given, except: every write fails with ``down`` while it is set, and the next writes
    fail with the errors queued in ``failures``; ``too_large`` refuses bodies of more points than that."""

    def __init__(self) -> None:
        self.stored: list[bytes] = []
        self.down: BaseException | None = None
        self.failures: deque[BaseException] = deque()
        self.too_large: int | None = None
        self.calls: list[float] = []  # monotonic time of each write
        self.created: list[str] = []

    async def write(self, database: str, body: bytes) -> None:
        self.calls.append(time.monotonic())
        if self.down is not None:
            raise self.down
        if self.failures:
            raise self.failures.popleft()
        if self.too_large is not None and len(split_points(body)) > self.too_large:
            raise InfluxTooLarge(413, "Request Entity Too Large")
        self.stored.append(body)

    async def create_database(self, database: str) -> None:
        self.created.append(database)

    def waiting_s(self) -> float:
        return 0.0

    async def aclose(self) -> None:
        pass

    def lines(self) -> list[bytes]:
        return [point for body in self.stored for point in split_points(body)]


class FullSpool(Spool):
    """A real spool on a disk that is full while ``full`` is set."""

    full = True

    def append(self, body: bytes, points: int) -> None:
        if self.full:
            raise OSError(28, "No space left on device")
        super().append(body, points)


def config(tmp_path: Path, **overrides: Any) -> GatewaySettings:
    options: dict[str, Any] = dict(state_dir=tmp_path, gateway_http_port=None, gateway_instance="t",
                                   gateway_fsync=False, influx_database="stages")
    options.update(overrides)
    return GatewaySettings(**options)


def make_gateway(settings: GatewaySettings, writer: Any,
                 spool: Spool | None = None) -> tuple[Gateway[FakeAck], FakeSource]:
    sources: list[FakeSource] = []

    def source(handler: Handler[FakeAck], filters: list[str], *, expect_session: bool,
               on_connect: Callable[[bool], None]) -> MessageSource[FakeAck]:
        sources.append(FakeSource(handler))
        return sources[-1]

    gateway = Gateway(settings, source=source, writer=writer, spool=spool)
    return gateway, sources[0]


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[tuple[Gateway[FakeAck], FakeSource, FakeWriter]]:
    writer = FakeWriter()
    gateway, source = make_gateway(config(tmp_path), writer)
    yield gateway, source, writer
    gateway.dedup.close()
    gateway.spool.close()
    gateway.dead_letters.close()


def receive(gateway: Gateway[FakeAck], first: int, messages: int, kit: str = "k1") -> None:
    for seq in range(first, first + messages):
        gateway.handle(gateway.topics.readings("s1", kit), readings(kit, 1, seq), False, FakeAck(seq))


async def commit(gateway: Gateway[FakeAck]) -> list[bytes]:
    """Commit what the batcher holds; the batch's points."""
    batch = gateway.batcher.take()
    assert batch is not None
    await gateway._commit(batch)
    return split_points(batch.body())


async def drained(gateway: Gateway[FakeAck], timeout_s: float = 5.0) -> None:
    """Run the spool's replay until the spool is empty."""
    drain = asyncio.create_task(gateway._drain_loop())
    try:
        deadline = time.monotonic() + timeout_s
        while not gateway.spool.empty:
            assert time.monotonic() < deadline, "the spool was not replayed"
            await asyncio.sleep(0.01)
    finally:
        drain.cancel()


# --- the commit ---------------------------------------------------------------------------------


async def test_a_committed_batch_is_stored_then_acknowledged(fake: Any) -> None:
    gateway, source, writer = fake
    receive(gateway, 0, 3)
    assert source.acked == [] and gateway.inflight == 3
    points = await commit(gateway)
    assert writer.lines() == points and len(points) == 3 * 2 + 1  # two samples each, and one ``seen`` point
    assert source.acked == [FakeAck(0), FakeAck(1), FakeAck(2)]
    assert gateway.inflight == 0 and gateway.stats.stored_messages == 3 and gateway.spool.empty
    receive(gateway, 0, 1)  # a copy of a stored message is acknowledged at once, not written again
    assert source.acked[-1] == FakeAck(0) and gateway.batcher.empty


async def test_points_influxdb_refuses_as_bad_data_are_counted_and_their_messages_acknowledged(fake: Any) -> None:
    gateway, source, writer = fake
    writer.failures.append(InfluxBadData(400, 'unable to parse "x": bad timestamp'))
    receive(gateway, 0, 2)
    points = await commit(gateway)
    writer.failures.append(InfluxBadData(400, "partial write: field type conflict dropped=1"))
    receive(gateway, 2, 2)
    await commit(gateway)
    assert len(source.acked) == 4 and gateway.spool.empty and writer.stored == []
    assert gateway.stats.refused_points == len(points) + 1  # all of a whole refusal, what a partial one dropped
    assert gateway.stats.write_errors == 0 and gateway.health()[1]["influx_reachable"] is True


async def test_a_store_that_is_down_spools_and_acknowledges_only_once_the_spool_has_the_batch(
        tmp_path: Path) -> None:
    writer = FakeWriter()
    writer.down = InfluxUnavailable("InfluxDB at http://127.0.0.1:1 is unreachable")
    spool = FullSpool(tmp_path / "spool", fsync=False)
    gateway, source = make_gateway(config(tmp_path), writer, spool)
    receive(gateway, 0, 5)
    committing = asyncio.create_task(commit(gateway))
    await asyncio.sleep(0.4)
    assert not committing.done() and source.acked == []
    ok, detail = gateway.health()
    assert not ok and "No space left" in str(detail["disk_problem"]) and detail["influx_reachable"] is False
    spool.full = False  # room on the disk again
    points = await asyncio.wait_for(committing, 5)
    assert source.acked == [FakeAck(n) for n in range(5)]
    assert spool.depth_points == len(points) and gateway.stats.spooled == len(points)
    assert gateway.stats.write_errors >= 1 and gateway.disk_ok and writer.stored == []


async def test_the_spool_is_replayed_in_order_once_the_store_is_back(fake: Any) -> None:
    gateway, source, writer = fake
    writer.down = InfluxUnavailable("down")
    sent: list[bytes] = []
    for first in (0, 10, 20):
        receive(gateway, first, 10)
        sent += await commit(gateway)
    assert len(source.acked) == 30 and gateway.spool.depth_points == len(sent)
    receive(gateway, 30, 1)  # a batch while the spool waits goes behind it, not around it
    writer.down = None
    sent += await commit(gateway)
    assert writer.stored == [] and gateway.spool.depth_points == len(sent)
    await drained(gateway)
    assert writer.lines() == sent
    assert gateway.stats.replayed == len(sent) and gateway.influx_reachable() == (True, None)


async def test_a_bug_while_handling_a_message_is_a_processing_error_not_a_write_error(
        fake: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    gateway, source, _ = fake

    def bug(*args: object) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(gateway.ingest, "message", bug)
    receive(gateway, 0, 1)
    assert gateway.stats.processing_errors == 1 and gateway.stats.write_errors == 0
    assert source.acked == [FakeAck(0)] and gateway.batcher.empty  # counted and kept, not held for ever
    assert "dead-letter" in str(gateway.dead_letters.path) and gateway.dead_letters.path.read_bytes()
    assert b"lauks_gateway_processing_errors_total 1.0" in generate_latest(gateway.registry)
    assert gateway.health()[1]["processing_errors"] == 1
    monkeypatch.setattr(gateway.ingest, "gateway_line", bug)
    gateway._stats_lines()  # a bug building the gateway's own points does not end the stats loop
    assert gateway.stats.processing_errors == 2


# --- the write policy ---------------------------------------------------------------------------


async def test_a_batch_too_large_for_one_request_is_written_in_halves(fake: Any) -> None:
    gateway, source, writer = fake
    writer.too_large = 3
    receive(gateway, 0, 6)
    points = await commit(gateway)
    assert sorted(writer.lines()) == sorted(points) and all(len(split_points(b)) <= 3 for b in writer.stored)
    assert len(source.acked) == 6 and gateway.spool.empty and gateway.stats.refused_points == 0


async def test_a_single_point_too_large_is_dropped_and_counted_not_spooled_for_ever(fake: Any) -> None:
    gateway, source, writer = fake
    writer.too_large = 0
    receive(gateway, 0, 1)
    points = await commit(gateway)
    assert gateway.stats.refused_points == len(points) and gateway.spool.empty and source.acked == [FakeAck(0)]


async def test_a_throttled_store_is_not_written_to_again_before_its_retry_after(fake: Any) -> None:
    gateway, source, writer = fake
    writer.failures.append(InfluxThrottled(429, "too many requests", 0.5))
    receive(gateway, 0, 2)
    points = await commit(gateway)
    assert source.acked == [FakeAck(0), FakeAck(1)] and gateway.spool.depth_points == len(points)
    receive(gateway, 2, 1)
    await commit(gateway)  # InfluxDB asked us to wait: this batch goes to the spool without trying
    assert len(writer.calls) == 1 and len(source.acked) == 3
    await drained(gateway)
    assert writer.calls[1] - writer.calls[0] >= 0.5
    assert len(writer.lines()) == gateway.stats.replayed


async def test_refused_writes_keep_everything_durable_and_say_so_until_influxdb_takes_them(
        fake: Any, caplog: pytest.LogCaptureFixture) -> None:
    gateway, source, writer = fake
    writer.down = InfluxRefused(401, "authorization failed")
    with caplog.at_level(logging.ERROR, logger="lauks.gateway"):
        for first in (0, 5):
            receive(gateway, first, 5)
            await commit(gateway)
    assert len(source.acked) == 10 and gateway.spool.depth_points > 0
    ok, detail = gateway.health()
    assert not ok and detail["influx_refused"] == "401: authorization failed", detail
    assert b"lauks_gateway_influx_refused 1.0" in generate_latest(gateway.registry)
    assert sum("REFUSES EVERY WRITE" in r.getMessage() for r in caplog.records) == 1  # once, not per batch
    writer.down = None
    await drained(gateway)
    ok, detail = gateway.health()
    assert ok and "influx_refused" not in detail and len(writer.lines()) == gateway.stats.spooled


# --- against a real InfluxDB ------------------------------------------------------------------------


def real(tmp_path: Path, url: str, **overrides: Any) -> tuple[Gateway[FakeAck], FakeSource]:
    from gateway.writer import ThreadedWriter

    settings = config(tmp_path, influx_url=url, **overrides)
    return make_gateway(settings, ThreadedWriter(settings))


async def close(gateway: Gateway[FakeAck]) -> None:
    await gateway.influx.aclose()
    gateway.dedup.close()
    gateway.spool.close()
    gateway.dead_letters.close()


async def test_a_missing_database_is_created_and_the_spool_replayed_into_it(
        tmp_path: Path, influxd: Influxd, influx: InfluxClient) -> None:
    database = f"stages_{free_port()}"
    gateway, source = real(tmp_path, influxd.url, influx_database=database)
    try:
        receive(gateway, 0, 4)
        points = await commit(gateway)
        assert gateway.health()[1]["influx_refused"] == f'404: database not found: "{database}"'
        assert len(source.acked) == 4 and gateway.spool.depth_points == len(points)
        await drained(gateway)
        rows = await influx.query_rows("SELECT count(temperature) FROM readings", database=database)
        assert rows[0]["count"] == 4 and gateway.health()[0]
    finally:
        await close(gateway)
        await influx.drop_database(database)


async def test_a_batch_larger_than_influxdb_takes_is_split_until_it_fits(
        tmp_path: Path, make_influxd: Callable[..., Influxd]) -> None:
    store = make_influxd({"INFLUXDB_HTTP_MAX_BODY_SIZE": "600"})  # bytes
    async with InfluxClient(store.url) as influx:
        await influx.create_database("stages")
        gateway, source = real(tmp_path, store.url)
        try:
            receive(gateway, 0, 40)
            points = await commit(gateway)
            assert sum(map(len, points)) > 4 * 600  # three halvings at least
            rows = await influx.query_rows("SELECT count(temperature), count(humidity) FROM readings",
                                           database="stages")
        finally:
            await close(gateway)
    assert (rows[0]["count"], rows[0]["count_1"]) == (40, 40)
    assert len(source.acked) == 40 and gateway.spool.empty and gateway.stats.refused_points == 0


async def test_influxdb_refusing_the_credentials_is_unhealthy_until_they_work(
        tmp_path: Path, make_influxd: Callable[..., Influxd]) -> None:
    store = make_influxd({"INFLUXDB_HTTP_AUTH_ENABLED": "true"})
    async with InfluxClient(store.url) as anonymous:
        await anonymous.execute("CREATE USER admin WITH PASSWORD 'admin-pw' WITH ALL PRIVILEGES")
    async with InfluxClient(store.url, username="admin", password="admin-pw") as admin:
        await admin.create_database("stages")
        gateway, source = real(tmp_path, store.url, influx_username="gw", influx_password="gw-pw")
        try:
            receive(gateway, 0, 3)
            points = await commit(gateway)
            ok, detail = gateway.health()
            assert not ok and detail["influx_refused"] == "401: authorization failed", detail
            assert len(source.acked) == 3 and gateway.spool.depth_points == len(points)
            await admin.execute("CREATE USER gw WITH PASSWORD 'gw-pw'")
            await admin.execute('GRANT WRITE ON "stages" TO gw')
            await drained(gateway)
            rows = await admin.query_rows("SELECT count(temperature) FROM readings", database="stages")
        finally:
            await close(gateway)
    assert rows[0]["count"] == 3 and gateway.health()[0]
