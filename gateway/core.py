"""The gateway's pure core: what to store, reject and count for each message, batching and backoff.

No I/O here: ``Ingest`` turns (topic, payload, time of receipt) into an ``Outcome`` (line protocol,
rejections, the notice for the kit, the de-duplication key); ``KitBuckets`` gives each kit its fair
share (a token bucket of messages and bytes); ``Batcher`` groups outcomes into writes by size and
age; ``backoff`` computes reconnect and retry delays. The shells in ``gateway.service`` and
``gateway.mqtt`` move the bytes.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from gateway.dedup import Dedup, Key
from lauks import schema
from lauks.contract import (
    MessageRejected,
    Readings,
    Reason,
    Rejection,
    Sample,
    decode_readings,
    decode_status,
    rate_limited,
    rejected_notice,
)
from lauks.lineprotocol import LineProtocolError, with_fields
from lauks.topics import Kind, KitTopic, Topics

if TYPE_CHECKING:
    from gateway.settings import GatewaySettings

T = TypeVar("T")  # what the shell gets back with a batch once it is durable (its messages' acks)

# rejected payloads kept per kit in the dead-letter log: a kit with a broken sensor rejected at every reading
# of a 1-minute interval keeps 10 in 10 minutes; one sending only garbage, 20 a second, would fill the 2 x
# 16 MiB log with its own in minutes
DEAD_LETTERS_PER_KIT = 200
DEAD_LETTER_WINDOW_S = 600.0
DEAD_LETTER_KITS = 10_000  # kits whose budget is tracked before finished windows are forgotten
LATE_MS = 5 * 60 * 1000  # a sample older than this when received is backfill after an outage
LATE_S_MIN_MS = schema.LATE_S_MIN * 1000  # a sample at least this old when received gets its late_s
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
    write_errors: int = 0  # writes InfluxDB failed, refused or left unanswered (the points were kept)
    processing_errors: int = 0  # a bug in our code while handling a message or building a batch
    refused_points: int = 0  # points InfluxDB refused as bad data (4xx); never retried
    dead_letters_skipped: int = 0  # rejected payloads not kept: the kit had used its dead-letter budget
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
    dead_letter: bool = False  # keep the raw payload in the dead-letter log, with ``rejections``
    duplicate: bool = False
    drop: bool = False  # nothing to write (a copy already stored, or not our topic): acknowledge at once
    samples: int = 0


@dataclass(slots=True)
class KitSeen:
    """One kit's activity since its last ``seen`` point."""

    boot: int
    fw: str | None
    samples: int = 0
    late: int = 0  # samples older than ``LATE_MS`` when received (backfill)
    late_from: int | None = None  # the oldest of those samples' times (ms): rollups redo their buckets from it
    last_emit_ms: int = 0
    pending: bool = False  # activity not yet in a ``seen`` point


class KitActivity:
    """The ``seen`` points of ``kit_status``: at most one per kit every 10 s, counting samples and backfill."""

    def __init__(self, every_ms: int = SEEN_EVERY_MS) -> None:
        self.every_ms = every_ms
        self._kits: dict[tuple[str, str], KitSeen] = {}

    def note(self, site: str, kit: str, boot: int, fw: str | None, samples: int, late: int,
             now_ms: int, late_from: int | None = None) -> str | None:
        """Count a message's ``samples``, ``late`` of them backfill, the oldest of those at ``late_from`` (ms)."""
        entry = self._kits.get((site, kit))
        if entry is None:
            entry = self._kits[(site, kit)] = KitSeen(boot, fw, last_emit_ms=-self.every_ms)
        entry.samples += samples
        entry.late += late
        if late_from is not None and (entry.late_from is None or late_from < entry.late_from):
            entry.late_from = late_from
        entry.boot = boot
        entry.fw = fw if fw is not None else entry.fw
        entry.pending = True
        if now_ms - entry.last_emit_ms >= self.every_ms:
            return self._emit(site, kit, entry, now_ms)
        return None

    def sweep(self, now_ms: int, force: bool = False) -> list[str]:
        """``seen`` points of kits with activity not yet reported and due (or all of them, ``force``)."""
        return [self._emit(site, kit, entry, now_ms) for (site, kit), entry in self._kits.items()
                if entry.pending and (force or now_ms - entry.last_emit_ms >= self.every_ms)]

    @staticmethod
    def _emit(site: str, kit: str, entry: KitSeen, now_ms: int) -> str:
        point = schema.seen_line(site, kit, now_ms, samples=entry.samples, late=entry.late, boot=entry.boot,
                                 fw=entry.fw)
        if entry.late and entry.late_from is not None:
            point = with_fields(point, {schema.LATE_FROM: entry.late_from})
        entry.samples = entry.late = 0
        entry.late_from = None
        entry.last_emit_ms = now_ms
        entry.pending = False
        return point


