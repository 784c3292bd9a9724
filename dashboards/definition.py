"""What the staff dashboards show: one row per panel, reading the stored schema (lauks.schema, docs/schema.md).

Adding a panel is adding one row; adding a quantity to ``lauks.catalog`` adds its panel to Site
conditions. ``lauks dashboards build`` turns this into dashboards/json/*.json.
"""

from __future__ import annotations

from collections.abc import Sequence

from dashboards import flags
from dashboards.grafana import (
    Dashboard,
    Panel,
    Query,
    ResultFormat,
    Style,
    Threshold,
    Variable,
    column,
    grafana_unit,
    select,
)
from lauks import quality, schema
from lauks.catalog import CATALOG, Quantity
from lauks.influxql import identifier as quoted

# --- template variables -----------------------------------------------------------------------------

_SITE, _KIT, _INSTANCE = quoted(schema.SITE), quoted(schema.KIT), quoted(schema.INSTANCE)

# Without FROM, SHOW TAG VALUES looks in every measurement: a kit that only ever sent a status
# message or only rejected readings still appears.
SITE = Variable("site", "Site", f"SHOW TAG VALUES WITH KEY = {_SITE}")
KIT = Variable("kit", "Kit", f"SHOW TAG VALUES WITH KEY = {_KIT} WHERE {_SITE} =~ /^$site$/")
INSTANCE = Variable("instance", "Gateway", f"SHOW TAG VALUES FROM {quoted(schema.GATEWAY)} WITH KEY = {_INSTANCE}")

SITE_KIT = f"{_SITE} =~ /^$site$/ AND {_KIT} =~ /^$kit$/"
THE_INSTANCES = f"{_INSTANCE} =~ /^$instance$/"
BY_KIT = (schema.SITE, schema.KIT)
GROUP_BY_KIT = f"GROUP BY {_SITE}, {_KIT}"
_KIT_STATUS, _READINGS, _REJECTIONS = quoted(schema.KIT_STATUS), quoted(schema.READINGS), quoted(schema.REJECTIONS)
_SEEN, _STATE, _BATTERY = quoted(schema.SEEN), quoted(schema.STATE), quoted(schema.BATTERY)

LOW_BATTERY_V = 3.4  # a single Li-ion cell under load: below this a kit has hours, not days, left


def _kits(fields: str, measurement: str, *, by: Sequence[str] = BY_KIT, every: bool = True,
          format: ResultFormat = "time_series") -> Query:
    """``fields`` of ``measurement`` for the chosen sites and kits, a series per ``by`` (each kit unless told)."""
    return select(fields, measurement, SITE_KIT, by=by, every=every, format=format)


# --- queries that do not fit the plain SELECT ... GROUP BY time() shape ------------------------------

KITS_REPORTING = Query(
    f'SELECT count({_SEEN}) AS "kits" FROM (SELECT {column("last", schema.SEEN)} FROM {_KIT_STATUS} '
    f"WHERE {SITE_KIT} AND time > now() - 15m {GROUP_BY_KIT})",
    ("kits",))

_LAST_STATE = (f"SELECT {column('last', schema.STATE)} FROM {_KIT_STATUS} WHERE {SITE_KIT} AND $timeFilter "
               f"{GROUP_BY_KIT}")
KITS_OFFLINE = Query(f"SELECT count({_STATE}) AS \"kits\" FROM ({_LAST_STATE}) WHERE {_STATE} = 'offline'", ("kits",))
OFFLINE_KITS = Query(f"SELECT {_STATE} FROM ({_LAST_STATE}) WHERE {_STATE} = 'offline' {GROUP_BY_KIT}",
                     (schema.STATE,), BY_KIT, "table")

_LAST_BATTERY = (f"SELECT {column('last', schema.BATTERY)} FROM {_READINGS} WHERE {SITE_KIT} AND $timeFilter "
                 f"{GROUP_BY_KIT}")
