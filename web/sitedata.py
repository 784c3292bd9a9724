"""The live facts of a site's kits, as the home, site and fleet pages show them: status, latest values, sparklines.

Pure query builders and rules first, then the async fetchers (the I/O edge). Each fetcher is one request to
InfluxDB for all kits at once (several statements in one request, each ``GROUP BY kit``), and each is
bounded in time, so a page costs the same with a year of one-minute data as with a day of it:

- latest values: one ``LAST`` per quantity over the last ``LATEST_DAYS`` days (one statement each, so each
  value keeps its own time: ``LAST(*)`` would give every value the window's start as its time, and a value
  whose sensor died hours ago must show how old it is);
- status: the newest ``seen``, ``state``, battery, signal, interval and firmware of ``kit_status``;
- sparklines: the last ``SPARK_HOURS`` hours in ``SPARK_BUCKET_S`` buckets, ``GROUP BY time(...), kit``.

Site and kit names reach InfluxQL only through ``lauks.influxql`` (and the pages take them from the registry
first); field and measurement names come from ``lauks.schema`` and the catalog.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lauks import influxql, schema
from lauks.catalog import CATALOG, QUANTITY_NAMES
from lauks.influx import InfluxClient
from web.i18n import N_, Translator

LATEST_DAYS = 30  # a value older than this is "no reading in 30 days"
RECENT_HOURS = 6  # latest values are looked for here first; only kits with none here are looked for in 30 days
SPARK_HOURS = 24
SPARK_BUCKET_S = 900  # 96 buckets a day: about one a pixel of a 6rem sparkline
STALE_INTERVALS = 3  # a kit is silent, and its values stale, after this many of its reporting intervals
MIN_STALE_S = 60  # never less than this (the gateway marks a kit seen at most every 10 s)

# The quantities a card lists as values; battery and signal are shown as the kit's health instead.
HEALTH = (schema.BATTERY, schema.RSSI)
VALUE_QUANTITIES: tuple[str, ...] = tuple(q for q in QUANTITY_NAMES if q not in HEALTH)

# Short names of the quantities, as a card or a chart title shows them (the catalog's descriptions are the long
# form). Other pages may use ``quantity_label``.
QUANTITY_LABELS: dict[str, str] = {
    "temperature": N_("Temperature"),
    "soil_temperature": N_("Soil temperature"),
    "water_temperature": N_("Water temperature"),
    "humidity": N_("Humidity"),
    "pressure": N_("Air pressure"),
    "light": N_("Light"),
    "uv_index": N_("UV index"),
    "soil_moisture": N_("Soil moisture"),
    "wind_speed": N_("Wind speed"),
    "wind_gust": N_("Wind gust"),
    "wind_direction": N_("Wind direction"),
    "rain": N_("Rain"),
    "pm1": N_("Fine dust PM1"),
    "pm2_5": N_("Fine dust PM2.5"),
    "pm10": N_("Dust PM10"),
    "co2": N_("Carbon dioxide (CO₂)"),
    "tvoc": N_("Volatile organic compounds"),
    "noise": N_("Noise"),
    "battery": N_("Battery"),
    "rssi": N_("Wi-Fi signal"),
}

_READINGS = influxql.identifier(schema.READINGS)
_STATUS = influxql.identifier(schema.KIT_STATUS)
_SITE = influxql.identifier(schema.SITE)
_KIT = influxql.identifier(schema.KIT)
# kit_status fields fetched by ``status_statement``, in the order of its statements
STATUS_FIELDS: tuple[str, ...] = (schema.SEEN, schema.STATE, schema.BATTERY, schema.RSSI, schema.INTERVAL_S,
                                  schema.FW)
# Written with every seen point (at most every 10 s per kit): asked for over the last RECENT_HOURS first, since
# over 30 days InfluxDB reads every block of every kit; the rest come with status messages, which are rare.
BUSY: tuple[str, ...] = (schema.SEEN, schema.FW)


def quantity_label(t: Translator, name: str) -> str:
    """``Temperatūra``: a quantity's short name in the reader's language (its catalog name if it has none)."""
    label = QUANTITY_LABELS.get(name)
    return t.gettext(label) if label else name


# --- what the pages show ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Value:
    """A kit's newest value of one quantity, and when it was measured."""

    quantity: str
    value: float
    time: datetime


