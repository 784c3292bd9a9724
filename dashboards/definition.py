"""What the staff dashboards show: one row per panel, reading the stored schema of docs/schema.md.

Adding a panel is adding one row; adding a quantity to ``lauks.catalog`` adds its panel to Site
conditions. ``lauks dashboards build`` turns this into dashboards/json/*.json.
"""

from __future__ import annotations

from dashboards.grafana import Dashboard, Panel, Query, Style, Threshold, Variable, grafana_unit, select
from lauks.catalog import CATALOG, Quantity

# --- template variables -----------------------------------------------------------------------------

# Without FROM, SHOW TAG VALUES looks in every measurement: a kit that only ever sent a status
# message or only rejected readings still appears.
SITE = Variable("site", "Site", 'SHOW TAG VALUES WITH KEY = "site"')
KIT = Variable("kit", "Kit", 'SHOW TAG VALUES WITH KEY = "kit" WHERE "site" =~ /^$site$/')
INSTANCE = Variable("instance", "Gateway", 'SHOW TAG VALUES FROM "gateway" WITH KEY = "instance"')

SITE_KIT = '"site" =~ /^$site$/ AND "kit" =~ /^$kit$/'
GATEWAY = '"instance" =~ /^$instance$/'
BY_KIT = ("site", "kit")

LOW_BATTERY_V = 3.4  # a single Li-ion cell under load: below this a kit has hours, not days, left

# --- queries that do not fit the plain SELECT ... GROUP BY time() shape ------------------------------

KITS_REPORTING = Query(
    'SELECT count("seen") AS "kits" FROM (SELECT last("seen") AS "seen" FROM "kit_status" '
    f'WHERE {SITE_KIT} AND time > now() - 15m GROUP BY "site", "kit")',
    ("kits",))

_LAST_STATE = (f'SELECT last("state") AS "state" FROM "kit_status" WHERE {SITE_KIT} AND $timeFilter '
               'GROUP BY "site", "kit"')
KITS_OFFLINE = Query(f"SELECT count(\"state\") AS \"kits\" FROM ({_LAST_STATE}) WHERE \"state\" = 'offline'",
                     ("kits",))
OFFLINE_KITS = Query(f"SELECT \"state\" FROM ({_LAST_STATE}) WHERE \"state\" = 'offline' GROUP BY \"site\", \"kit\"",
                     ("state",), BY_KIT, "table")

_LAST_BATTERY = (f'SELECT last("battery") AS "battery" FROM "readings" WHERE {SITE_KIT} AND $timeFilter '
                 'GROUP BY "site", "kit"')
KITS_LOW_BATTERY = Query(f'SELECT count("battery") AS "kits" FROM ({_LAST_BATTERY}) WHERE "battery" < {LOW_BATTERY_V}',
                         ("kits",))
LOW_BATTERY = Query(f'SELECT "battery" FROM ({_LAST_BATTERY}) WHERE "battery" < {LOW_BATTERY_V} GROUP BY "site", "kit"',
                    ("battery",), BY_KIT, "table")


def minutes_silent(where: str) -> Query:
    """Whole minutes since a kit's last readings, for kits silent for at least two minutes.

    InfluxQL cannot subtract a point's time from now(), so: count seen points per minute over the last
    day (0 where none), sum them from now backwards, and count the minutes where that sum is still 0.
    The minutes are clock minutes, and the current one has only just begun: a kit seen 20 s ago, in
    the minute before, counts 1. So 1 is a healthy kit between two readings, and only 2 or more is
    shown (a kit that reports every minute was otherwise listed as silent for part of each minute).
    """
    counted = (
        'SELECT count("after") AS "minutes" FROM (SELECT cumulative_sum(count("seen")) AS "after" '
        f'FROM "kit_status" WHERE {where} AND time > now() - 1d GROUP BY time(1m), "site", "kit" fill(0) '
        'ORDER BY time DESC) WHERE "after" = 0 GROUP BY "site", "kit" ORDER BY time DESC')
    return Query(f'SELECT "minutes" FROM ({counted}) WHERE "minutes" >= 2 GROUP BY "site", "kit" ORDER BY time DESC',
                 ("minutes",), BY_KIT, "table")


def usual_interval(where: str) -> Query:
    """A kit's usual seconds between readings messages: the median gap between its seen points of the last day."""
    return Query(
        'SELECT median("gap") AS "interval_s" FROM (SELECT elapsed("seen", 1s) AS "gap" FROM "kit_status" '
        f'WHERE {where} AND time > now() - 1d GROUP BY "site", "kit") GROUP BY "site", "kit"',
        ("interval_s",), BY_KIT, "table")


