"""The gateway service: MQTT in, the pure core in the middle, InfluxDB or the spool out.

A message is validated as it arrives; its PUBACK is sent only once the batch holding its points is
durable: accepted by InfluxDB, or appended and fsynced to the spool. One flush loop writes batches in
order; one drain loop replays the spool when InfluxDB is back; a stats loop writes the ``gateway``
counters and the ``seen`` points every 10 s. SIGTERM: stop taking messages, flush, exit; what cannot
be made durable within the shutdown timeout stays unacknowledged in the broker.

A full disk or a hung InfluxDB never stops the process: every disk write is retried with backoff and
reported (``disk_writable``), and a write InfluxDB leaves unanswered for ``gateway_write_stall_s``
sends its batch to the spool and says ``influx_reachable: false``. What InfluxDB's answers mean is decided
in ``lauks.influx`` (the write policy); what /healthz says, in ``gateway.health``.

The source of messages and the writer of points are handed in (``gateway.stages``), so the commit and
the replay are tested with fakes; the defaults are the MQTT connection and the threaded InfluxDB writer.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, Generic, cast

from prometheus_client import CollectorRegistry
from typing_extensions import TypeVar

from gateway.core import Batch, Batcher, Ingest, KitLimits, Outcome, backoff
from gateway.deadletter import DeadLetters
from gateway.dedup import Dedup
from gateway.health import DiskHealth, InfluxHealth, Snapshot, report
from gateway.http import StatsCollector, StatusServer
from gateway.mqtt import Ack, MqttSource
from gateway.rollups import RollupWorker
from gateway.settings import GatewaySettings
from gateway.spool import Spool
from gateway.stages import Handler, MessageSource, PointWriter, SourceFactory
from gateway.writer import ThreadedWriter
from lauks.influx import (
    InfluxBadData,
    InfluxError,
    InfluxThrottled,
    InfluxWriteRejected,
    WriteAction,
    split_points,
    write_action,
)
from lauks.topics import Kind

log = logging.getLogger("lauks.gateway")

# the source's ack token; a plain ``Gateway`` is the MQTT one (a default, so annotations need no argument)
A = TypeVar("A", default=Ack)

DISK_RETRY_MAX_S = 5.0  # a failed disk write is tried again at least this often: it is cheap, and frees acks
REFUSED_RETRY_MAX_S = 10.0  # while InfluxDB refuses writes (credentials, database), the replay tries this often
BACKLOG_AFTER_S = 5.0  # an absence shorter than this leaves no backlog the kits' bursts cannot take


def mqtt_source(settings: GatewaySettings) -> SourceFactory[Ack]:
    """The real source: the gateway's own MQTT client."""

    def make(handler: Handler[Ack], filters: list[str], *, expect_session: bool,
             on_connect: Callable[[bool], None]) -> MessageSource[Ack]:
        return MqttSource(settings, filters, handler, expect_session=expect_session, on_connect=on_connect)

    return make


