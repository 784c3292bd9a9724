"""The fleet page's facts: every kit's health across schools, from one InfluxDB request, then sorted by need.

The facts are those of the Grafana Kit health and Data quality dashboards (dashboards/definition.py), for
schools that run no Grafana, and their thresholds are the dashboards' and alerts' own constants, so the
page and the alerts never disagree. The builders and the ordering are pure; ``fetch`` is the only I/O.
Each fact is its own ``last()`` statement (one field each), so InfluxDB reads only that field's points,
and every statement groups by site and kit: one request for 280 kits, never one per kit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from dashboards.alerts import REJECTION_BURST, SILENT_INTERVALS
from dashboards.definition import LOW_BATTERY_V
from lauks import influxql, schema
from lauks.influx import InfluxClient

# How far back a kit's last facts are looked for: a kit not heard from in this time is "not heard for more
# than 30 days". It bounds what InfluxDB reads; a longer look would cost every page load for dead kits.
LOOKBACK = timedelta(days=30)
HOUR, DAY = timedelta(hours=1), timedelta(days=1)

_SITE, _KIT, _REASON = (influxql.identifier(n) for n in (schema.SITE, schema.KIT, schema.REASON))
_BY_KIT = f"GROUP BY {_SITE}, {_KIT}"


@dataclass(frozen=True)
class Last:
    """One ``last()`` statement: which fact it fills, from which measurement and field."""

    fact: str
    measurement: str
    field: str


# The order is the statements' order in the request: ``statement_id`` picks the fact.
LASTS: tuple[Last, ...] = (
    Last("seen", schema.KIT_STATUS, schema.SEEN),
    Last("state", schema.KIT_STATUS, schema.STATE),
    Last("fw", schema.KIT_STATUS, schema.FW),
    Last("interval_s", schema.KIT_STATUS, schema.INTERVAL_S),
    Last("battery", schema.READINGS, schema.BATTERY),  # the dashboards read battery from readings first
    Last("status_battery", schema.KIT_STATUS, schema.BATTERY),
    Last("rssi", schema.READINGS, schema.RSSI),
    Last("status_rssi", schema.KIT_STATUS, schema.RSSI),
    Last("failed_sensors", schema.KIT_STATUS, schema.FAILED_SENSORS),
    Last("buffered", schema.KIT_STATUS, schema.BUFFERED),
    Last("dropped", schema.KIT_STATUS, schema.DROPPED),
)
BACKFILL, REJECTIONS_1H, REJECTIONS_24H = len(LASTS), len(LASTS) + 1, len(LASTS) + 2


def statements(now: datetime, site: str | None = None) -> str:
    """The one request's statements: each kit's last facts over ``LOOKBACK``, its late and stored samples of the
    last 24 h, and its rejections by reason over the last hour and 24 h. ``site`` narrows every statement."""
    only = f" AND {_SITE} = {influxql.string(site)}" if site else ""

    def since(span: timedelta) -> str:
        return f"time > {influxql.time_literal(now - span)}{only}"

    parts = [f"SELECT last({influxql.identifier(item.field)}) FROM {influxql.identifier(item.measurement)} "
             f"WHERE {since(LOOKBACK)} {_BY_KIT}" for item in LASTS]
    late, samples, count = (influxql.identifier(n) for n in (schema.LATE, schema.SAMPLES, schema.COUNT))
    parts.append(f'SELECT sum({late}) AS "late", sum({samples}) AS "samples" FROM '
                 f"{influxql.identifier(schema.KIT_STATUS)} WHERE {since(DAY)} {_BY_KIT}")
    for span in (HOUR, DAY):
        parts.append(f'SELECT sum({count}) AS "rejections" FROM {influxql.identifier(schema.REJECTIONS)} '
                     f"WHERE {since(span)} {_BY_KIT}, {_REASON}")
    return "; ".join(parts)


# --- one kit's facts ---------------------------------------------------------------------------------------


@dataclass
class KitFacts:
    """What the store says about one kit. ``None`` where it said nothing within ``LOOKBACK``."""

    site: str
    kit: str
    registered: bool = True  # False: readings or status arrived, but the register does not know the kit
    last_seen: datetime | None = None
    state: str | None = None
    state_time: datetime | None = None
    fw: str | None = None
    interval_s: int | None = None
    battery: float | None = None
    battery_time: datetime | None = None
    rssi: float | None = None
    rssi_time: datetime | None = None
    reported_failed: tuple[str, ...] = ()  # the last failed_sensors list any status message had
    reported_failed_at: datetime | None = None
    buffered: int | None = None
    dropped: int | None = None
    late_24h: int = 0
    samples_24h: int = 0
    rejections_1h: dict[str, int] = field(default_factory=dict)
    rejections_24h: dict[str, int] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.site, self.kit)

    @property
    def failed_sensors(self) -> tuple[str, ...]:
        """The failed sensors of the kit's last status message. A later message without the field does not
        repeat an older list: that list counts only if it came with the last state (the same message)."""
        if self.reported_failed_at is None:
            return ()
        if self.state_time is not None and self.reported_failed_at < self.state_time:
            return ()
        return self.reported_failed

    def silent_after_s(self, online_window_s: int) -> int:
        """How long without readings makes this kit silent: three of its intervals (the alert's rule), but never
        less than the online window, so that no kit is silent here while the site page still calls it online."""
        if self.interval_s:
            return max(SILENT_INTERVALS * self.interval_s, online_window_s)
        return online_window_s

    def silence_s(self, now: datetime) -> float | None:
        """Seconds since the kit's last readings; None if it sent none within ``LOOKBACK``."""
        return None if self.last_seen is None else max((now - self.last_seen).total_seconds(), 0.0)

    def is_silent(self, now: datetime, online_window_s: int) -> bool:
        silence = self.silence_s(now)
        return silence is None or silence > self.silent_after_s(online_window_s)

    @property
    def is_offline(self) -> bool:
        """Its last status is its MQTT last will ("offline"), and no readings came after it."""
        if self.state != "offline" or self.state_time is None:
            return False
        return self.last_seen is None or self.state_time >= self.last_seen

    @property
    def low_battery(self) -> bool:
        return self.battery is not None and self.battery < LOW_BATTERY_V

    @property
    def rejected_1h(self) -> int:
        return sum(self.rejections_1h.values())

    @property
    def rejected_24h(self) -> int:
        return sum(self.rejections_24h.values())

    @property
    def rejection_burst(self) -> bool:
        """More rejections in the last hour than the burst alert allows in 15 minutes: a wiring fault or a
        firmware bug, not noise."""
        return self.rejected_1h > REJECTION_BURST


# --- issues and the order of the list -----------------------------------------------------------------------

# What a kit needs, most urgent first: the index is the sort rank. Silent and offline kits need a visit, and
# so does a low battery; the rest can be looked at from here first.
ISSUES = ("silent", "offline", "low_battery", "failed_sensors", "rejection_burst", "dropped", "old_firmware",
          "backfill", "unregistered")


def issues(kit: KitFacts, now: datetime, online_window_s: int, newest_fw: str | None) -> list[str]:
    """The kit's issues (codes of ``ISSUES``), in ``ISSUES`` order."""
    found: set[str] = set()
    if kit.is_silent(now, online_window_s):
        found.add("silent")
    if kit.is_offline:
        found.add("offline")
    if kit.low_battery:
        found.add("low_battery")
    if kit.failed_sensors:
        found.add("failed_sensors")
    if kit.rejection_burst:
        found.add("rejection_burst")
    if kit.dropped:
        found.add("dropped")
    if newest_fw is not None and kit.fw is not None and kit.fw != newest_fw:
        found.add("old_firmware")
    if kit.late_24h:
        found.add("backfill")
    if not kit.registered:
        found.add("unregistered")
    return [code for code in ISSUES if code in found]


@dataclass(frozen=True)
class FleetRow:
    kit: KitFacts
    issues: tuple[str, ...]
    silence_s: float | None

    @property
    def needs_visit(self) -> bool:
        return any(code in ("silent", "offline", "low_battery") for code in self.issues)


def rank(row: FleetRow) -> tuple[Any, ...]:
    """Sort key: the most urgent issue first; among silent kits the longest silent first (a kit never heard in
    ``LOOKBACK`` after those, since it may not be set up yet); among low batteries the lowest first."""
    first = ISSUES.index(row.issues[0]) if row.issues else len(ISSUES)
    never_heard = row.silence_s is None
    silence = -(row.silence_s or 0.0) if first <= ISSUES.index("offline") else 0.0
    battery = row.kit.battery if row.kit.battery is not None else 99.0
    return (first, never_heard, silence, battery, -row.kit.rejected_1h, row.kit.site, row.kit.kit)


def rows(kits: Iterable[KitFacts], now: datetime, online_window_s: int) -> list[FleetRow]:
    """Every kit with its issues, what needs a visit first."""
    kits = list(kits)
    newest = newest_version(kit.fw for kit in kits if kit.fw)
    made = [FleetRow(kit, tuple(issues(kit, now, online_window_s, newest)), kit.silence_s(now)) for kit in kits]
    return sorted(made, key=rank)


# --- firmware ----------------------------------------------------------------------------------------------


_VERSION = re.compile(r"[vV]?(\d+(?:\.\d+)*)(.*)")
_PRE_RELEASE = re.compile(r"[-_.+]?(?:a|b|c|rc|alpha|beta|dev|pre)", re.IGNORECASE)


def version_key(text: str) -> tuple[int, tuple[int, ...], int, str]:
    """``1.10.0`` after ``1.9.2``, ``1.4.0rc1`` and ``1.4.0-beta`` before ``1.4.0``; a version without leading
    digits (``web-test``) before every numbered one, by its text."""
    match = _VERSION.fullmatch(text)
    if match is None:
        return (0, (), 0, text)
    numbers = [int(part) for part in match.group(1).split(".")]
    while len(numbers) > 1 and numbers[-1] == 0:  # 1.4 and 1.4.0 are one version
        numbers.pop()
    rest = match.group(2)
    return (1, tuple(numbers), 0 if _PRE_RELEASE.match(rest) else 1, rest)


def newest_version(versions: Iterable[str]) -> str | None:
    found = set(versions)
    return max(found, key=version_key) if found else None


@dataclass(frozen=True)
class FirmwareCount:
    version: str
    kits: int
    newest: bool


def firmware_counts(kits: Sequence[KitFacts]) -> list[FirmwareCount]:
    """Kits per firmware version, the newest version first."""
    counts: dict[str, int] = {}
    for kit in kits:
        if kit.fw:
            counts[kit.fw] = counts.get(kit.fw, 0) + 1
    newest = newest_version(counts)
    return [FirmwareCount(v, counts[v], v == newest) for v in sorted(counts, key=version_key, reverse=True)]


# --- rejections --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RejectionRow:
    site: str
    kit: str
    reason: str
    last_hour: int
    last_day: int


def rejection_rows(kits: Iterable[KitFacts]) -> list[RejectionRow]:
    """Each kit's rejections by reason, the most in the last hour first, then the most in 24 h."""
    found = [RejectionRow(kit.site, kit.kit, reason, kit.rejections_1h.get(reason, 0), day)
             for kit in kits for reason, day in kit.rejections_24h.items() if day or kit.rejections_1h.get(reason)]
    return sorted(found, key=lambda r: (-r.last_hour, -r.last_day, r.site, r.kit, r.reason))


# --- the summary -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    kits: int
    online: int
    silent: int
    low_battery: int
    rejecting: int  # kits with a rejection in the last 24 h
    backfilling: int  # kits with late samples in the last 24 h


def summary(made: Sequence[FleetRow]) -> Summary:
    def having(code: str) -> int:
        return sum(1 for row in made if code in row.issues)

    silent = sum(1 for row in made if "silent" in row.issues or "offline" in row.issues)
    return Summary(len(made), len(made) - silent, silent, having("low_battery"),
                   sum(1 for row in made if row.kit.rejected_24h), having("backfill"))


# --- reading the answer ------------------------------------------------------------------------------------


def _time(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, UTC)


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) else 0