@dataclass(slots=True)
class Status:
    """The newest facts of a kit's ``kit_status`` points (each ``None`` when the kit never sent it)."""

    seen: datetime | None = None  # the gateway stored readings of the kit then
    state: str | None = None  # the kit's own word in its last status message
    state_time: datetime | None = None
    battery: float | None = None
    rssi: float | None = None
    interval_s: int | None = None
    fw: str | None = None

    @property
    def heard(self) -> datetime | None:
        """The last time the kit was heard from, by readings or by a status message."""
        return max((t for t in (self.seen, self.state_time) if t is not None), default=None)


def stale_after_s(interval_s: int | None, window_s: int) -> int:
    """Seconds after which a kit is silent and its values stale: 3 of its reporting intervals when it said
    its interval, else the server's online window. A kit that reports every minute is missed after 3
    minutes, not 15; one that sleeps for 20 minutes is not called silent between two reports."""
    if interval_s and interval_s > 0:
        return max(STALE_INTERVALS * interval_s, MIN_STALE_S)
    return window_s


def is_online(status: Status | None, window_s: int, now: datetime) -> bool:
    """Heard from within ``stale_after_s``, unless its newest word was a status saying it is not online
    (a kit that says "offline" as it goes to sleep is not online for the next minutes)."""
    if status is None or status.heard is None:
        return False
    if now - status.heard > timedelta(seconds=stale_after_s(status.interval_s, window_s)):
        return False
    if status.state is not None and status.state_time is not None and (
            status.seen is None or status.state_time >= status.seen):
        return status.state == "online"
    return True


def is_stale(measured: datetime, now: datetime, threshold_s: int) -> bool:
    """A value older than the threshold is stale: shown with its age, never as if it were current."""
    return now - measured > timedelta(seconds=threshold_s)


@dataclass(slots=True)
class KitLive:
    """Everything the site page's card of one kit shows, worked out from the three fetchers' answers."""

    kit: str
    status: Status | None
    online: bool
    threshold_s: int  # values older than this are stale
    values: list[Value] = field(default_factory=list)  # in catalog order, battery and signal apart
    sparks: dict[str, list[float | None]] = field(default_factory=dict)
    health: dict[str, Value] = field(default_factory=dict)  # battery and signal of readings

    @property
    def battery(self) -> float | None:
        """The newest battery voltage: of readings or of a status message, whichever is newer."""
        return self._health(schema.BATTERY)

    @property
    def rssi(self) -> float | None:
        """The newest Wi-Fi signal in dBm, of readings or of a status message."""
        return self._health(schema.RSSI)

    def _health(self, name: str) -> float | None:
        reading = self.health.get(name)
        status_value: float | None = getattr(self.status, name) if self.status else None
        if reading is None:
            return status_value
        state_time = self.status.state_time if self.status else None
        if status_value is not None and state_time is not None and state_time > reading.time:
            return status_value
        return reading.value


def kit_live(kit: str, status: Status | None, latest: dict[str, Value], sparks: dict[str, list[float | None]],
             window_s: int, now: datetime) -> KitLive:
    """A kit's card: online or silent, its values in catalog order (health apart), their sparklines."""
    threshold = stale_after_s(status.interval_s if status else None, window_s)
    values = [latest[q] for q in VALUE_QUANTITIES if q in latest]
    health = {q: latest[q] for q in HEALTH if q in latest}
    return KitLive(kit, status, is_online(status, window_s, now), threshold, values,
                   {q: line for q, line in sparks.items() if q in latest}, health)


# --- InfluxQL --------------------------------------------------------------------------------------------


def _since(moment: datetime) -> str:
    return f"time >= {influxql.time_literal(moment)}"


def latest_statement(site: str, since: datetime, quantities: Iterable[str] = QUANTITY_NAMES,
                     kits: Iterable[str] | None = None) -> str:
    """One ``LAST`` per quantity since ``since``, grouped by kit: statement i answers quantity i."""
    where = f"{_SITE} = {influxql.string(site)} AND {_since(since)}"
    chosen = list(kits) if kits is not None else []
    if chosen:
        where += f" AND {_KIT} =~ {influxql.regex_exact(chosen)}"
    return "; ".join(f"SELECT LAST({influxql.identifier(q)}) AS {influxql.identifier(q)} FROM {_READINGS} "
                     f"WHERE {where} GROUP BY {_KIT}" for q in quantities)