KITS_LOW_BATTERY = Query(
    f'SELECT count({_BATTERY}) AS "kits" FROM ({_LAST_BATTERY}) WHERE {_BATTERY} < {LOW_BATTERY_V}', ("kits",))
LOW_BATTERY = Query(f"SELECT {_BATTERY} FROM ({_LAST_BATTERY}) WHERE {_BATTERY} < {LOW_BATTERY_V} {GROUP_BY_KIT}",
                    (schema.BATTERY,), BY_KIT, "table")


def minutes_silent(where: str) -> Query:
    """Whole minutes since a kit's last readings, for kits silent for at least two minutes.

    InfluxQL cannot subtract a point's time from now(), so: count seen points per minute over the last
    day (0 where none), sum them from now backwards, and count the minutes where that sum is still 0.
    The minutes are clock minutes, and the current one has only just begun: a kit seen 20 s ago, in
    the minute before, counts 1. So 1 is a healthy kit between two readings, and only 2 or more is
    shown (a kit that reports every minute was otherwise listed as silent for part of each minute).
    """
    counted = (
        f'SELECT count("after") AS "minutes" FROM (SELECT cumulative_sum(count({_SEEN})) AS "after" '
        f"FROM {_KIT_STATUS} WHERE {where} AND time > now() - 1d GROUP BY time(1m), {_SITE}, {_KIT} fill(0) "
        f'ORDER BY time DESC) WHERE "after" = 0 {GROUP_BY_KIT} ORDER BY time DESC')
    return Query(f'SELECT "minutes" FROM ({counted}) WHERE "minutes" >= 2 {GROUP_BY_KIT} ORDER BY time DESC',
                 ("minutes",), BY_KIT, "table")


def usual_interval(where: str) -> Query:
    """A kit's usual seconds between readings messages: the median gap between its seen points of the last day."""
    return Query(
        f'SELECT median("gap") AS "interval_s" FROM (SELECT elapsed({_SEEN}, 1s) AS "gap" FROM {_KIT_STATUS} '
        f"WHERE {where} AND time > now() - 1d {GROUP_BY_KIT}) {GROUP_BY_KIT}",
        ("interval_s",), BY_KIT, "table")


_REJECTION_COLUMNS = (schema.SITE, schema.KIT, schema.REASON, schema.DETAIL)
_REJECTION_COUNT = column("sum", schema.COUNT, "rejections")
LATEST_REJECTIONS = Query(
    f"SELECT {', '.join(quoted(c) for c in _REJECTION_COLUMNS)} FROM {_REJECTIONS} WHERE {SITE_KIT} AND $timeFilter "
    "ORDER BY time DESC LIMIT 200",
    _REJECTION_COLUMNS, (), "table")

# --- Site conditions: one panel per catalog quantity ---------------------------------------------------

_TITLES = {"pm1": "PM1", "pm2_5": "PM2.5", "pm10": "PM10", "co2": "CO₂", "tvoc": "TVOC", "uv_index": "UV index",
           "rssi": "Wi-Fi signal (RSSI)", "battery": "Battery"}


def quantity_title(q: Quantity) -> str:
    return _TITLES.get(q.name, q.name.replace("_", " ").capitalize())


def quantity_panel(q: Quantity) -> Panel:
    style: Style = "bars" if q.default_agg == "sum" else "points" if q.name == "wind_direction" else "line"
    unit = f" ({q.unit})" if q.unit else ""
    how = "total per interval" if q.default_agg == "sum" else "mean per interval"
    return Panel(quantity_title(q) + unit, "timeseries", flags.aggregate_queries(q),
                 unit=grafana_unit(q.ucum, q.unit), style=style,
                 description=f"{q.description}, {how}, per kit, from raw readings or the rollup the Resolution "
                             "variable names.")