def apply(kits: dict[tuple[str, str], KitFacts], statement_id: int, tags: dict[str, str],
          values: list[list[Any]]) -> None:
    """Put one series of the answer (times in ms) into ``kits``; a kit not there yet is added as unregistered."""
    key = (tags.get(schema.SITE, ""), tags.get(schema.KIT, ""))
    if not key[0] or not key[1] or not values:
        return
    kit = kits.get(key)
    if kit is None:
        kit = kits[key] = KitFacts(key[0], key[1], registered=False)
    row = values[0]
    if statement_id == BACKFILL:
        kit.late_24h, kit.samples_24h = _int(row[1]), _int(row[2])
        return
    if statement_id in (REJECTIONS_1H, REJECTIONS_24H):
        target = kit.rejections_1h if statement_id == REJECTIONS_1H else kit.rejections_24h
        reason = tags.get(schema.REASON, "")
        target[reason] = target.get(reason, 0) + _int(row[1])
        return
    if statement_id >= len(LASTS) or row[1] is None:
        return
    _set_last(kit, LASTS[statement_id].fact, _time(row[0]), row[1])


def _set_last(kit: KitFacts, fact: str, at: datetime, value: Any) -> None:
    if fact == "seen":
        kit.last_seen = at
    elif fact == "state":
        kit.state, kit.state_time = str(value), at
    elif fact == "fw":
        kit.fw = str(value)
    elif fact == "interval_s":
        kit.interval_s = int(value)
    elif fact in ("battery", "status_battery"):
        if kit.battery_time is None or at > kit.battery_time:  # the newer of readings and status messages
            kit.battery, kit.battery_time = float(value), at
    elif fact in ("rssi", "status_rssi"):
        if kit.rssi_time is None or at > kit.rssi_time:
            kit.rssi, kit.rssi_time = float(value), at
    elif fact == "failed_sensors":
        kit.reported_failed = tuple(name for name in str(value).split(",") if name)
        kit.reported_failed_at = at
    elif fact in ("buffered", "dropped"):
        setattr(kit, fact, int(value))


async def fetch(client: InfluxClient, database: str, registered: Iterable[tuple[str, str]], now: datetime,
                site: str | None = None) -> list[KitFacts]:
    """The facts of every registered kit (of ``site``, if given), and of any kit the store has but the
    register lacks, from one request."""
    kits = {key: KitFacts(*key) for key in registered}
    async for series in client.query(statements(now, site), database=database):
        apply(kits, series.statement_id, series.tags, series.values)
    return list(kits.values())