def status_statement(site: str | None, since: datetime, busy_since: datetime | None = None,
                     names: tuple[str, ...] = STATUS_FIELDS, kits: Iterable[tuple[str, str]] | None = None) -> str:
    """The newest of each of ``names`` since ``since`` (the fields written with every seen point, ``BUSY``, since
    ``busy_since`` when given), grouped by site and kit; every site when ``site`` is None, only ``kits`` (site,
    kit) when given (InfluxDB is told their sites and names: a pair of another site may come back too)."""
    where = "" if site is None else f" AND {_SITE} = {influxql.string(site)}"
    chosen = list(kits) if kits is not None else []
    if chosen:
        where += (f" AND {_SITE} =~ {influxql.regex_exact(sorted({s for s, _k in chosen}))}"
                  f" AND {_KIT} =~ {influxql.regex_exact(sorted({k for _s, k in chosen}))}")

    def start(name: str) -> datetime:
        return busy_since if busy_since is not None and name in BUSY else since

    return "; ".join(f"SELECT LAST({influxql.identifier(name)}) AS {influxql.identifier(name)} FROM {_STATUS} "
                     f"WHERE {_since(start(name))}{where} GROUP BY {_SITE}, {_KIT}" for name in names)


def spark_window(now: datetime, hours: int = SPARK_HOURS, bucket_s: int = SPARK_BUCKET_S) -> tuple[datetime, datetime]:
    """The sparklines' window: ``hours`` back from the end of the current bucket, on bucket boundaries
    (InfluxDB's ``GROUP BY time`` buckets start at multiples of their size since the epoch)."""
    end_s = (int(now.timestamp()) // bucket_s + 1) * bucket_s
    end = datetime.fromtimestamp(end_s, UTC)
    return end - timedelta(hours=hours), end


def spark_statement(site: str, start: datetime, end: datetime, bucket_s: int = SPARK_BUCKET_S,
                    quantities: Iterable[str] = VALUE_QUANTITIES) -> str:
    """Each quantity's bucket aggregate (its catalog default: rain sums, the rest average) per kit."""
    fields = ", ".join(f"{CATALOG[q].default_agg.upper()}({influxql.identifier(q)}) AS {influxql.identifier(q)}"
                       for q in quantities)
    return (f"SELECT {fields} FROM {_READINGS} WHERE {_SITE} = {influxql.string(site)} AND {_since(start)} "
            f"AND time < {influxql.time_literal(end)} GROUP BY time({bucket_s}s), {_KIT} fill(none)")


# --- fetchers --------------------------------------------------------------------------------------------


def _time(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, UTC)


async def stored_quantities(client: InfluxClient, database: str) -> tuple[str, ...]:
    """The catalog's quantities that ``readings`` holds at all (``SHOW FIELD KEYS``, answered from InfluxDB's
    index, so asked each time: a kit's first reading of a new quantity shows at once): a site page asks for these
    rather than the whole catalog, and InfluxDB reads a field's blocks for each one asked."""
    names: set[str] = set()
    async for series in client.query(f"SHOW FIELD KEYS FROM {_READINGS}", database=database):
        names.update(str(row[0]) for row in series.values)
    return tuple(q for q in QUANTITY_NAMES if q in names)


async def _latest(client: InfluxClient, database: str, site: str, since: datetime, quantities: tuple[str, ...],
                  kits: Iterable[str] | None, found: dict[str, dict[str, Value]]) -> None:
    async for series in client.query(latest_statement(site, since, quantities, kits), database=database):
        quantity = quantities[series.statement_id]
        kit = series.tags.get(schema.KIT, "")
        for t, value in series.values:
            if isinstance(value, int | float):
                found.setdefault(kit, {})[quantity] = Value(quantity, float(value), _time(t))


async def fetch_latest(client: InfluxClient, database: str, site: str, now: datetime,
                       days: int = LATEST_DAYS, kits: Iterable[str] | None = None) -> dict[str, dict[str, Value]]:
    """kit -> quantity -> its newest value of the last ``days`` days.

    With ``kits`` (the site's, or one), the last ``RECENT_HOURS`` hours are read first, and the ``days`` only
    for the kits that sent nothing in them: a silent kit's old values are found (and shown as stale), while a kit
    that reports costs a short read, not a month's. A sensor that stopped while its kit reports on is left out of
    the latest values then; the kit's status says which sensors failed.
    """
    quantities = await stored_quantities(client, database)
    found: dict[str, dict[str, Value]] = {}
    if not quantities:
        return found
    if kits is None:
        await _latest(client, database, site, now - timedelta(days=days), quantities, None, found)
        return found
    wanted = list(dict.fromkeys(kits))
    if not wanted:
        return found
    await _latest(client, database, site, now - timedelta(hours=RECENT_HOURS), quantities, wanted, found)
    silent = [kit for kit in wanted if kit not in found]
    if silent:
        await _latest(client, database, site, now - timedelta(days=days), quantities, silent, found)
    return found


def _apply_status(found: dict[tuple[str, str], Status], name: str, key: tuple[str, str],
                  values: Iterable[Any]) -> None:
    for t, value in values:
        if value is None:
            continue
        entry = found.setdefault(key, Status())
        if name == schema.SEEN:
            entry.seen = _time(t)
        elif name == schema.STATE:
            entry.state, entry.state_time = str(value), _time(t)
        elif name == schema.BATTERY and isinstance(value, int | float):
            entry.battery = float(value)
        elif name == schema.RSSI and isinstance(value, int | float):
            entry.rssi = float(value)
        elif name == schema.INTERVAL_S and isinstance(value, int | float):
            entry.interval_s = int(value)
        elif name == schema.FW:
            entry.fw = str(value)


COUNT_FIELDS: tuple[str, ...] = (schema.SEEN, schema.STATE, schema.INTERVAL_S)  # online or silent, no more


async def fetch_status(client: InfluxClient, database: str, site: str | None, now: datetime,
                       days: int = LATEST_DAYS, kits: Iterable[tuple[str, str]] | None = None,
                       names: tuple[str, ...] = STATUS_FIELDS) -> dict[tuple[str, str], Status]:
    """(site, kit) -> the newest facts of its ``kit_status`` points of the last ``days`` days.

    The seen points are read over the last ``RECENT_HOURS`` first; the kits not seen there (of ``kits``, the
    registered ones, and of those with a status message) are read again over the ``days``.
    """
    found: dict[tuple[str, str], Status] = {}
    since, recent = now - timedelta(days=days), now - timedelta(hours=RECENT_HOURS)
    async for series in client.query(status_statement(site, since, recent, names), database=database):
        key = (series.tags.get(schema.SITE, ""), series.tags.get(schema.KIT, ""))
        _apply_status(found, names[series.statement_id], key, series.values)
    known = set(found) | set(kits or ())
    unseen = sorted(key for key in known if (site is None or key[0] == site)
                    and (key not in found or found[key].seen is None))
    busy = tuple(name for name in BUSY if name in names)
    if unseen and busy:
        async for series in client.query(status_statement(site, since, None, busy, unseen), database=database):
            key = (series.tags.get(schema.SITE, ""), series.tags.get(schema.KIT, ""))
            if key in unseen:
                _apply_status(found, busy[series.statement_id], key, series.values)
    return found


# A site's finished sparkline buckets are kept in the process and only the newest ones read again: InfluxDB
# reads every point of 24 hours of every kit for the whole window (144,000 for 20 kits of 5 quantities), the
# page's largest cost. A bucket counts as finished SPARK_SETTLE_S after its end (the gateway's batches in
# flight); everything is read again after SPARK_KEEP_S, so backfill that lands in an old bucket shows then.
SPARK_SETTLE_S = 120
SPARK_KEEP_S = 600.0


@dataclass(slots=True)
class _KeptSparks:
    made: float  # time.monotonic() of the whole read
    quantities: tuple[str, ...]
    settled_ms: int  # buckets that start before this are finished and kept
    buckets: dict[str, dict[str, dict[int, float]]]  # kit -> quantity -> bucket start (ms) -> value


_kept_sparks: dict[tuple[str, str, int], _KeptSparks] = {}


async def fetch_sparks(client: InfluxClient, database: str, site: str, now: datetime,
                       bucket_s: int = SPARK_BUCKET_S) -> dict[str, dict[str, list[float | None]]]:
    """kit -> quantity -> one value per bucket of the last ``SPARK_HOURS`` hours, ``None`` where none came.

    One request per quantity, sent at once (InfluxDB answers them on separate cores), from the first bucket
    not yet kept (``_KeptSparks``) to now."""
    start, end = spark_window(now, bucket_s=bucket_s)
    start_ms, bucket_ms = int(start.timestamp() * 1000), bucket_s * 1000
    stored = await stored_quantities(client, database)
    quantities = tuple(q for q in VALUE_QUANTITIES if q in stored)
    key = (database, site, bucket_s)
    kept = _kept_sparks.get(key)
    fresh = (kept is None or kept.quantities != quantities or time.monotonic() - kept.made > SPARK_KEEP_S
             or kept.settled_ms <= start_ms)
    if fresh:
        kept = _KeptSparks(time.monotonic(), quantities, start_ms, {})
    assert kept is not None
    read_from = datetime.fromtimestamp(kept.settled_ms / 1000, UTC)
    # a copy of the finished buckets still in the window: requests at the same time never see each other's half
    buckets = {kit: {quantity: {stamp: value for stamp, value in values.items()
                                if start_ms <= stamp < kept.settled_ms}
                     for quantity, values in lines.items()} for kit, lines in kept.buckets.items()}

    async def one(quantity: str) -> None:
        async for series in client.query(spark_statement(site, read_from, end, bucket_s, [quantity]),
                                         database=database):
            values = buckets.setdefault(series.tags.get(schema.KIT, ""), {}).setdefault(quantity, {})
            for row in series.values:
                if isinstance(row[1], int | float):
                    values[int(row[0])] = float(row[1])

    await asyncio.gather(*(one(quantity) for quantity in quantities))
    settled = (int(now.timestamp() * 1000) - SPARK_SETTLE_S * 1000) // bucket_ms * bucket_ms
    _kept_sparks[key] = _KeptSparks(kept.made, quantities, max(kept.settled_ms, settled), buckets)
    count = int((end - start).total_seconds()) // bucket_s
    found: dict[str, dict[str, list[float | None]]] = {}
    for kit, lines in buckets.items():
        for quantity, values in lines.items():
            line: list[float | None] = [None] * count
            for stamp, value in values.items():
                index = (stamp - start_ms) // bucket_ms
                if 0 <= index < count:
                    line[index] = value
            if any(v is not None for v in line):
                found.setdefault(kit, {})[quantity] = line
    return found


@dataclass(slots=True)
class SiteLive:
    """The three answers for one site, fetched at once."""

    latest: dict[str, dict[str, Value]]
    status: dict[tuple[str, str], Status]
    sparks: dict[str, dict[str, list[float | None]]]

    def kit(self, site: str, kit: str, window_s: int, now: datetime) -> KitLive:
        return kit_live(kit, self.status.get((site, kit)), self.latest.get(kit, {}), self.sparks.get(kit, {}),
                        window_s, now)


async def fetch_site(client: InfluxClient, database: str, site: str, now: datetime,
                     kits: Iterable[str] | None = None) -> SiteLive:
    """Latest values, status and sparklines of every kit of ``site`` (of ``kits``, the registered ones, when
    given): three requests in parallel."""
    latest, status, sparks = await asyncio.gather(
        fetch_latest(client, database, site, now, kits=kits),
        fetch_status(client, database, site, now, kits=None if kits is None else [(site, kit) for kit in kits]),
        fetch_sparks(client, database, site, now))
    return SiteLive(latest, status, sparks)


def counts(site: str, kits: list[str], status: dict[tuple[str, str], Status], window_s: int,
           now: datetime) -> tuple[int, int]:
    """(online, silent) of a site's kits, as the home page counts them."""
    online = sum(1 for kit in kits if is_online(status.get((site, kit)), window_s, now))
    return online, len(kits) - online