# each quantity by name: ``last(*)`` would bring the ingest facts (late_s, from_age) along
LATEST_VALUES = Query(
    f"SELECT {', '.join(column('last', name, f'last_{name}') for name in CATALOG)} FROM {_READINGS} "
    f"WHERE {SITE_KIT} AND $timeFilter {GROUP_BY_KIT}",
    tuple(f"last_{name}" for name in CATALOG), BY_KIT, "table")

SITE_CONDITIONS = Dashboard(
    "lauks-site-conditions", "Lauks · Site conditions",
    "What the kits measure: every catalog quantity over time, per kit. Resolution: raw readings up to a few "
    "days, the hourly rollup beyond (docs/dashboards.md).",
    (SITE, KIT, flags.RESOLUTION),
    (
        Panel("Latest value of each quantity, per kit", "table", (LATEST_VALUES,), w=24, h=7,
              description="The last value of each quantity in the time range. Empty where a kit has no such sensor.",
              rename={"Time": "Last reading"} | {f"last_{q.name}": f"{quantity_title(q)} {q.unit}".strip()
                                                 for q in CATALOG.values()}),
        *(quantity_panel(q) for q in CATALOG.values()),
    ),
)

# --- Kit health ----------------------------------------------------------------------------------------

KIT_HEALTH = Dashboard(
    "lauks-kit-health", "Lauks · Kit health",
    "Is every kit reporting, charged and connected? Last seen, silent and offline kits, battery, signal, buffer. "
    "Resolution: where the battery and signal charts read (raw or a rollup, docs/dashboards.md).",
    (SITE, KIT, flags.RESOLUTION),
    (
        Panel("Kits reporting (last 15 min)", "stat", (KITS_REPORTING,), w=6, h=4, decimals=0),
        Panel("Kits offline", "stat", (KITS_OFFLINE,), w=6, h=4, decimals=0, thresholds=(Threshold(1, "red"),),
              description="Kits whose last status message says offline (their MQTT last will)."),
        Panel(f"Kits below {LOW_BATTERY_V} V", "stat", (KITS_LOW_BATTERY,), w=6, h=4, decimals=0,
              thresholds=(Threshold(1, "red"),)),
        Panel("Kits silent (minutes without readings)", "table", (minutes_silent(SITE_KIT),), w=6, h=8,
              description="Kits with no readings for at least a minute, over the last day. The alert fires "
                          "at three of the kit's usual intervals.",
              rename={"minutes": "Minutes silent"}),
        Panel("Last seen", "table",
              (_kits(column("last", schema.SEEN), schema.KIT_STATUS, every=False, format="table"),),
              w=9, h=8, description="When the gateway last stored readings from each kit.",
              rename={"Time": "Last seen", schema.SEEN: "Seen"}),
        Panel("Offline kits", "table", (OFFLINE_KITS,), w=9, h=8,
              rename={"Time": "Offline since", schema.STATE: "State"}),
        Panel("Battery", "timeseries", flags.aggregate_queries(CATALOG[schema.BATTERY]),
              unit="volt", base_color="red", thresholds=(Threshold(LOW_BATTERY_V, "green"),)),
        Panel(f"Battery below {LOW_BATTERY_V} V", "table", (LOW_BATTERY,), rename={"Time": "Measured"}, decimals=2),
        Panel("Wi-Fi signal (RSSI)", "timeseries", flags.aggregate_queries(CATALOG[schema.RSSI]),
              unit="dBm", base_color="red", thresholds=(Threshold(-80, "yellow"), Threshold(-67, "green")),
              description="Below -80 dBm a kit drops its connection often."),
        Panel("Samples waiting in the kits' buffers", "timeseries",
              (_kits(column("last", schema.BUFFERED), schema.KIT_STATUS),),
              min_interval="10s", description="From status messages: samples kept in flash while offline."),
        Panel("Samples dropped by a full buffer", "timeseries",
              (_kits(column("max", schema.DROPPED), schema.KIT_STATUS),), min_interval="10s",
              description="From status messages: samples a kit had to throw away; anything above 0 is lost data."),
        Panel("Samples stored per kit", "timeseries",
              (_kits(column("sum", schema.SAMPLES), schema.KIT_STATUS),), style="bars",
              min_interval="10s"),
        Panel("Firmware versions", "table",
              (_kits(column("last", schema.FW), schema.KIT_STATUS, every=False, format="table"),),
              rename={"Time": "Reported", schema.FW: "Firmware"}),
    ),
)

