"""The fleet page's facts: every kit's health across schools, from a few InfluxDB requests, then sorted by need.

The facts are those of the Grafana Kit health and Data quality dashboards (dashboards/definition.py), for
schools that run no Grafana, and their thresholds are the dashboards' and alerts' own constants, so the
page and the alerts never disagree. The builders and the ordering are pure; ``fetch`` is the only I/O.
Each fact is its own ``last()`` statement (one field each), so InfluxDB reads only that field's newest
points, and every statement groups by site and kit: one statement for 280 kits, never one per kit. The one
costly fact, a day of late samples, is summed per clock hour and the complete hours are kept.
"""

from __future__ import annotations

import asyncio
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
# Fields written with every reading or seen point ("busy") are asked for over the last hour first: a
# reporting kit has them there, and over 30 days InfluxDB reads every block of hundreds of kits. Only the
# kits with no readings in that hour are asked again, over LOOKBACK.
RECENT = HOUR

_SITE, _KIT, _REASON = (influxql.identifier(n) for n in (schema.SITE, schema.KIT, schema.REASON))
_BY_KIT = f"GROUP BY {_SITE}, {_KIT}"


@dataclass(frozen=True)
class Facts:
    """One statement of last facts: its SELECT list over one measurement, the facts its columns fill, and
    whether its row's time is that of the point (one selector, the other columns that point's fields)."""

    select: str
    measurement: str
    columns: tuple[str, ...]
    timed: bool = False  # the first column's fact also gets the row's time
    busy: bool = False  # written with every reading or seen point, not only with status messages


def _lasts(*names: tuple[str, str]) -> str:
    return ", ".join(f"last({influxql.identifier(field_name)}) AS {influxql.identifier(fact)}"
                     for field_name, fact in names)


# The order is the statements' order in the request: ``statement_id`` picks the facts. Few statements, since
# each costs InfluxDB a series per kit.
_STATUS = ((schema.INTERVAL_S, "interval_s"), (schema.BATTERY, "status_battery"), (schema.RSSI, "status_rssi"),
           (schema.FAILED_SENSORS, "failed_sensors"), (schema.BUFFERED, "buffered"), (schema.DROPPED, "dropped"))
FACTS: tuple[Facts, ...] = (
    # The last seen point, and the fw its readings message named.
    Facts(f"last({influxql.identifier(schema.SEEN)}) AS {influxql.identifier('seen')}, "
          f"{influxql.identifier(schema.FW)}", schema.KIT_STATUS, ("seen", "fw"), timed=True, busy=True),
    Facts(_lasts((schema.BATTERY, "battery"), (schema.RSSI, "rssi")), schema.READINGS, ("battery", "rssi"),
          busy=True),  # the dashboards read battery from readings; status messages' only where readings lack it
    # The last status message: its state and time, and the fields it came with (a kit sends them all at once;
    # its last will, "offline", has none, so the follow-up asks for them).
    Facts(f"last({influxql.identifier(schema.STATE)}) AS {influxql.identifier('state')}, "
          + ", ".join(f"{influxql.identifier(name)} AS {influxql.identifier(fact)}" for name, fact in _STATUS),
          schema.KIT_STATUS, ("state", *(fact for _name, fact in _STATUS)), timed=True),
    # The last over-the-air update a status message told of (issue 14), with the reason it failed, if it did.
    Facts(f"last({influxql.identifier(schema.UPDATE_STATE)}) AS {influxql.identifier('update_state')}, "
          f"{influxql.identifier(schema.UPDATE_VERSION)} AS {influxql.identifier('update_version')}, "
          f"{influxql.identifier(schema.UPDATE_REASON)} AS {influxql.identifier('update_reason')}",
          schema.KIT_STATUS, ("update_state", "update_version", "update_reason"), timed=True),
)
REJECTIONS_1H, REJECTIONS_24H = len(FACTS), len(FACTS) + 1
# The follow-up for kits with no readings in the last hour, or whose last status was their last will: the busy
# facts over LOOKBACK, and each status field's last value (a status message's, before the last will).
FOLLOW_UP: tuple[Facts, ...] = (*(item for item in FACTS if item.busy),
                                Facts(_lasts(*_STATUS), schema.KIT_STATUS, tuple(fact for _name, fact in _STATUS)))