@dataclass(frozen=True, slots=True)
class KitLimits:
    """A kit's fair share: a token bucket of messages and one of bytes (docs/gateway.md, "Fair share per
    kit", says why these defaults). ``per_s`` 0 turns the limit off, ``bytes_per_s`` 0 the bytes one."""

    per_s: float = 20.0  # messages a second, sustained ...
    burst: int = 5_000  # ... once this many at once are used up
    bytes_per_s: float = 64 * 1024
    burst_bytes: int = 5 * 1024 * 1024
    notice_every_s: float = 10.0  # at most one rate_limited notice (and rejections point) per kit this often
    dead_letters: int = 10  # raw payloads kept of the rate-limited messages per kit ...
    dead_letter_window_s: float = 600.0  # ... in this long
    max_kits: int = 10_000  # buckets held at most (the broker's ACL lets only registered kits publish)
    # What the broker kept while the gateway was away (stopped, disconnected, or not reading) arrives in one
    # rush when it is back, as fast as the gateway reads: no kit's doing. Each second away lets every kit send
    # this much more than its share during the catch-up (a kit reporting every minute sends 1/60 of it).
    backlog_per_s: float = 1.0
    backlog_bytes_per_s: float = 4096.0

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> KitLimits:
        return cls(settings.gateway_kit_rate, settings.gateway_kit_burst, settings.gateway_kit_bytes_rate,
                   settings.gateway_kit_burst_bytes, backlog_per_s=settings.gateway_kit_backlog_rate,
                   backlog_bytes_per_s=settings.gateway_kit_backlog_bytes_rate)


BACKLOG_MAX_AWAY_S = 14 * 86400  # an absence counted at most this long
BACKLOG_MIN_CATCH_UP_S = 600.0  # the extra allowance lasts at least this long after the return ...
BACKLOG_MAX_CATCH_UP_S = 86400.0  # ... as long as the absence, at most a day