LATEST_REJECTIONS = Query(
    f'SELECT "site", "kit", "reason", "detail" FROM "rejections" WHERE {SITE_KIT} AND $timeFilter '
    "ORDER BY time DESC LIMIT 200",
    ("site", "kit", "reason", "detail"), (), "table")

# --- Site conditions: one panel per catalog quantity ---------------------------------------------------

_TITLES = {"pm1": "PM1", "pm2_5": "PM2.5", "pm10": "PM10", "co2": "CO₂", "tvoc": "TVOC", "uv_index": "UV index",
           "rssi": "Wi-Fi signal (RSSI)", "battery": "Battery"}


def quantity_title(q: Quantity) -> str:
    return _TITLES.get(q.name, q.name.replace("_", " ").capitalize())


def quantity_panel(q: Quantity) -> Panel:
    style: Style = "bars" if q.default_agg == "sum" else "points" if q.name == "wind_direction" else "line"
    unit = f" ({q.unit})" if q.unit else ""
    how = "total per interval" if q.default_agg == "sum" else "mean per interval"
    return Panel(quantity_title(q) + unit, "timeseries",
                 (select(f'{q.default_agg}("{q.name}") AS "{q.name}"', "readings", SITE_KIT, by=BY_KIT),),
                 unit=grafana_unit(q.ucum, q.unit), style=style, description=f"{q.description}, {how}, per kit.")


LATEST_VALUES = Query(f'SELECT last(*) FROM "readings" WHERE {SITE_KIT} AND $timeFilter GROUP BY "site", "kit"',
                      tuple(sorted(f"last_{name}" for name in CATALOG)), BY_KIT, "table")  # InfluxDB sorts them

SITE_CONDITIONS = Dashboard(
    "lauks-site-conditions", "Lauks · Site conditions",
    "What the kits measure: every catalog quantity over time, per kit.",
    (SITE, KIT),
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
    "Is every kit reporting, charged and connected? Last seen, silent and offline kits, battery, signal, buffer.",
    (SITE, KIT),
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
              (select('last("seen") AS "seen"', "kit_status", SITE_KIT, by=BY_KIT, every=False, format="table"),),
              w=9, h=8, description="When the gateway last stored readings from each kit.",
              rename={"Time": "Last seen", "seen": "Seen"}),
        Panel("Offline kits", "table", (OFFLINE_KITS,), w=9, h=8, rename={"Time": "Offline since", "state": "State"}),
        Panel("Battery", "timeseries", (select('mean("battery") AS "battery"', "readings", SITE_KIT, by=BY_KIT),),
              unit="volt", base_color="red", thresholds=(Threshold(LOW_BATTERY_V, "green"),)),
        Panel(f"Battery below {LOW_BATTERY_V} V", "table", (LOW_BATTERY,), rename={"Time": "Measured"}, decimals=2),
        Panel("Wi-Fi signal (RSSI)", "timeseries", (select('mean("rssi") AS "rssi"', "readings", SITE_KIT, by=BY_KIT),),
              unit="dBm", base_color="red", thresholds=(Threshold(-80, "yellow"), Threshold(-67, "green")),
              description="Below -80 dBm a kit drops its connection often."),
        Panel("Samples waiting in the kits' buffers", "timeseries",
              (select('last("buffered") AS "buffered"', "kit_status", SITE_KIT, by=BY_KIT),),
              min_interval="10s", description="From status messages: samples kept in flash while offline."),
        Panel("Samples dropped by a full buffer", "timeseries",
              (select('max("dropped") AS "dropped"', "kit_status", SITE_KIT, by=BY_KIT),), min_interval="10s",
              description="From status messages: samples a kit had to throw away; anything above 0 is lost data."),
        Panel("Samples stored per kit", "timeseries",
              (select('sum("samples") AS "samples"', "kit_status", SITE_KIT, by=BY_KIT),), style="bars",
              min_interval="10s"),
        Panel("Firmware versions", "table",
              (select('last("fw") AS "fw"', "kit_status", SITE_KIT, by=BY_KIT, every=False, format="table"),),
              rename={"Time": "Reported", "fw": "Firmware"}),
    ),
)

# --- Data quality --------------------------------------------------------------------------------------