# --- Data quality --------------------------------------------------------------------------------------

_BUCKETS = ("Bars count flagged buckets per kit: of the panel's interval with resolution raw, else of the rollup "
            "chosen with the Resolution variable (docs/dashboards.md).")

QUALITY_FLAG_PANELS = (
    Panel("Stuck sensors", "timeseries", flags.STUCK, style="bars", w=12,
          description="A quantity that repeated one value for a whole bucket of its catalog stuck_minutes (an hour "
                      "for air temperature), with two readings or more in it. Bars count such buckets per kit and "
                      "quantity; docs/schema.md, Quality flags, has the thresholds."),
    Panel("Spikes", "timeseries", flags.SPIKE, style="bars", w=12, min_interval=flags.RAW_MIN_INTERVAL,
          description="Buckets whose range (max - min) is more than the quantity's max_rate times the bucket's "
                      "minutes: some change in them was faster than the sensor can rightly show. Raw: buckets of "
                      "the panel's interval (2 minutes at least); at 1h: raw readings in 10-minute buckets, as an "
                      "hourly bucket would need an impossible range to prove a spike (slower over long ranges)."),
    Panel("Battery low", "timeseries", flags.BATTERY_LOW, style="bars", w=8, min_interval="1m",
          description=f"Buckets with a battery reading under {quality.BATTERY_LOW_V:g} V: a sensor may brown out. "
                      + _BUCKETS),
    Panel("Backfilled", "timeseries", flags.BACKFILLED, style="bars", w=8, min_interval="1m",
          description=f"Buckets with a reading that arrived more than {quality.BACKFILL_S // 60} minutes after its "
                      "time (late_s, written by the gateway at receipt). " + _BUCKETS),
    Panel("Clock estimated", "timeseries", flags.CLOCK_ESTIMATED, style="bars", w=8, min_interval="1m",
          description="Buckets with a reading whose time the gateway worked out from 'age' (the kit had no clock "
                      "time): its time is off by the message's transit. " + _BUCKETS),
    Panel("Calibrated", "text", (), w=24, h=4, content=flags.CALIBRATED_TEXT,
          description="Calibrations live in the metadata store, which Grafana does not read."),
)

DATA_QUALITY = Dashboard(
    "lauks-data-quality", "Lauks · Data quality",
    "What the gateway rejected and why, how much data arrived late (backfill after an outage), and the quality "
    "flags (stuck, spike, battery low, backfilled, clock estimated) counted per bucket.",
    (SITE, KIT, flags.RESOLUTION),
    (
        Panel("Rejections in range", "stat",
              (_kits(_REJECTION_COUNT, schema.REJECTIONS, by=(), every=False),), w=8, h=4, decimals=0,
              thresholds=(Threshold(1, "orange"),)),
        Panel("Samples stored late", "stat",
              (_kits(f'sum({quoted(schema.LATE)}) * 100 / sum({quoted(schema.SAMPLES)}) AS "late_percent"',
                     schema.KIT_STATUS, by=(), every=False),),
              w=8, h=4, unit="percent", decimals=1,
              description="Share of stored samples that were more than 5 minutes old on arrival."),
        Panel("Samples stored in range", "stat",
              (_kits(column("sum", schema.SAMPLES), schema.KIT_STATUS, by=(), every=False),), w=8, h=4, decimals=0),
        Panel("Rejections by reason", "timeseries",
              (_kits(_REJECTION_COUNT, schema.REJECTIONS, by=(schema.REASON,)),), style="bars",
              description="See docs/contract.md for what each reason means and what to do."),
        Panel("Rejections by kit", "timeseries",
              (_kits(_REJECTION_COUNT, schema.REJECTIONS),), style="bars"),
        Panel("Rejections by kit and reason", "table",
              (_kits(_REJECTION_COUNT, schema.REJECTIONS, by=(*BY_KIT, schema.REASON), every=False,
                      format="table"),),
              rename={"Time": "From", "rejections": "Rejections"}),
        Panel("Latest rejections", "table", (LATEST_REJECTIONS,), rename={schema.DETAIL: "What the kit was told"}),
        Panel("Late samples (backfill after an outage)", "timeseries",
              (_kits(column("sum", schema.LATE), schema.KIT_STATUS),), style="bars", min_interval="10s",
              description="Samples more than 5 minutes old when they arrived: a kit emptying its buffer."),
        Panel("Samples stored on time and late", "timeseries",
              (_kits(f'{column("sum", schema.SAMPLES)}, {column("sum", schema.LATE)}', schema.KIT_STATUS, by=()),),
              style="bars", min_interval="10s"),
        *QUALITY_FLAG_PANELS,
    ),
)

