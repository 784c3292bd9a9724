"""The gateway's pure core: what to store, reject and count for each message, batching and backoff.

No I/O here: ``Ingest`` turns (topic, payload, time of receipt) into an ``Outcome`` (line protocol,
rejections, the notice for the kit, the de-duplication key); ``Batcher`` groups outcomes into
writes by size and age; ``backoff`` computes reconnect and retry delays. The shells in
``gateway.service`` and ``gateway.mqtt`` move the bytes.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from gateway.dedup import Dedup, Key
from lauks.contract import (
    MessageRejected,
    Readings,
    Reason,
    Rejection,
    decode_readings,
    decode_status,
    rejected_notice,
)
from lauks.lineprotocol import LineProtocolError, line, readings_lines
from lauks.topics import Kind, KitTopic, Topics

LATE_MS = 5 * 60 * 1000  # a sample older than this when received is backfill after an outage
SEEN_EVERY_MS = 10_000  # at most one ``seen`` point per kit this often


def backoff(attempt: int, base_s: float = 0.5, cap_s: float = 30.0, rng: random.Random | None = None) -> float:
    """Capped exponential backoff with full jitter: a delay in [base/2, min(cap, base * 2**attempt)]."""
    ceiling = min(cap_s, base_s * (2 ** min(attempt, 30)))
    return (rng or random).uniform(min(base_s / 2, ceiling), ceiling)


@dataclass(slots=True)
class Stats:
    """Counters since start; what ``gateway`` points and /metrics report."""

    received: int = 0
    stored_messages: int = 0
    stored_points: int = 0
    duplicates: int = 0
    rejected: int = 0  # rejections (a message can have several)
    rejected_messages: int = 0
    ignored: int = 0  # messages on topics that are not ours
    spooled: int = 0  # points written to the spool
    replayed: int = 0  # points replayed from the spool into InfluxDB
    write_errors: int = 0
    refused_points: int = 0  # points InfluxDB refused as bad data (4xx); never retried
    by_reason: dict[str, int] = field(default_factory=dict)
    write_latency_ms: deque[float] = field(default_factory=lambda: deque(maxlen=2048))

    def latency_percentile(self, fraction: float) -> float:
        if not self.write_latency_ms:
            return 0.0
        ordered = sorted(self.write_latency_ms)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass(slots=True)
class Outcome:
    """What one MQTT message leads to."""

    lines: list[str] = field(default_factory=list)
    key: Key | None = None  # de-duplication key of a readings message
    rejections: list[Rejection] = field(default_factory=list)
    notice_topic: str | None = None
    notice: bytes | None = None  # payload for the kit's ``rejected`` topic
    duplicate: bool = False
    drop: bool = False  # nothing to write (a copy already stored, or not our topic): acknowledge at once
    samples: int = 0
    ack: Any = None  # the shell's token to acknowledge the message once its points are durable


class KitActivity:
    """The ``seen`` points of ``kit_status``: at most one per kit every 10 s, counting samples and backfill."""

    def __init__(self, every_ms: int = SEEN_EVERY_MS) -> None:
        self.every_ms = every_ms
        # (site, kit) -> [samples, late, boot, fw, last_emit_ms, pending]
        self._kits: dict[tuple[str, str], list[Any]] = {}

    def note(self, site: str, kit: str, boot: int, fw: str | None, samples: int, late: int,
             now_ms: int) -> str | None:
        entry = self._kits.get((site, kit))
        if entry is None:
            entry = self._kits[(site, kit)] = [0, 0, boot, fw, -self.every_ms, False]
        entry[0] += samples
        entry[1] += late
        entry[2] = boot
        entry[3] = fw if fw is not None else entry[3]
        entry[5] = True
        if now_ms - entry[4] >= self.every_ms:
            return self._emit(site, kit, entry, now_ms)
        return None

    def sweep(self, now_ms: int, force: bool = False) -> list[str]:
        """``seen`` points of kits with activity not yet reported and due (or all of them, ``force``)."""
        return [self._emit(site, kit, entry, now_ms) for (site, kit), entry in self._kits.items()
                if entry[5] and (force or now_ms - entry[4] >= self.every_ms)]

    @staticmethod
    def _emit(site: str, kit: str, entry: list[Any], now_ms: int) -> str:
        fields: dict[str, int | str] = {"seen": 1, "samples": entry[0], "late": entry[1], "boot": entry[2]}
        if entry[3] is not None:
            fields["fw"] = entry[3]
        entry[0] = entry[1] = 0
        entry[4] = now_ms
        entry[5] = False
        return line("kit_status", {"site": site, "kit": kit}, fields, now_ms)


class Ingest:
    """Decides, message by message, what to write; keeps the counters and the per-kit state."""

    def __init__(self, topics: Topics, dedup: Dedup, stats: Stats | None = None) -> None:
        self.topics = topics
        self.dedup = dedup
        self.stats = stats or Stats()
        self.activity = KitActivity()
        self._last_status: dict[tuple[str, str], bytes] = {}
        self._last_rejection_ms: dict[tuple[str, str], int] = {}
        self._topic_cache: dict[str, KitTopic | None] = {}  # a kit always publishes on the same topics

    def message(self, topic: str, payload: bytes, now_s: float, retained: bool = False) -> Outcome:
        self.stats.received += 1
        where = self._topic_cache.get(topic)
        if where is None:
            where = self.topics.parse(topic)
            if len(self._topic_cache) >= 100_000:
                self._topic_cache.clear()
            self._topic_cache[topic] = where
        if where is None or where.kind not in (Kind.READINGS, Kind.STATUS):
            self.stats.ignored += 1
            return Outcome(drop=True)
        now_ms = int(now_s * 1000)
        now_s = now_ms / 1000  # the receipt time as recorded for de-duplication, so a copy re-dates identically
        try:
            if where.kind is Kind.READINGS:
                return self._readings(where.site, where.kit, payload, now_s, now_ms)
            return self._status(where.site, where.kit, payload, now_ms, retained)
        except MessageRejected as error:
            return self._rejected(where.site, where.kit, None, None, [error.rejection], now_ms, Outcome())

    def _readings(self, site: str, kit: str, payload: bytes, now_s: float, now_ms: int) -> Outcome:
        readings = decode_readings(payload, site, kit, now_s)
        key: Key = (site, kit, readings.boot, readings.seq)
        seen = self.dedup.see(key, now_ms)
        outcome = Outcome(key=key)
        if not seen.new:
            self.stats.duplicates += 1
            if seen.committed:
                outcome.drop = outcome.duplicate = True
                return outcome
            # a copy of a message whose points may not be stored yet: write it again with the first
            # receipt time, so its points land on the same timestamps (an idempotent overwrite)
            outcome.duplicate = True
            if seen.received_ms != now_ms and any(s.from_age for s in readings.samples):
                readings = decode_readings(payload, site, kit, seen.received_ms / 1000)
            outcome.lines = readings_lines(site, kit, readings.samples)
            outcome.samples = len(readings.samples)
            return outcome
        outcome.lines = readings_lines(site, kit, readings.samples)
        outcome.samples = len(readings.samples)
        late = sum(1 for s in readings.samples if s.time_ms < now_ms - LATE_MS)
        seen_line = self.activity.note(site, kit, readings.boot, readings.fw, outcome.samples, late, now_ms)
        if seen_line is not None:
            outcome.lines.append(seen_line)
        if readings.rejections:
            self._rejected(site, kit, readings.boot, readings.seq, readings.rejections, now_ms, outcome)
        return outcome

    def _status(self, site: str, kit: str, payload: bytes, now_ms: int, retained: bool) -> Outcome:
        if retained and self._last_status.get((site, kit)) == payload:
            return Outcome(drop=True)  # the broker handing back the retained status we already stored
        status = decode_status(payload)
        self._last_status[(site, kit)] = payload
        fields: dict[str, int | float | str] = {"state": status.state}
        for name in ("fw", "boot", "interval_s", "buffered", "dropped", "awake_ms"):
            value = getattr(status, name)
            if value is not None:
                fields[name] = value
        for name in ("battery", "rssi"):
            value = getattr(status, name)
            if value is not None:
                fields[name] = float(value)
        for name in ("sensors", "failed_sensors"):
            value = getattr(status, name)
            if value is not None:
                fields[name] = ",".join(value)
        try:
            return Outcome(lines=[line("kit_status", {"site": site, "kit": kit}, fields, now_ms)])
        except LineProtocolError as error:  # a sensor name line protocol cannot carry
            raise MessageRejected(Rejection(Reason.BAD_FIELD, f"the status cannot be stored: {error}")) from None

    def _rejected(self, site: str, kit: str, boot: int | None, seq: int | None, rejections: list[Rejection],
                  now_ms: int, outcome: Outcome) -> Outcome:
        self.stats.rejected_messages += 1
        self.stats.rejected += len(rejections)
        # one point per rejection; the time is bumped by a millisecond where needed so that two
        # rejections of one kit never share a timestamp (they would overwrite each other)
        last = self._last_rejection_ms.get((site, kit), 0)
        for rejection in rejections:
            reason = rejection.reason.value
            self.stats.by_reason[reason] = self.stats.by_reason.get(reason, 0) + 1
            last = max(now_ms, last + 1)
            outcome.lines.append(line("rejections", {"site": site, "kit": kit, "reason": reason},
                                      {"count": 1, "detail": rejection.message}, last))
        self._last_rejection_ms[(site, kit)] = last
        outcome.rejections = rejections
        outcome.notice_topic = self.topics.rejected(site, kit)
        outcome.notice = rejected_notice(boot, seq, rejections)
        return outcome

    def stored(self, outcome: Outcome) -> None:
        """Count an outcome whose points are now durable."""
        if outcome.key is not None and not outcome.duplicate:
            self.stats.stored_messages += 1
            self.stats.stored_points += outcome.samples

    def gateway_line(self, instance: str, now_ms: int, spool_depth: int, inflight: int) -> str:
        s = self.stats
        return line("gateway", {"instance": instance}, {
            "received": s.received, "stored_messages": s.stored_messages, "stored_points": s.stored_points,
            "duplicates": s.duplicates, "rejected": s.rejected, "spooled": s.spooled, "spool_depth": spool_depth,
            "inflight": inflight, "write_latency_ms_p50": float(s.latency_percentile(0.5)),
            "write_latency_ms_p99": float(s.latency_percentile(0.99)),
        }, now_ms)


@dataclass(slots=True)
class Batch:
    lines: list[str] = field(default_factory=list)
    tokens: list[Any] = field(default_factory=list)  # whatever the shell needs back when the batch is durable
    started: float = 0.0

    def body(self) -> bytes:
        return ("\n".join(self.lines) + "\n").encode()


class Batcher:
    """Groups lines into batches: a batch is due at ``max_points`` lines, ``max_messages`` messages or
    ``max_delay_s`` after its first, whichever comes first."""

    def __init__(self, max_points: int, max_delay_s: float, max_messages: int | None = None) -> None:
        self.max_points = max_points
        self.max_delay_s = max_delay_s
        self.max_messages = max_messages or max_points
        self.current = Batch()

    @property
    def empty(self) -> bool:
        return not self.current.tokens and not self.current.lines

    @property
    def full(self) -> bool:
        return len(self.current.lines) >= self.max_points or len(self.current.tokens) >= self.max_messages

    def add(self, lines: list[str], token: Any, now: float) -> bool:
        """Add a message's lines; True if the batch is now full."""
        if not self.current.tokens and not self.current.lines:
            self.current.started = now
        self.current.lines.extend(lines)
        self.current.tokens.append(token)
        return self.full

    def due_at(self) -> float | None:
        if not self.current.tokens and not self.current.lines:
            return None
        return self.current.started + self.max_delay_s

    def take(self) -> Batch | None:
        if not self.current.tokens and not self.current.lines:
            return None
        batch, self.current = self.current, Batch()
        return batch


__all__ = ["Batch", "Batcher", "Ingest", "KitActivity", "Outcome", "Readings", "Stats", "backoff"]
