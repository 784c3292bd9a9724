"""The gateway service: MQTT in, the pure core in the middle, InfluxDB or the spool out.

A message is validated as it arrives; its PUBACK is sent only once the batch holding its points is
durable: accepted by InfluxDB, or appended and fsynced to the spool. One flush loop writes batches in
order; one drain loop replays the spool when InfluxDB is back; a stats loop writes the ``gateway``
counters and the ``seen`` points every 10 s. SIGTERM: stop taking messages, flush, exit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from gateway.core import Batch, Batcher, Ingest, KitLimits, Outcome, backoff
from gateway.deadletter import DeadLetters
from gateway.dedup import Dedup
from gateway.http import StatsCollector, StatusServer
from gateway.mqtt import Ack, MqttSource
from gateway.settings import GatewaySettings
from gateway.spool import Spool
from gateway.writer import ThreadedWriter
from lauks.influx import InfluxUnavailable, InfluxWriteRejected
from lauks.topics import Kind

log = logging.getLogger("lauks.gateway")


class Gateway:
    def __init__(self, settings: GatewaySettings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock  # Unix seconds; tests replay the golden messages at their own time
        s = settings
        self.topics = s.topics
        self.dedup = Dedup(s.dedup_dir, s.gateway_dedup_window, fsync=s.gateway_fsync)
        self.spool = Spool(s.spool_dir, fsync=s.gateway_fsync)
        self.dead_letters = DeadLetters(s.dead_letter_dir, s.gateway_dead_letter_bytes)
        self.ingest = Ingest(self.topics, self.dedup, limits=KitLimits.from_settings(s))
        self.stats = self.ingest.stats
        # a batch is also due at a share of the in-flight window, so that one fills while the others are
        # written: the broker sends no more than the window until we acknowledge
        self.batcher = Batcher(s.gateway_batch_points, s.gateway_batch_ms / 1000,
                               max_messages=max(1, s.gateway_max_inflight // (s.gateway_concurrent_writes + 1)))
        self.influx = ThreadedWriter(s)
        if s.gateway_share_group:
            filters = [self.topics.shared_filter(s.gateway_share_group, k) for k in (Kind.READINGS, Kind.STATUS)]
        else:
            filters = [self.topics.filter(k) for k in (Kind.READINGS, Kind.STATUS)]
        self.source = MqttSource(s, filters, self.handle)
        self.inflight = 0
        self.stopping = False
        self.influx_ok = True
        self.disk_ok = True
        self.http_port: int | None = None
        self._wake = asyncio.Event()
        self._drain_wake = asyncio.Event()
        # the messages held (received, not yet acknowledged) never go far past the receive maximum
        self._hold_at = s.gateway_max_inflight
        self._resume_at = max(1, s.gateway_max_inflight * 3 // 4)
        self._last_warning = 0.0
        self.registry = CollectorRegistry()
        self.registry.register(StatsCollector(self.stats, self._gauges))
        self.http = StatusServer(self.registry, self.health)

    # --- status -------------------------------------------------------------------------------------

    def _gauges(self) -> dict[str, float]:
        return {"inflight": self.inflight, "spool_depth_points": self.spool.depth_points,
                "mqtt_connected": float(self.source.connected), "influx_reachable": float(self.influx_ok),
                "disk_writable": float(self.disk_ok)}

    def health(self) -> tuple[bool, dict[str, object]]:
        detail: dict[str, object] = {"mqtt_connected": self.source.connected, "influx_reachable": self.influx_ok,
                                     "disk_writable": self.disk_ok, "spool_depth_points": self.spool.depth_points,
                                     "inflight": self.inflight, "instance": self.settings.gateway_instance}
        if self.source.refusal:
            detail["mqtt_refused"] = self.source.refusal
        ok = self.source.connected and self.disk_ok and not self.stopping
        detail["ok"] = ok
        return ok, detail

    def _warn(self, text: str, *args: Any) -> None:
        """A warning at most every 5 s, so an outage does not flood the log."""
        now = time.monotonic()
        if now - self._last_warning >= 5:
            self._last_warning = now
            log.warning(text, *args)

    # --- the hot path -------------------------------------------------------------------------------

    def handle(self, topic: str, payload: bytes, retained: bool, ack: Ack | None) -> None:
        """One message, straight from the MQTT connection: validate it now; its PUBACK goes out with
        its batch once that is durable (or at once if there is nothing to write)."""
        if self.stopping:
            return  # never acknowledged: the broker keeps it for the next session
        try:
            outcome = self.ingest.message(topic, payload, self.clock(), retained)
        except Exception:  # a bug must not stop the gateway: count it, keep the payload, go on
            log.exception("could not process a message on %s", topic)
            self.stats.write_errors += 1
            self.dead_letters.add(topic, payload, int(self.clock() * 1000), [])
            if ack is not None:
                self.source.acknowledge_soon(ack)
            return
        if outcome.notice is not None and outcome.notice_topic is not None:
            self.source.publish(outcome.notice_topic, outcome.notice)
        if outcome.dead_letter:  # not every rate-limited message: a flood must not push the others' out
            self.dead_letters.add(topic, payload, int(self.clock() * 1000), outcome.rejections)
        if outcome.drop:
            if ack is not None:
                self.source.acknowledge_soon(ack)
            return
        outcome.ack = ack
        self.inflight += 1
        if self.inflight >= self._hold_at:
            self.source.hold(True)  # resumed by _commit once a batch is durable
        starts = self.batcher.empty
        if self.batcher.add(outcome.lines, outcome, time.monotonic()) or starts:
            self._wake.set()  # a new batch has a deadline, a full one is due now

    async def _flush_loop(self) -> None:
        """Commit due batches, up to ``gateway_concurrent_writes`` at once: while one waits for InfluxDB
        the next is written, so the in-flight window is not held up by one write's latency. Batches
        may then land out of order, which is harmless: a point is its series and time, and a copy
        written twice has the same values."""
        slots = asyncio.Semaphore(self.settings.gateway_concurrent_writes)
        commits: set[asyncio.Task[None]] = set()
        failures: list[BaseException] = []

        def finished(task: asyncio.Task[None]) -> None:
            commits.discard(task)
            slots.release()
            error = None if task.cancelled() else task.exception()
            if error is not None:
                failures.append(error)
                self._wake.set()

        while not failures:
            due = self.batcher.due_at()
            if due is None:
                if self.stopping:
                    break
                self._wake.clear()
                await self._wake.wait()
                continue
            delay = due - time.monotonic()
            if delay > 0 and not self.batcher.full and not self.stopping:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), delay)
                except TimeoutError:
                    pass
                continue
            await slots.acquire()  # the batch keeps filling while every slot is busy
            batch = self.batcher.take()
            if batch is None:
                slots.release()
                continue
            task = asyncio.create_task(self._commit(batch))
            commits.add(task)
            task.add_done_callback(finished)
        if commits:
            await asyncio.wait(commits)
        if failures:
            raise failures[0]  # a bug in committing: let the task group stop the gateway loudly

    async def _commit(self, batch: Batch) -> None:
        """Make a batch durable (InfluxDB, else the spool), then release its messages' acknowledgements."""
        db = self.settings.influx_database
        attempt = 0
        body = batch.body() if batch.lines else b""
        while body:
            try:
                self.dedup.persist()  # receipt times on disk before any point is written
            except OSError as error:
                self._disk_failed(error, attempt)
                await asyncio.sleep(backoff(attempt, 0.5, 10))
                attempt += 1
                continue
            if self.spool.empty:
                started = time.monotonic()
                try:
                    await self.influx.write(db, body)
                    self.stats.write_latency_ms.append((time.monotonic() - started) * 1000)
                    self.influx_ok = True
                    break
                except InfluxUnavailable as error:
                    self.influx_ok = False
                    self.stats.write_errors += 1
                    self._warn("InfluxDB is unavailable (%s): spooling batches to %s", error, self.spool.directory)
                except InfluxWriteRejected as error:
                    if await self._refused(error, len(batch.lines)):
                        break
            try:
                self.spool.append(body, len(batch.lines))
                self.stats.spooled += len(batch.lines)
                self._drain_wake.set()
                break
            except OSError as error:
                self._disk_failed(error, attempt)
                await asyncio.sleep(backoff(attempt, 0.5, 10))
                attempt += 1
        self.disk_ok = True
        keys = []
        acks = []
        messages = [token for token in batch.tokens if isinstance(token, Outcome)]
        for outcome in messages:
            if outcome.key is not None:
                keys.append(outcome.key)
            if outcome.ack is not None:
                acks.append(outcome.ack)
            self.ingest.stored(outcome)
        self.dedup.commit(keys)
        self.source.acknowledge(acks)
        self.inflight -= len(messages)
        if self.inflight < self._resume_at:
            self.source.hold(False)

    def _disk_failed(self, error: OSError, attempt: int) -> None:
        self.disk_ok = False
        log.error("CANNOT WRITE TO DISK (%s) while InfluxDB is unavailable: messages are NOT acknowledged and "
                  "stay in the broker until the disk has room (spool: %s, attempt %d)", error,
                  self.spool.directory, attempt + 1)

    async def _refused(self, error: InfluxWriteRejected, points: int) -> bool:
        """True if the points are bad data (dropped); False if the write should be kept for a retry."""
        if error.status == 400:
            self.stats.refused_points += points if not error.partial else 1
            log.error("InfluxDB refused points as bad data; they are not retried: %s", error.message)
            return True
        # 401/403 (credentials) or 404 (no database) are not bad data: keep the points and say why
        self.influx_ok = False
        self.stats.write_errors += 1
        self._warn("InfluxDB refused the write (%s): spooling until this is fixed", error)
        if error.status == 404:
            try:
                await self.influx.create_database(self.settings.influx_database)
            except Exception as create_error:
                log.debug("could not create the database: %r", create_error)
        return False

    async def _drain_loop(self) -> None:
        attempt = 0
        db = self.settings.influx_database
        while True:
            if self.spool.empty:
                self._drain_wake.clear()
                await self._drain_wake.wait()
                continue
            chunk = self.spool.peek()
            if chunk is None:
                continue
            try:
                await self.influx.write(db, chunk.body)
            except InfluxUnavailable:
                await asyncio.sleep(backoff(attempt, 0.2, 2.0))
                attempt += 1
                continue
            except InfluxWriteRejected as error:
                if not await self._refused(error, chunk.points):
                    await asyncio.sleep(backoff(attempt, 0.2, 2.0))
                    attempt += 1
                    continue
            attempt = 0
            self.influx_ok = True
            self.spool.advance(chunk)
            self.stats.replayed += chunk.points
            if self.spool.empty:
                log.info("the spool is replayed: %d points in all so far", self.stats.replayed)

    def _stats_lines(self, force: bool = False) -> None:
        now_ms = int(time.time() * 1000)
        lines = self.ingest.activity.sweep(now_ms, force)
        lines.append(self.ingest.gateway_line(self.settings.gateway_instance, now_ms, self.spool.depth_points,
                                              self.inflight))
        self.batcher.add(lines, None, time.monotonic())
        self._wake.set()

    async def _stats_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.gateway_stats_interval_s)
            self._stats_lines()

    # --- life cycle ---------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        try:
            await self.influx.create_database(s.influx_database)  # idempotent; fine to fail if InfluxDB is down
        except Exception as error:
            log.warning("could not make sure database %s exists yet: %r", s.influx_database, error)
        if s.gateway_http_port is not None:
            try:
                self.http_port = await self.http.start(s.gateway_http_host, s.gateway_http_port)
            except OSError as error:  # ingest matters more than metrics: say so loudly and go on
                log.error("cannot serve /metrics and /healthz on %s:%s (%s); set LAUKS_GATEWAY_HTTP_PORT to a free "
                          "port. Ingesting anyway.", s.gateway_http_host, s.gateway_http_port, error)
        log.info("gateway %s started: spool %s (%d points waiting), batches of %d points or %d ms, metrics on :%s",
                 s.gateway_instance, self.spool.directory, self.spool.depth_points, s.gateway_batch_points,
                 s.gateway_batch_ms, self.http_port)
        if not self.spool.empty:
            self._drain_wake.set()
        try:
            async with asyncio.TaskGroup() as tasks:
                source = tasks.create_task(self.source.run(), name="mqtt")
                flush = tasks.create_task(self._flush_loop(), name="flush")
                drain = tasks.create_task(self._drain_loop(), name="drain")
                periodic = tasks.create_task(self._stats_loop(), name="stats")
                await stop.wait()
                log.info("stopping: no new messages; flushing %d held", self.inflight)
                self.stopping = True
                self.source.stop()
                self._stats_lines(force=True)
                await flush
                await self.source.close()  # the PUBACKs of the last batch are written before the DISCONNECT
                for task in (source, drain, periodic):
                    task.cancel()
        finally:
            await self.http.stop()
            await self.influx.aclose()
            self.dedup.close()
            self.spool.close()
            self.dead_letters.close()
            log.info("gateway stopped: %d received, %d stored, %d duplicates, %d rejected, %d points spooled, "
                     "%d points waiting in the spool", self.stats.received, self.stats.stored_messages,
                     self.stats.duplicates, self.stats.rejected, self.stats.spooled, self.spool.depth_points)