def _select(item: Facts, where: str) -> str:
    return f"SELECT {item.select} FROM {influxql.identifier(item.measurement)} WHERE {where} {_BY_KIT}"


def statements(now: datetime, site: str | None = None) -> str:
    """``statement_list`` as one request's text."""
    return "; ".join(statement_list(now, site))


def statement_list(now: datetime, site: str | None = None) -> list[str]:
    """The facts' statements: each kit's last facts (busy ones over ``RECENT``, the rest over ``LOOKBACK``), and
    its rejections by reason over the last hour and 24 h. ``site`` narrows every statement. Status messages and
    rejections are rare points, so their 30 days and 24 h stay cheap for hundreds of kits."""
    only = f" AND {_SITE} = {influxql.string(site)}" if site else ""

    def since(span: timedelta) -> str:
        return f"time > {influxql.time_literal(now - span)}{only}"

    parts = [_select(item, since(RECENT if item.busy else LOOKBACK)) for item in FACTS]
    count = influxql.identifier(schema.COUNT)
    for span in (HOUR, DAY):
        parts.append(f'SELECT sum({count}) AS "rejections" FROM {influxql.identifier(schema.REJECTIONS)} '
                     f"WHERE {since(span)} {_BY_KIT}, {_REASON}")
    return parts


def follow_up(kits: Iterable[KitFacts]) -> list[tuple[str, str]]:
    """The kits the first answer left short: no readings in the last hour, or a last status without fields."""
    return [kit.key for kit in kits if kit.last_seen is None or (kit.state is not None and kit.interval_s is None)]


def older_statements(now: datetime, kits: Sequence[tuple[str, str]]) -> str:
    """The ``FOLLOW_UP`` facts over ``LOOKBACK`` for ``kits`` (site, kit)."""
    sites = sorted({site for site, _kit in kits})
    names = sorted({kit for _site, kit in kits})
    where = (f"time > {influxql.time_literal(now - LOOKBACK)} AND {_SITE} =~ {influxql.regex_exact(sites)} "
             f"AND {_KIT} =~ {influxql.regex_exact(names)}")
    return "; ".join(_select(item, where) for item in FOLLOW_UP)


# --- backfill: late samples per clock hour, complete hours kept ---------------------------------------------

BACKFILL_HOURS = 24  # "the last 24 h": the 24 complete clock hours before this one, and this one so far
# A seen point's time is when the gateway stored it, so an hour that has passed gets no new ones: except
# from the gateway's spool after the store was down, which the kept hours miss until they are fetched again.
# SETTLE: how long after its end an hour is taken as complete (the gateway's batches are in flight).
SETTLE = timedelta(minutes=2)
KEEP = timedelta(minutes=15)

HourSums = dict[tuple[str, str], tuple[int, int]]  # (site, kit) -> (late, samples)