DATA_QUALITY = Dashboard(
    "lauks-data-quality", "Lauks · Data quality",
    "What the gateway rejected and why, and how much data arrived late (backfill after an outage).",
    (SITE, KIT),
    (
        Panel("Rejections in range", "stat",
              (select('sum("count") AS "rejections"', "rejections", SITE_KIT, every=False),), w=8, h=4, decimals=0,
              thresholds=(Threshold(1, "orange"),)),
        Panel("Samples stored late", "stat",
              (select('sum("late") * 100 / sum("samples") AS "late_percent"', "kit_status", SITE_KIT, every=False),),
              w=8, h=4, unit="percent", decimals=1,
              description="Share of stored samples that were more than 5 minutes old on arrival."),
        Panel("Samples stored in range", "stat",
              (select('sum("samples") AS "samples"', "kit_status", SITE_KIT, every=False),), w=8, h=4, decimals=0),
        Panel("Rejections by reason", "timeseries",
              (select('sum("count") AS "rejections"', "rejections", SITE_KIT, by=("reason",)),), style="bars",
              description="See docs/contract.md for what each reason means and what to do."),
        Panel("Rejections by kit", "timeseries",
              (select('sum("count") AS "rejections"', "rejections", SITE_KIT, by=BY_KIT),), style="bars"),
        Panel("Rejections by kit and reason", "table",
              (select('sum("count") AS "rejections"', "rejections", SITE_KIT, by=("site", "kit", "reason"),
                      every=False, format="table"),),
              rename={"Time": "From", "rejections": "Rejections"}),
        Panel("Latest rejections", "table", (LATEST_REJECTIONS,), rename={"detail": "What the kit was told"}),
        Panel("Late samples (backfill after an outage)", "timeseries",
              (select('sum("late") AS "late"', "kit_status", SITE_KIT, by=BY_KIT),), style="bars", min_interval="10s",
              description="Samples more than 5 minutes old when they arrived: a kit emptying its buffer."),
        Panel("Samples stored on time and late", "timeseries",
              (select('sum("samples") AS "samples", sum("late") AS "late"', "kit_status", SITE_KIT),),
              style="bars", min_interval="10s"),
    ),
)

# --- Gateway -------------------------------------------------------------------------------------------


def _rate(counter: str) -> str:
    return f'non_negative_derivative(last("{counter}"), 1s) AS "{counter}"'


GATEWAY_DASHBOARD = Dashboard(
    "lauks-gateway", "Lauks · Gateway",
    "The gateway's own counters, written every 10 s: throughput, write latency, spool and duplicates.",
    (INSTANCE,),
    (
        Panel("Messages received", "stat",
              (select('last("received") AS "received"', "gateway", GATEWAY, by=("instance",), every=False),),
              w=6, h=4, decimals=0, description="Since the gateway started."),
        Panel("Points stored", "stat",
              (select('last("stored_points") AS "stored_points"', "gateway", GATEWAY, by=("instance",),
                      every=False),), w=6, h=4, decimals=0, description="Since the gateway started."),
        Panel("Spool depth now", "stat",
              (select('last("spool_depth") AS "spool_depth"', "gateway", GATEWAY, by=("instance",), every=False),),
              w=6, h=4, decimals=0, thresholds=(Threshold(1, "orange"),),
              description="Batches waiting on disk for InfluxDB; above 0 only while InfluxDB is unreachable."),
        Panel("p99 write latency now", "stat",
              (select('last("write_latency_ms_p99") AS "p99"', "gateway", GATEWAY, by=("instance",), every=False),),
              w=6, h=4, unit="ms", thresholds=(Threshold(500, "orange"), Threshold(2000, "red"))),
        Panel("Messages per second", "timeseries",
              (select(", ".join(_rate(c) for c in ("received", "stored_messages")), "gateway", GATEWAY,
                      by=("instance",)),), unit="reqps", min_interval="10s"),
        Panel("Points written per second", "timeseries",
              (select(_rate("stored_points"), "gateway", GATEWAY, by=("instance",)),), unit="wps", min_interval="10s"),
        Panel("Write latency", "timeseries",
              (select('max("write_latency_ms_p50") AS "p50", max("write_latency_ms_p99") AS "p99"', "gateway",
                      GATEWAY, by=("instance",)),), unit="ms", min_interval="10s"),
        Panel("Spool depth and messages in flight", "timeseries",
              (select('max("spool_depth") AS "spool_depth", max("inflight") AS "inflight"', "gateway", GATEWAY,
                      by=("instance",)),), min_interval="10s"),
        Panel("Duplicates, rejections and spooled batches per second", "timeseries",
              (select(", ".join(_rate(c) for c in ("duplicates", "rejected", "spooled")), "gateway", GATEWAY,
                      by=("instance",)),), unit="reqps", min_interval="10s", w=24),
    ),
)

DASHBOARDS: tuple[Dashboard, ...] = (SITE_CONDITIONS, KIT_HEALTH, DATA_QUALITY, GATEWAY_DASHBOARD)
