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
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lauks import influxql, schema
from lauks.catalog import CATALOG, QUANTITY_NAMES
from lauks.influx import InfluxClient
from web.i18n import N_, Translator

LATEST_DAYS = 30  # a value older than this is "no reading in 30 days"
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


def latest_statement(site: str, since: datetime, quantities: Iterable[str] = QUANTITY_NAMES) -> str:
    """One ``LAST`` per quantity since ``since``, grouped by kit: statement i answers quantity i."""
    where = f"{_SITE} = {influxql.string(site)} AND {_since(since)}"
    return "; ".join(f"SELECT LAST({influxql.identifier(q)}) AS {influxql.identifier(q)} FROM {_READINGS} "
                     f"WHERE {where} GROUP BY {_KIT}" for q in quantities)


def status_statement(site: str | None, since: datetime) -> str:
    """The newest of each of ``STATUS_FIELDS`` since ``since``, grouped by site and kit; every site when
    ``site`` is None (the home page counts every site's kits in one request)."""
    where = _since(since) if site is None else f"{_SITE} = {influxql.string(site)} AND {_since(since)}"
    return "; ".join(f"SELECT LAST({influxql.identifier(name)}) AS {influxql.identifier(name)} FROM {_STATUS} "
                     f"WHERE {where} GROUP BY {_SITE}, {_KIT}" for name in STATUS_FIELDS)


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


async def fetch_latest(client: InfluxClient, database: str, site: str, now: datetime,
                       days: int = LATEST_DAYS) -> dict[str, dict[str, Value]]:
    """kit -> quantity -> its newest value of the last ``days`` days."""
    quantities = QUANTITY_NAMES
    found: dict[str, dict[str, Value]] = {}
    async for series in client.query(latest_statement(site, now - timedelta(days=days), quantities),
                                     database=database):
        quantity = quantities[series.statement_id]
        kit = series.tags.get(schema.KIT, "")
        for t, value in series.values:
            if isinstance(value, int | float):
                found.setdefault(kit, {})[quantity] = Value(quantity, float(value), _time(t))
    return found


async def fetch_status(client: InfluxClient, database: str, site: str | None, now: datetime,
                       days: int = LATEST_DAYS) -> dict[tuple[str, str], Status]:
    """(site, kit) -> the newest facts of its ``kit_status`` points of the last ``days`` days."""
    found: dict[tuple[str, str], Status] = {}
    async for series in client.query(status_statement(site, now - timedelta(days=days)), database=database):
        name = STATUS_FIELDS[series.statement_id]
        key = (series.tags.get(schema.SITE, ""), series.tags.get(schema.KIT, ""))
        for t, value in series.values:
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
    return found


async def fetch_sparks(client: InfluxClient, database: str, site: str, now: datetime,
                       bucket_s: int = SPARK_BUCKET_S) -> dict[str, dict[str, list[float | None]]]:
    """kit -> quantity -> one value per bucket of the last ``SPARK_HOURS`` hours, ``None`` where none came."""
    start, end = spark_window(now, bucket_s=bucket_s)
    buckets = int((end - start).total_seconds()) // bucket_s
    start_ms = int(start.timestamp() * 1000)
    found: dict[str, dict[str, list[float | None]]] = {}
    async for series in client.query(spark_statement(site, start, end, bucket_s), database=database):
        kit = series.tags.get(schema.KIT, "")
        columns = series.columns[1:]
        lines = found.setdefault(kit, {})
        for row in series.values:
            index = (int(row[0]) - start_ms) // (bucket_s * 1000)
            if not 0 <= index < buckets:
                continue
            for name, value in zip(columns, row[1:], strict=True):
                if isinstance(value, int | float):
                    lines.setdefault(name, [None] * buckets)[index] = float(value)
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


async def fetch_site(client: InfluxClient, database: str, site: str, now: datetime) -> SiteLive:
    """Latest values, status and sparklines of every kit of ``site``: three requests in parallel."""
    latest, status, sparks = await asyncio.gather(
        fetch_latest(client, database, site, now), fetch_status(client, database, site, now),
        fetch_sparks(client, database, site, now))
    return SiteLive(latest, status, sparks)


def counts(site: str, kits: list[str], status: dict[tuple[str, str], Status], window_s: int,
           now: datetime) -> tuple[int, int]:
    """(online, silent) of a site's kits, as the home page counts them."""
    online = sum(1 for kit in kits if is_online(status.get((site, kit)), window_s, now))
    return online, len(kits) - online