def _modified(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


class Gateway(Generic[A]):
    """``source`` and ``writer`` default to MQTT and InfluxDB from ``settings``; ``spool`` to the one in
    ``settings.spool_dir``."""

    def __init__(self, settings: GatewaySettings, clock: Callable[[], float] = time.time, *,
                 source: SourceFactory[A] | None = None, writer: PointWriter | None = None,
                 spool: Spool | None = None) -> None:
        self.settings = settings
        self.clock = clock  # Unix seconds; tests replay the golden messages at their own time
        s = settings
        self.topics = s.topics
        last_key_written = _modified(s.dedup_dir / "keys.log")  # before the start-up rewrite touches it
        self.dedup = Dedup(s.dedup_dir, s.gateway_dedup_window, fsync=s.gateway_fsync,
                           max_keys=s.gateway_dedup_max_keys, max_age_s=s.gateway_dedup_max_age_s)
        self.spool = spool if spool is not None else Spool(s.spool_dir, fsync=s.gateway_fsync)
        self.dead_letters = DeadLetters(s.dead_letter_dir, s.gateway_dead_letter_bytes)
        self.ingest = Ingest(self.topics, self.dedup, limits=KitLimits.from_settings(s))
        if last_key_written is not None:  # the broker kept what arrived since the last run's last message
            self._allow_backlog(self.clock() - last_key_written, "the gateway was stopped")
        self._held_since: float | None = None  # monotonic: since when reading is paused (the window is full)
        self.stats = self.ingest.stats
        # a batch is also due at a share of the in-flight window, so that one fills while the others are
        # written: the broker sends no more than the window until we acknowledge
        self.batcher: Batcher[tuple[Outcome, A | None]] = Batcher(s.gateway_batch_points, s.gateway_batch_ms / 1000,
                               max_messages=max(1, s.gateway_max_inflight // (s.gateway_concurrent_writes + 1)))
        self.influx: PointWriter = writer if writer is not None else ThreadedWriter(s)
        # the rollups are kept where the points go to the real InfluxDB (a test's fake writer has none)
        self.rollups: RollupWorker | None = None
        if s.gateway_rollups and writer is None:
            self.rollups = RollupWorker(
                s.influx_client(max_connections=1), s.influx_database, period_s=s.gateway_rollups_period_s,
                lookback=timedelta(seconds=s.gateway_rollups_lookback_s),
                resume_max=timedelta(seconds=s.gateway_rollups_resume_max_s))
        if s.gateway_share_group:
            filters = [self.topics.shared_filter(s.gateway_share_group, k) for k in (Kind.READINGS, Kind.STATUS)]
        else:
            filters = [self.topics.filter(k) for k in (Kind.READINGS, Kind.STATUS)]
        # a previous run that connected with this client id to this broker left a marker: the broker
        # should still hold that session, so a first CONNACK without one is a loss too
        self._session_marker = s.dedup_dir / "mqtt-session"
        self._session_text = f"{s.client_id} {s.mqtt_host}:{s.mqtt_port}\n"
        # no source given: the MQTT one, whose token is ``Ack``, the default of ``A``
        make_source = source if source is not None else cast("SourceFactory[A]", mqtt_source(s))
        self.source: MessageSource[A] = make_source(self.handle, filters, expect_session=self._marker_matches(),
                                                    on_connect=self._connected)
        self.inflight = 0
        self.stopping = False
        self.influx_health = InfluxHealth()
        self.disk = DiskHealth(s.dedup_dir, self.spool.directory)
        self.http_port: int | None = None
        self._committing: dict[int, float] = {}  # batches being made durable: when each started (monotonic)
        self._commit_ids = itertools.count()
        self._commits: set[asyncio.Task[None]] = set()
        self._abandoned = False  # shutdown gave up on batches that could not be made durable in time
        self._create_database: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._drain_wake = asyncio.Event()
        # the messages held (received, not yet acknowledged) never go far past the receive maximum
        self._hold_at = s.gateway_max_inflight
        self._resume_at = max(1, s.gateway_max_inflight * 3 // 4)
        self._last_warning = 0.0
        self.registry = CollectorRegistry()
        self.registry.register(StatsCollector(self.stats, self._gauges, self._counters))
        self.http = StatusServer(self.registry, self.health)

    # --- status -------------------------------------------------------------------------------------

    @property
    def disk_ok(self) -> bool:
        return self.disk.ok

    @property
    def disk_failures(self) -> dict[str, str]:
        return self.disk.failures

    def influx_reachable(self) -> tuple[bool, str | None]:
        """Reachable, or why not: the last write failed, or one has waited too long for an answer (a hung
        InfluxDB is said within ``gateway_write_stall_s``, not after the whole write timeout)."""
        waiting = self.influx.waiting_s()
        if waiting >= self.settings.gateway_write_stall_s:
            return False, f"a write has waited {waiting:.1f} s for InfluxDB to answer"
        state = self.influx_health
        return state.ok, None if state.ok else state.problem

    def _oldest_commit_s(self) -> float:
        return time.monotonic() - min(self._committing.values()) if self._committing else 0.0

    def _gauges(self) -> dict[str, float]:
        return {"inflight": self.inflight, "spool_depth_points": self.spool.depth_points,
                "mqtt_connected": float(self.source.connected), "influx_reachable": float(self.influx_reachable()[0]),
                "influx_refused": float(self.influx_health.refused is not None),
                "disk_writable": float(self.disk_ok), "influx_write_waiting_s": self.influx.waiting_s(),
                "oldest_batch_waiting_s": self._oldest_commit_s()}

    def _counters(self) -> dict[str, tuple[float, str]]:
        counters: dict[str, tuple[float, str]] = {
            "sessions_lost": (self.source.sessions_lost, "times the broker had lost the gateway's MQTT session"),
            "notices_too_large": (self.source.notices_too_large,
                                  "notices to kits not sent: larger than the broker's maximum packet size")}
        if self.rollups is not None:
            kept = self.rollups.stats
            counters["rollup_passes"] = (kept.passes, "passes of the rollup worker that kept the rollups up to date")
            counters["rollup_failures"] = (kept.failures, "rollup passes that failed (InfluxDB down or refusing)")
            counters["rollup_backfills"] = (kept.backfills,
                                            "kits whose older rollup buckets were recomputed for late samples")
        return counters

    def health(self) -> tuple[bool, dict[str, object]]:
        """/healthz: see ``gateway.health.report``."""
        reachable, problem = self.influx_reachable()
        source = self.source
        return report(Snapshot(
            instance=self.settings.gateway_instance, mqtt_connected=source.connected, mqtt_refused=source.refusal,
            sessions_lost=source.sessions_lost, session_lost_at=source.session_lost_at, influx_reachable=reachable,
            influx_problem=problem, influx_refused=self.influx_health.refused, disk=self.disk,
            spool_depth_points=self.spool.depth_points, inflight=self.inflight,
            processing_errors=self.stats.processing_errors,
            oldest_batch_waiting_s=self._oldest_commit_s(), write_stall_s=self.settings.gateway_write_stall_s,
            stopping=self.stopping))

    def _marker_matches(self) -> bool:
        try:
            return self._session_marker.read_text() == self._session_text
        except (OSError, UnicodeDecodeError):
            return False

    def _allow_backlog(self, away_s: float, why: str) -> None:
        """What the broker kept for us while we were away comes in one rush: no kit's fair share is spent on
        it (docs/gateway.md, "Fair share per kit")."""
        buckets = self.ingest.buckets
        if buckets is None or away_s < BACKLOG_AFTER_S:
            return
        buckets.allow_backlog(away_s, self.clock())
        log.info("%s for %.0f s: for the catch-up, each kit may send up to %.0f messages more than its fair share",
                 why, away_s, away_s * buckets.limits.backlog_per_s)

    def _connected(self, session_present: bool) -> None:
        """After each connect: leave the marker that says the broker holds a session for us (a hint, not
        state: a torn or missing one only means a lost session at the next start goes unnoticed)."""
        lost_at = self.source.lost_at
        if session_present and lost_at is not None:
            self._allow_backlog(time.monotonic() - lost_at, "the gateway was disconnected from the broker")
        if self._marker_matches():
            return
        try:
            self._session_marker.write_text(self._session_text)
        except OSError as error:
            log.warning("could not write %s (%s): a session lost while the gateway is down will not be noticed "
                        "at the next start", self._session_marker, error)

    def _warn(self, text: str, *args: Any) -> None:
        """A warning at most every 5 s, so an outage does not flood the log."""
        now = time.monotonic()
        if now - self._last_warning >= 5:
            self._last_warning = now
            log.warning(text, *args)

    # --- the hot path -------------------------------------------------------------------------------

    def handle(self, topic: str, payload: bytes, retained: bool, ack: A | None) -> None:
        """One message, straight from the MQTT connection: validate it now; its PUBACK goes out with
        its batch once that is durable (or at once if there is nothing to write)."""
        if self.stopping:
            return  # never acknowledged: the broker keeps it for the next session
        try:
            outcome = self.ingest.message(topic, payload, self.clock(), retained)
        except Exception:  # a bug must not stop the gateway: count it, keep the payload, go on
            log.exception("could not process a message on %s", topic)
            self.stats.processing_errors += 1
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
        self.inflight += 1
        if self.inflight >= self._hold_at:
            self.source.hold(True)  # resumed by _commit once a batch is durable
            if self._held_since is None:
                self._held_since = time.monotonic()
        starts = self.batcher.empty
        if self.batcher.add(outcome.lines, (outcome, ack), time.monotonic()) or starts:
            self._wake.set()  # a new batch has a deadline, a full one is due now

    async def _flush_loop(self) -> None:
        """Commit due batches, up to ``gateway_concurrent_writes`` at once: while one waits for InfluxDB
        the next is written, so the in-flight window is not held up by one write's latency. Batches
        may then land out of order, which is harmless: a point is its series and time, and a copy
        written twice has the same values."""
        slots = asyncio.Semaphore(self.settings.gateway_concurrent_writes)
        commits = self._commits
        failures: list[BaseException] = []

        def finished(task: asyncio.Task[None]) -> None:
            commits.discard(task)
            slots.release()
            error = None if task.cancelled() else task.exception()
            if error is not None:
                failures.append(error)
                self._wake.set()

        while not failures and not self._abandoned:
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
            batch = None if self._abandoned else self.batcher.take()
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

    async def _commit(self, batch: Batch[tuple[Outcome, A | None]]) -> None:
        """Make a batch durable (InfluxDB, else the spool), then release its messages' acknowledgements."""
        token = next(self._commit_ids)
        self._committing[token] = time.monotonic()
        try:
            await self._make_durable(batch)
        finally:
            del self._committing[token]
        keys = []
        acks = []
        for outcome, ack in batch.tokens:
            if outcome.key is not None:
                keys.append(outcome.key)
            if ack is not None:
                acks.append(ack)
            self.ingest.stored(outcome)
        self.dedup.commit(keys)
        self.source.acknowledge(acks)
        self.inflight -= len(batch.tokens)
        if self.inflight < self._resume_at:
            self.source.hold(False)
            if self._held_since is not None:  # a long pause (a full disk, a hung InfluxDB) left a backlog
                self._allow_backlog(time.monotonic() - self._held_since, "the gateway had stopped reading")
                self._held_since = None

    async def _make_durable(self, batch: Batch[tuple[Outcome, A | None]]) -> None:
        """Returns once the batch is in InfluxDB or the spool (or refused as bad data); retries a full disk
        for ever, with backoff (shutdown cancels it: then nothing of the batch is acknowledged)."""
        db = self.settings.influx_database
        stall_s = self.settings.gateway_write_stall_s
        attempt = 0
        body = batch.body() if batch.lines else b""
        while body:
            try:
                self.dedup.persist()  # receipt times on disk before any point is written
                self.disk.recovered("dedup")
            except OSError as error:
                self._disk_failed("dedup", error, attempt)
                await asyncio.sleep(backoff(attempt, 0.5, DISK_RETRY_MAX_S))
                attempt += 1
                continue
            # with a spool to replay (or InfluxDB asking us to wait) the batch goes behind it, in order
            if self.spool.empty and not self.influx_health.wait_s():
                started = time.monotonic()
                try:
                    # a hung InfluxDB must not hold these messages for the whole write timeout: after the stall
                    # limit the write is cancelled and the batch spooled (if InfluxDB did take it, the replay
                    # writes the same points again, which overwrite themselves)
                    await self._store(db, body, len(batch.lines), stall_s)
                    self.stats.write_latency_ms.append((time.monotonic() - started) * 1000)
                    self.influx_health.answered()
                    self.disk.recovered("spool", "InfluxDB takes the batches again: none needs the spool now")
                    return
                except (InfluxError, TimeoutError) as error:
                    self._write_failed(error)
                    if self.influx_health.refused is None:  # a refusal is an ERROR once, not a warning per batch
                            self._warn("InfluxDB did not take a batch (%s): spooling batches to %s",
                                   self._failure_text(error), self.spool.directory)
            try:
                self.spool.append(body, len(batch.lines))
                self.disk.recovered("spool")
                self.stats.spooled += len(batch.lines)
                self._drain_wake.set()
                return
            except OSError as error:
                self._disk_failed("spool", error, attempt)
                await asyncio.sleep(backoff(attempt, 0.5, DISK_RETRY_MAX_S))
                attempt += 1

    async def _store(self, db: str, body: bytes, points: int, timeout_s: float | None, depth: int = 0) -> None:
        """Write ``body`` (``points`` points), applying the write policy of ``lauks.influx`` to what InfluxDB
        answers: bad data is dropped and counted; a request too large is written in halves, down to one
        point (one point still too large is dropped and counted: it can never be written). Raises what the
        caller must keep the points for: unavailable or timed out, throttled, refused."""
        try:
            await asyncio.wait_for(self.influx.write(db, body), timeout_s)
        except InfluxWriteRejected as error:
            action = write_action(error)
            if action is WriteAction.BAD_DATA:
                assert isinstance(error, InfluxBadData)
                dropped = error.dropped if error.partial else points
                self.stats.refused_points += min(points, dropped if dropped is not None else 1)
                log.error("InfluxDB refused points as bad data; they are not retried: %s", error.message)
                return
            if action is not WriteAction.SPLIT:
                raise
            parts = split_points(body) if points > 1 else [body]
            if len(parts) <= 1:
                self.stats.refused_points += 1
                log.error("InfluxDB refused a single point as too large (%d bytes); it is dropped: %s",
                          len(body), error.message)
                return
            half = len(parts) // 2
            if not depth:  # once per batch, not for every half
                log.info("InfluxDB refused %d points in one request as too large: writing them in halves",
                         len(parts))
            await self._store(db, b"".join(parts[:half]), half, timeout_s, depth + 1)
            await self._store(db, b"".join(parts[half:]), len(parts) - half, timeout_s, depth + 1)

    def _write_failed(self, error: InfluxError | TimeoutError) -> None:
        """A write that must be kept for later: count it and say why in /healthz (and the log)."""
        self.stats.write_errors += 1
        action = write_action(error)
        if action is WriteAction.REFUSED:
            assert isinstance(error, InfluxWriteRejected)
            self.influx_health.refuse(error)
            if error.status == 404:
                self._ensure_database()
        elif action is WriteAction.THROTTLED:
            assert isinstance(error, InfluxThrottled)
            self.influx_health.throttle(error.retry_after_s, str(error))
        else:
            self.influx_health.down(self._failure_text(error))

    def _failure_text(self, error: InfluxError | TimeoutError) -> str:
        if isinstance(error, TimeoutError):
            return f"a write went unanswered for {self.settings.gateway_write_stall_s:.1f} s"
        return str(error)

    def _disk_failed(self, what: str, error: OSError, attempt: int) -> None:
        self.disk.failed(what, error, attempt, self._influx_text())

    def _influx_text(self) -> str:
        """How InfluxDB is doing, for a disk failure's log line (it decides what the failure costs)."""
        reachable, problem = self.influx_reachable()
        return "InfluxDB is reachable" if reachable else f"InfluxDB is unreachable ({problem or 'no answer yet'})"

    def _probe_disk(self, attempt: int = 0) -> bool:
        folders = [self.spool.directory, self.settings.dedup_dir]
        return self.disk.probe(folders, attempt, self._influx_text())

    async def _disk_loop(self) -> None:
        """While the start-up probe fails, try it again (with no traffic, nothing else would)."""
        attempt = 1
        while "probe" in self.disk_failures:
            await asyncio.sleep(backoff(attempt, 0.5, 2))
            self._probe_disk(attempt)
            attempt += 1

    def _ensure_database(self) -> None:
        """Create the database in the background (idempotent), so that neither start-up nor a write waits
        for an InfluxDB that may hang."""
        if self._create_database is None or self._create_database.done():
            self._create_database = asyncio.create_task(self._create(), name="create-database")

    async def _create(self) -> None:
        database = self.settings.influx_database
        try:
            await self.influx.create_database(database)
        except Exception as error:  # InfluxDB down or hung: a write's 404 tries again
            log.warning("could not make sure database %s exists yet: %r", database, error)
        else:
            log.debug("database %s exists", database)

    async def _drain_loop(self) -> None:
        """Replay the spool into InfluxDB. A full disk (the cursor cannot be written) or an unreadable
        spool file is retried with backoff; it never ends the loop."""
        attempt = 0
        db = self.settings.influx_database
        while True:
            if self.spool.empty:
                self._drain_wake.clear()
                await self._drain_wake.wait()
                continue
            try:
                chunk = self.spool.peek()
            except OSError as error:
                log.error("cannot read the spool in %s (%s); trying again", self.spool.directory, error)
                await asyncio.sleep(backoff(attempt, 0.5, DISK_RETRY_MAX_S))
                attempt += 1
                continue
            if chunk is None:
                continue
            wait = self.influx_health.wait_s()
            if wait:  # InfluxDB asked us to wait (Retry-After)
                await asyncio.sleep(wait)
                continue
            try:
                await self._store(db, chunk.body, chunk.points, None)
            except (InfluxError, TimeoutError) as error:
                self._write_failed(error)
                refused = self.influx_health.refused is not None
                await asyncio.sleep(backoff(attempt, 0.2, REFUSED_RETRY_MAX_S if refused else 2.0))
                attempt += 1
                continue
            self.influx_health.answered()
            try:
                self.spool.advance(chunk)
                self.disk.recovered("cursor")
            except OSError as error:  # the spool stays as it was: the same chunk is replayed again
                self._disk_failed("cursor", error, attempt)
                await asyncio.sleep(backoff(attempt, 0.5, DISK_RETRY_MAX_S))
                attempt += 1
                continue
            attempt = 0
            self.stats.replayed += chunk.points
            if self.spool.empty:
                log.info("the spool is replayed: %d points in all so far", self.stats.replayed)

    def _stats_lines(self, force: bool = False) -> None:
        now_ms = int(time.time() * 1000)
        try:
            lines = self.ingest.activity.sweep(now_ms, force)
            lines.append(self.ingest.gateway_line(self.settings.gateway_instance, now_ms, self.spool.depth_points,
                                                  self.inflight))
        except Exception:  # a bug must not end the stats loop (and with it the gateway): count it, go on
            log.exception("could not build the gateway's own points")
            self.stats.processing_errors += 1
            return
        self.batcher.add(lines, None, time.monotonic())
        self._wake.set()

    async def _stats_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.gateway_stats_interval_s)
            self._stats_lines()

    # --- life cycle ---------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        # serve /healthz and subscribe at once: creating the database (idempotent) must not wait for an
        # InfluxDB that is down or hung; a write's 404 creates it too
        self._ensure_database()
        self._probe_disk()
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
                others = [tasks.create_task(self._drain_loop(), name="drain"),
                          tasks.create_task(self._stats_loop(), name="stats"),
                          tasks.create_task(self._disk_loop(), name="disk")]
                if self.rollups is not None:
                    others.append(tasks.create_task(self.rollups.run(), name="rollups"))
                await stop.wait()
                log.info("stopping: no new messages; flushing %d held", self.inflight)
                self.stopping = True
                self.source.stop()
                self._stats_lines(force=True)
                await self._flush_within(flush, s.gateway_shutdown_timeout_s)
                await self.source.close()  # the PUBACKs of the last batch are written before the DISCONNECT
                for task in (source, *others):
                    task.cancel()
                if self._create_database is not None:
                    self._create_database.cancel()
        finally:
            await self.http.stop()
            await self.influx.aclose()
            if self.rollups is not None:
                await self.rollups.client.aclose()
            for name, close in (("de-duplication log", self.dedup.close), ("spool", self.spool.close),
                                ("dead-letter log", self.dead_letters.close)):
                try:
                    close()
                except OSError as error:  # a full disk: what is acknowledged is durable already
                    log.error("could not close the %s cleanly (%s); nothing acknowledged depends on it", name, error)
            log.info("gateway stopped: %d received, %d stored, %d duplicates, %d rejected, %d points spooled, "
                     "%d points waiting in the spool", self.stats.received, self.stats.stored_messages,
                     self.stats.duplicates, self.stats.rejected, self.stats.spooled, self.spool.depth_points)

    async def _flush_within(self, flush: asyncio.Task[None], timeout_s: float) -> None:
        """Let the flush make the held batches durable; past ``timeout_s`` (a full disk, InfluxDB hung) give up
        on the rest. Safe: a message not acknowledged stays in the broker's session, which delivers it again."""
        try:
            await asyncio.wait_for(asyncio.shield(flush), timeout_s)
            return
        except TimeoutError:
            pass
        log.error("stopping: %d messages could not be made durable in %.0f s (%s); they are NOT acknowledged and "
                  "stay in the broker, which delivers them again when the gateway is back", self.inflight, timeout_s,
                  "; ".join(self.disk_failures.values()) or self.influx_reachable()[1] or "no reason known")
        self._abandoned = True
        for commit in list(self._commits):
            commit.cancel()
        self._wake.set()
        await flush