# --- Gateway -------------------------------------------------------------------------------------------


def _rate(counter: str) -> str:
    return f"non_negative_derivative(last({quoted(counter)}), 1s) AS {quoted(counter)}"


def _gateway(fields: str, *, every: bool = True) -> Query:
    return select(fields, schema.GATEWAY, THE_INSTANCES, by=(schema.INSTANCE,), every=every)


GATEWAY_DASHBOARD = Dashboard(
    "lauks-gateway", "Lauks · Gateway",
    "The gateway's own counters, written every 10 s: throughput, write latency, spool and duplicates.",
    (INSTANCE,),
    (
        Panel("Messages received", "stat",
              (_gateway(column("last", schema.RECEIVED), every=False),),
              w=6, h=4, decimals=0, description="Since the gateway started."),
        Panel("Points stored", "stat",
              (_gateway(column("last", schema.STORED_POINTS), every=False),), w=6, h=4, decimals=0,
              description="Since the gateway started."),
        Panel("Spool depth now", "stat",
              (_gateway(column("last", schema.SPOOL_DEPTH), every=False),),
              w=6, h=4, decimals=0, thresholds=(Threshold(1, "orange"),),
              description="Batches waiting on disk for InfluxDB; above 0 only while InfluxDB is unreachable."),
        Panel("p99 write latency now", "stat",
              (_gateway(column("last", schema.WRITE_LATENCY_MS_P99, "p99"), every=False),),
              w=6, h=4, unit="ms", thresholds=(Threshold(500, "orange"), Threshold(2000, "red"))),
        Panel("Messages per second", "timeseries",
              (_gateway(", ".join(_rate(c) for c in (schema.RECEIVED, schema.STORED_MESSAGES))),), unit="reqps",
              min_interval="10s"),
        Panel("Points written per second", "timeseries",
              (_gateway(_rate(schema.STORED_POINTS)),), unit="wps", min_interval="10s"),
        Panel("Write latency", "timeseries",
              (_gateway(f'{column("max", schema.WRITE_LATENCY_MS_P50, "p50")}, '
                        f'{column("max", schema.WRITE_LATENCY_MS_P99, "p99")}'),), unit="ms", min_interval="10s"),
        Panel("Spool depth and messages in flight", "timeseries",
              (_gateway(f'{column("max", schema.SPOOL_DEPTH)}, {column("max", schema.INFLIGHT)}'),),
              min_interval="10s"),
        Panel("Duplicates, rejections and spooled batches per second", "timeseries",
              (_gateway(", ".join(_rate(c) for c in (schema.DUPLICATES, schema.REJECTED, schema.SPOOLED))),),
              unit="reqps", min_interval="10s", w=24),
    ),
)

DASHBOARDS: tuple[Dashboard, ...] = (SITE_CONDITIONS, KIT_HEALTH, DATA_QUALITY, GATEWAY_DASHBOARD)