class KitBuckets:
    """The token buckets, one per (site, kit), and the throttle on what a limited kit costs us: one notice
    per ``notice_every_s``, a few dead letters per ``dead_letter_window_s``, the rest only counted.

    A bucket starts full and is refilled lazily on each message, so a check is a few float operations.
    A bucket idle long enough to be full again is the same as no bucket: those are evicted when the
    table reaches ``max_kits`` (and, if that frees too little, the oldest quarter goes)."""

    def __init__(self, limits: KitLimits) -> None:
        self.limits = limits
        self.rate = limits.per_s
        self.burst = float(limits.burst)
        self.byte_rate = float(limits.bytes_per_s)
        self.burst_bytes = float(limits.burst_bytes) if limits.bytes_per_s else math.inf
        self.full_after_s = max(self.burst / self.rate, limits.burst_bytes / limits.bytes_per_s
                                if limits.bytes_per_s else 0.0)
        # (site, kit) -> [messages, bytes, last_s, unreported, last_notice_s, kept, kept_since_s, backlog]
        self._kits: dict[tuple[str, str], list[float]] = {}
        self.unreported: set[tuple[str, str]] = set()  # kits with limited messages not yet in a notice
        self.evictions = 0
        # the catch-up allowance after an absence: (messages, bytes) for each kit, once, until ``_backlog_until``
        self._backlog = 0  # which absence (0: none yet); a bucket's last field says which it was given
        self._backlog_extra = (0.0, 0.0)
        self._backlog_until = -math.inf

    def allow_backlog(self, away_s: float, now_s: float) -> None:
        """The gateway was away (or not reading) for ``away_s``: for a while, every kit may send what the
        broker kept for it meanwhile on top of its share. A newer absence replaces an older one's allowance."""
        away_s = min(max(away_s, 0.0), BACKLOG_MAX_AWAY_S)
        if away_s <= 0:
            return
        self._backlog += 1
        self._backlog_extra = (away_s * self.limits.backlog_per_s, away_s * self.limits.backlog_bytes_per_s)
        self._backlog_until = now_s + min(max(BACKLOG_MIN_CATCH_UP_S, away_s), BACKLOG_MAX_CATCH_UP_S)

    def __len__(self) -> int:
        return len(self._kits)

    def take(self, key: tuple[str, str], size: int, now_s: float) -> bool:
        """True if the kit may send this message (its tokens are taken); False if it is over its share."""
        entry = self._kits.get(key)
        if entry is None:
            if len(self._kits) >= self.limits.max_kits:
                self._evict(now_s)
            entry = self._kits[key] = [self.burst, self.burst_bytes, now_s, 0, -math.inf, 0, -math.inf, 0]
        else:
            elapsed = now_s - entry[2]
            if elapsed > 0:  # a clock that steps back refills nothing
                # a bucket over its burst holds a catch-up allowance: it is spent, not refilled, and goes
                # when the catch-up is over
                if entry[0] < self.burst or now_s >= self._backlog_until:
                    entry[0] = min(self.burst, entry[0] + elapsed * self.rate)
                if entry[1] < self.burst_bytes or now_s >= self._backlog_until:
                    entry[1] = min(self.burst_bytes, entry[1] + elapsed * self.byte_rate)
                entry[2] = now_s
        if entry[7] != self._backlog and now_s < self._backlog_until:
            entry[7] = self._backlog
            entry[0] += self._backlog_extra[0]
            entry[1] += self._backlog_extra[1]
        if entry[0] >= 1 and entry[1] >= size:
            entry[0] -= 1
            entry[1] -= size
            return True
        return False

    def limited(self, key: tuple[str, str], now_s: float) -> tuple[int, float, bool]:
        """A message of this kit was limited: (how many limited messages to report now, 0 for none; the
        seconds they span, ``inf`` for a first report; whether to keep this payload as a dead letter)."""
        entry = self._kits[key]
        entry[3] += 1
        report, over_s = self._report(key, entry, now_s)
        if now_s - entry[6] >= self.limits.dead_letter_window_s:
            entry[5] = 0
            entry[6] = now_s
        keep = entry[5] < self.limits.dead_letters
        if keep:
            entry[5] += 1
        return report, over_s, keep

    def take_unreported(self, key: tuple[str, str], now_s: float) -> tuple[int, float]:
        """(The limited messages of a kit not yet reported, the seconds they span) if a report is due now,
        else (0, 0): at most one report per ``notice_every_s``, whether in a notice or not."""
        entry = self._kits.get(key)
        if entry is None:
            self.unreported.discard(key)
            return 0, 0.0
        return self._report(key, entry, now_s)

    def _report(self, key: tuple[str, str], entry: list[float], now_s: float) -> tuple[int, float]:
        over_s = now_s - entry[4]
        if over_s < self.limits.notice_every_s:
            self.unreported.add(key)
            return 0, 0.0
        count, entry[3], entry[4] = int(entry[3]), 0, now_s
        self.unreported.discard(key)
        return count, over_s

    def _evict(self, now_s: float) -> None:
        """Free a quarter of the table: the buckets full again first (forgetting them changes nothing), then
        the oldest of those not limited lately, then the oldest (first seen)."""
        quarter = max(1, self.limits.max_kits // 4)
        recent = self.limits.notice_every_s
        chosen = {key for key, entry in self._kits.items() if now_s - entry[2] >= self.full_after_s and not entry[3]}
        for calm_only in (True, False):
            for key, entry in self._kits.items():
                if len(chosen) >= quarter:
                    break
                if not calm_only or (not entry[3] and now_s - entry[4] >= recent):
                    chosen.add(key)
        for key in chosen:
            del self._kits[key]
            self.unreported.discard(key)
        self.evictions += len(chosen)


def readings_lines(site: str, kit: str, samples: list[Sample], received_ms: int,
                   facts: bool | None = None) -> list[str]:
    """The ``readings`` points of a message's samples, with the ingest facts of those that have any: ``late_s``
    (whole seconds from its time to ``received_ms``) on a sample at least ``schema.LATE_S_MIN`` s old, and
    ``from_age=1i`` on one dated from 'age'. An on-time sample's point is ``schema.readings_lines``' alone,
    byte for byte. ``facts`` says whether any sample has one when the caller knows (``Ingest`` finds out in the
    loop it counts backfill with), which spares the samples a second look; None: look."""
    lines = schema.readings_lines(site, kit, samples)
    late_at = received_ms - LATE_S_MIN_MS
    if facts is None:
        facts = any(s.time_ms <= late_at or s.from_age for s in samples)
    if not facts:
        return lines
    # sample_lines leaves out a sample without values, so the points follow the samples that have some. The
    # facts go in before the timestamp (after the line's last space), written here rather than by
    # ``lineprotocol.with_fields``: backfill comes in rushes, and their names need no escaping.
    i = 0
    for s in samples:
        if not s.values:
            continue
        t = s.time_ms
        if t <= late_at:
            line = lines[i]
            cut = line.rfind(" ")
            lines[i] = f"{line[:cut]}{_LATE_S}{(received_ms - t) // 1000}i{_FROM_AGE if s.from_age else ''}{line[cut:]}"
        elif s.from_age:
            line = lines[i]
            cut = line.rfind(" ")
            lines[i] = f"{line[:cut]}{_FROM_AGE}{line[cut:]}"
        i += 1
    return lines


_LATE_S = f",{schema.LATE_S}="
_FROM_AGE = f",{schema.FROM_AGE}=1i"


class Ingest:
    """Decides, message by message, what to write; keeps the counters and the per-kit state."""

    def __init__(self, topics: Topics, dedup: Dedup, stats: Stats | None = None,
                 limits: KitLimits | None = None) -> None:
        self.topics = topics
        self.dedup = dedup
        self.stats = stats or Stats()
        self.activity = KitActivity()
        self.buckets = KitBuckets(limits) if limits is not None and limits.per_s > 0 else None
        self._last_status: dict[tuple[str, str], bytes] = {}
        self._last_rejection_ms: dict[tuple[str, str], int] = {}
        self._dead_letter_budget: dict[tuple[str, str], list[float]] = {}  # kit -> [kept, window start (s)]
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
        buckets = self.buckets
        if buckets is not None:  # before decoding: a flood must cost us as little as possible
            kit_key = (where.site, where.kit)
            if not buckets.take(kit_key, len(payload), now_s):
                return self._rate_limited(where.site, where.kit, kit_key, now_s, now_ms)
        try:
            if where.kind is Kind.READINGS:
                outcome = self._readings(where.site, where.kit, payload, now_s, now_ms)
            else:
                outcome = self._status(where.site, where.kit, payload, now_ms, retained)
        except MessageRejected as error:
            outcome = self._rejected(where.site, where.kit, None, None, [error.rejection], now_ms, Outcome())
        if buckets is not None and buckets.unreported and kit_key in buckets.unreported and not outcome.drop:
            # the kit is back within its share: the count of its messages limited since the last report
            # goes into InfluxDB with this message, at most once per notice interval (the notice itself
            # waits for the next limited message)
            count, over_s = buckets.take_unreported(kit_key, now_s)
            if count:
                self._limited_line(where.site, where.kit, count, over_s, now_ms, outcome)
        return outcome

    def _rate_limited(self, site: str, kit: str, kit_key: tuple[str, str], now_s: float, now_ms: int) -> Outcome:
        """Acknowledged at once and not stored; a notice and a rejections point at most every
        ``notice_every_s``, the raw payload of only the first few, everything counted."""
        buckets = self.buckets
        assert buckets is not None
        stats = self.stats
        stats.rejected_messages += 1
        stats.rejected += 1
        stats.by_reason["rate_limited"] = stats.by_reason.get("rate_limited", 0) + 1
        report, over_s, keep = buckets.limited(kit_key, now_s)
        if not report and not keep:
            return Outcome(drop=True)
        outcome = Outcome(drop=True, dead_letter=keep)
        if not report:  # only the dead letter, which says why it is there
            outcome.rejections = [rate_limited(1, buckets.rate, buckets.byte_rate or math.inf, None)]
            return outcome
        rejection = self._limited_line(site, kit, report, over_s, now_ms, outcome)
        outcome.rejections = [rejection]
        outcome.drop = False  # its rejections point is written, and the message acknowledged, with a batch
        outcome.notice_topic = self.topics.rejected(site, kit)
        outcome.notice = rejected_notice(None, None, [rejection])
        return outcome

    def _limited_line(self, site: str, kit: str, count: int, over_s: float, now_ms: int,
                      outcome: Outcome) -> Rejection:
        """One ``rejections`` point for ``count`` rate-limited messages, added to ``outcome``."""
        assert self.buckets is not None
        rejection = rate_limited(count, self.buckets.rate, self.buckets.byte_rate or math.inf,
                                 over_s if math.isfinite(over_s) else None)
        at = max(now_ms, self._last_rejection_ms.get((site, kit), 0) + 1)
        self._last_rejection_ms[(site, kit)] = at
        # its parts: no field, the count as the value, the message rate as the bound
        outcome.lines.append(schema.rejection_line(site, kit, rejection.reason.value, rejection.message, at, count,
                                                   bad_value=count, bound=rejection.limit))
        return rejection

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
            # its lag as measured at the first receipt too, so the copy's points are the very same bytes
            outcome.lines = readings_lines(site, kit, readings.samples, seen.received_ms)
            outcome.samples = len(readings.samples)
            return outcome
        late = 0
        late_from: int | None = None
        late_before = now_ms - LATE_MS
        late_s_at = now_ms - LATE_S_MIN_MS
        facts = False
        for s in readings.samples:
            t = s.time_ms
            if t <= late_s_at or s.from_age:
                facts = True
                if t < late_before:
                    late += 1
                    if late_from is None or t < late_from:
                        late_from = t
        outcome.lines = readings_lines(site, kit, readings.samples, now_ms, facts)
        outcome.samples = len(readings.samples)
        seen_line = self.activity.note(site, kit, readings.boot, readings.fw, outcome.samples, late, now_ms,
                                       late_from)
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
        try:
            return Outcome(lines=[schema.status_line(site, kit, status, now_ms)])
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
            outcome.lines.append(schema.rejection_line(
                site, kit, reason, rejection.message, last, field_name=rejection.field, bad_value=rejection.value,
                bound=rejection.limit, sample_index=rejection.sample))
        self._last_rejection_ms[(site, kit)] = last
        outcome.rejections = rejections
        outcome.notice_topic = self.topics.rejected(site, kit)
        outcome.notice = rejected_notice(boot, seq, rejections)
        outcome.dead_letter = self._may_keep_dead_letter((site, kit), now_ms / 1000)
        return outcome

    def _may_keep_dead_letter(self, kit: tuple[str, str], now_s: float) -> bool:
        """At most ``DEAD_LETTERS_PER_KIT`` rejected payloads per kit in ``DEAD_LETTER_WINDOW_S``: a kit sending
        nothing but bad messages within its share must not push every other kit's out of the bounded log.
        The rejections are still counted, stored in InfluxDB and sent to the kit."""
        budget = self._dead_letter_budget.get(kit)
        if budget is None or now_s - budget[1] >= DEAD_LETTER_WINDOW_S or now_s < budget[1]:
            if len(self._dead_letter_budget) >= DEAD_LETTER_KITS:  # forget the windows that are over
                self._dead_letter_budget = {k: b for k, b in self._dead_letter_budget.items()
                                            if now_s - b[1] < DEAD_LETTER_WINDOW_S}
            budget = self._dead_letter_budget[kit] = [0, now_s]
        if budget[0] >= DEAD_LETTERS_PER_KIT:
            self.stats.dead_letters_skipped += 1
            return False
        budget[0] += 1
        return True

    def stored(self, outcome: Outcome) -> None:
        """Count an outcome whose points are now durable."""
        if outcome.key is not None and not outcome.duplicate:
            self.stats.stored_messages += 1
            self.stats.stored_points += outcome.samples

    def gateway_line(self, instance: str, now_ms: int, spool_depth: int, inflight: int) -> str:
        s = self.stats
        return schema.gateway_line(
            instance, now_ms, received=s.received, stored_messages=s.stored_messages, stored_points=s.stored_points,
            duplicates=s.duplicates, rejected=s.rejected, spooled=s.spooled, spool_depth=spool_depth,
            inflight=inflight, write_latency_ms_p50=s.latency_percentile(0.5),
            write_latency_ms_p99=s.latency_percentile(0.99))


@dataclass(slots=True)
class Batch(Generic[T]):
    """Lines to write in one request, and the tokens to hand back once they are durable."""

    lines: list[str] = field(default_factory=list)
    tokens: list[T] = field(default_factory=list)
    messages: int = 0  # messages added (a message with no token counts too)
    started: float = 0.0

    def body(self) -> bytes:
        return ("\n".join(self.lines) + "\n").encode()


class Batcher(Generic[T]):
    """Groups lines into batches: a batch is due at ``max_points`` lines, ``max_messages`` messages or
    ``max_delay_s`` after its first, whichever comes first."""

    def __init__(self, max_points: int, max_delay_s: float, max_messages: int | None = None) -> None:
        self.max_points = max_points
        self.max_delay_s = max_delay_s
        self.max_messages = max_messages or max_points
        self.current: Batch[T] = Batch()

    @property
    def empty(self) -> bool:
        return not self.current.messages and not self.current.lines

    @property
    def full(self) -> bool:
        return len(self.current.lines) >= self.max_points or self.current.messages >= self.max_messages

    def add(self, lines: list[str], token: T | None, now: float) -> bool:
        """Add a message's lines and its token (None: nothing to hand back); True if the batch is now full."""
        if self.empty:
            self.current.started = now
        self.current.lines.extend(lines)
        self.current.messages += 1
        if token is not None:
            self.current.tokens.append(token)
        return self.full

    def due_at(self) -> float | None:
        if self.empty:
            return None
        return self.current.started + self.max_delay_s

    def take(self) -> Batch[T] | None:
        if self.empty:
            return None
        batch, self.current = self.current, Batch()
        return batch


__all__ = ["Batch", "Batcher", "Ingest", "KitActivity", "KitBuckets", "KitLimits", "KitSeen", "Outcome", "Readings",
           "Stats", "backoff", "readings_lines"]