def hour_start(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def backfill_statement(start: datetime) -> str:
    """Late and stored samples of every kit per clock hour from ``start``: summing a day of seen points is the
    one costly fact (a point per kit a minute), so only the hours not yet kept are asked for."""
    late, samples = influxql.identifier(schema.LATE), influxql.identifier(schema.SAMPLES)
    return (f'SELECT sum({late}) AS "late", sum({samples}) AS "samples" FROM {influxql.identifier(schema.KIT_STATUS)} '
            f"WHERE time >= {influxql.time_literal(start)} GROUP BY time(1h), {_SITE}, {_KIT} fill(none)")


@dataclass
class BackfillHours:
    """Per clock hour, each kit's late and stored samples; complete hours are kept for ``KEEP``, so a page load
    sums only the hours since (one hour, mostly) instead of a whole day of seen points."""

    hours: dict[datetime, HourSums] = field(default_factory=dict)
    fetched_at: dict[datetime, datetime] = field(default_factory=dict)

    def window(self, now: datetime) -> list[datetime]:
        current = hour_start(now)
        return [current - timedelta(hours=n) for n in range(BACKFILL_HOURS, -1, -1)]

    def first_missing(self, now: datetime) -> datetime:
        """The first hour of the window that must be asked for (the current one, if all the others are kept)."""
        for hour in self.window(now):
            fetched = self.fetched_at.get(hour)
            if fetched is None or now - fetched > KEEP:
                return hour
        return hour_start(now)

    def store(self, start: datetime, now: datetime, found: dict[datetime, HourSums]) -> None:
        """Keep the complete hours of an answer from ``start``; forget hours that left the window."""
        for hour in self.window(now):
            if hour >= start and hour + HOUR + SETTLE <= now:
                self.hours[hour] = found.get(hour, {})
                self.fetched_at[hour] = now
        oldest = self.window(now)[0]
        for hour in [h for h in self.hours if h < oldest]:
            del self.hours[hour]
            self.fetched_at.pop(hour, None)

    def totals(self, start: datetime, now: datetime, found: dict[datetime, HourSums]) -> HourSums:
        """Each kit's sums over the window: kept hours before ``start``, the answer's from it."""
        total: dict[tuple[str, str], tuple[int, int]] = {}
        for hour in self.window(now):
            sums = found.get(hour, {}) if hour >= start else self.hours.get(hour, {})
            for key, (late, samples) in sums.items():
                before = total.get(key, (0, 0))
                total[key] = (before[0] + late, before[1] + samples)
        return total


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
    battery: float | None = None  # from readings, else from status messages (``settle``)
    rssi: float | None = None
    status_battery: float | None = None
    status_rssi: float | None = None
    # Of the last status message with the list: the last will ("offline") has none, and says nothing of sensors.
    failed_sensors: tuple[str, ...] = ()
    buffered: int | None = None
    dropped: int | None = None
    late_24h: int = 0
    samples_24h: int = 0
    rejections_1h: dict[str, int] = field(default_factory=dict)
    rejections_24h: dict[str, int] = field(default_factory=dict)
    # The last over-the-air update the kit reported (its status message's ``update``): the version it was
    # offered, one of schema.UPDATE_STATES, why it failed or rolled back, and when it said so.
    update_version: str | None = None
    update_state: str | None = None
    update_reason: str | None = None
    update_time: datetime | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.site, self.kit)

    def settle(self) -> None:
        """Battery and signal from status messages where readings gave none."""
        if self.battery is None:
            self.battery = self.status_battery
        if self.rssi is None:
            self.rssi = self.status_rssi

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
    def update_failed(self) -> bool:
        """Its last update ended failed or rolled back (lauks.schema.UPDATE_FAILED_STATES)."""
        return self.update_state in schema.UPDATE_FAILED_STATES

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
ISSUES = ("silent", "offline", "low_battery", "failed_sensors", "rejection_burst", "update_failed", "dropped",
          "old_firmware", "backfill", "unregistered")


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
    if kit.update_failed:
        found.add("update_failed")
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


def update_rows(kits: Iterable[KitFacts]) -> list[KitFacts]:
    """The kits that reported an over-the-air update: failed and rolled back first, then those still under way,
    then the confirmed; the newest report first within each."""
    def order(kit: KitFacts) -> tuple[int, float, str, str]:
        group = 0 if kit.update_failed else 2 if kit.update_state == "confirmed" else 1
        when = -kit.update_time.timestamp() if kit.update_time else 0.0
        return (group, when, kit.site, kit.kit)

    return sorted((kit for kit in kits if kit.update_state), key=order)



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
    if statement_id in (REJECTIONS_1H, REJECTIONS_24H):
        target = kit.rejections_1h if statement_id == REJECTIONS_1H else kit.rejections_24h
        reason = tags.get(schema.REASON, "")
        target[reason] = target.get(reason, 0) + _int(row[1])
    elif statement_id < len(FACTS):
        _set_facts(kit, FACTS[statement_id], row)


def apply_older(kits: dict[tuple[str, str], KitFacts], statement_id: int, tags: dict[str, str],
                values: list[list[Any]]) -> None:
    """Put one series of the ``older_statements`` answer into ``kits`` (only kits already there: it asks for
    a superset when names repeat across sites). Over 30 days, so never older than what the last hour gave."""
    kit = kits.get((tags.get(schema.SITE, ""), tags.get(schema.KIT, "")))
    if kit is not None and values and statement_id < len(FOLLOW_UP):
        _set_facts(kit, FOLLOW_UP[statement_id], values[0])


def _set_facts(kit: KitFacts, item: Facts, row: list[Any]) -> None:
    at = _time(row[0])
    for index, (fact, value) in enumerate(zip(item.columns, row[1:], strict=False)):
        if value is None:
            continue
        if fact == "seen":
            kit.last_seen = at
        elif fact == "state":
            kit.state, kit.state_time = str(value), at if item.timed and index == 0 else None
        elif fact == "fw":
            kit.fw = str(value)
        elif fact == "interval_s":
            kit.interval_s = int(value)
        elif fact in ("battery", "rssi", "status_battery", "status_rssi"):
            setattr(kit, fact, float(value))
        elif fact == "failed_sensors":
            kit.failed_sensors = tuple(name for name in str(value).split(",") if name)
        elif fact in ("buffered", "dropped"):
            setattr(kit, fact, int(value))
        elif fact == "update_state":
            kit.update_state, kit.update_time = str(value), at
        elif fact in ("update_version", "update_reason"):
            setattr(kit, fact, str(value))


def hour_sums(series: Iterable[tuple[dict[str, str], list[list[Any]]]]) -> dict[datetime, HourSums]:
    """The backfill answer's rows (times in ms) by hour and kit."""
    found: dict[datetime, HourSums] = {}
    for tags, values in series:
        key = (tags.get(schema.SITE, ""), tags.get(schema.KIT, ""))
        for row in values:
            found.setdefault(_time(row[0]), {})[key] = (_int(row[1]), _int(row[2]))
    return found


async def fetch(client: InfluxClient, database: str, registered: Iterable[tuple[str, str]], now: datetime,
                site: str | None = None, backfill: BackfillHours | None = None) -> list[KitFacts]:
    """The facts of every registered kit (of ``site``, if given), and of any kit the store has but the
    register lacks. Each fact's statement and the hours of backfill not yet kept in ``backfill`` are requests
    sent at once (InfluxDB runs one request's statements one after another; several use every core); kits with
    no readings in the last hour, or whose last status was their last will, take one more, for their older
    facts."""
    kits = {key: KitFacts(*key) for key in registered}
    backfill = backfill if backfill is not None else BackfillHours()
    start = backfill.first_missing(now)

    async def one(statement_id: int, statement: str) -> None:
        async for series in client.query(statement, database=database):
            apply(kits, statement_id, series.tags, series.values)

    async def facts() -> None:
        # each statement a request of its own: InfluxDB runs one request's statements one after another, and
        # each of these costs it about 15 ms for 280 kits (a series per kit), so together they use every core
        await asyncio.gather(*(one(index, statement) for index, statement in enumerate(statement_list(now, site))))
        quiet = follow_up(kits.values())
        if quiet:
            older = {key: kits[key] for key in quiet}
            async for series in client.query(older_statements(now, quiet), database=database):
                apply_older(older, series.statement_id, series.tags, series.values)

    async def hours() -> dict[datetime, HourSums]:
        return hour_sums([(s.tags, s.values) async for s in client.query(backfill_statement(start),
                                                                            database=database)])

    _, found = await asyncio.gather(facts(), hours())
    backfill.store(start, now, found)
    for (kit_site, name), (late, samples) in backfill.totals(start, now, found).items():
        if site is not None and kit_site != site:
            continue
        kit = kits.get((kit_site, name))
        if kit is None:
            kit = kits[(kit_site, name)] = KitFacts(kit_site, name, registered=False)
        kit.late_24h, kit.samples_24h = late, samples
    for kit in kits.values():
        kit.settle()
    return list(kits.values())
