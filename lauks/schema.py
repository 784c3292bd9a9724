"""The stored schema: the InfluxDB measurements Lauks writes, their tag and field keys, and their point builders.

One module, so that a stored name changes in one place: the gateway writes with these builders, and the
API's queries and the dashboards take every measurement, tag and field name from here. docs/schema.md is
this table for people (classes learning InfluxQL read it too). Readings points go through the fast
encoder of ``lauks.lineprotocol``; the others through ``lineprotocol.line``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import orjson

from lauks.catalog import QUANTITY_NAMES, quantity
from lauks.contract import Sample, StatusMessage
from lauks.lineprotocol import FieldValue, line, measurement, sample_lines

FieldType = Literal["float", "integer", "text"]

# --- measurements ----------------------------------------------------------------------------------------

READINGS = "readings"  # one float field per catalog quantity present in a sample, at the sample's time
REJECTIONS = "rejections"  # one point per rejection (or per run of rate-limited messages), when rejected
KIT_STATUS = "kit_status"  # status messages, and at most every 10 s per kit a ``seen`` point from readings
GATEWAY = "gateway"  # the gateway's own counters since it started, every 10 s
# Rollups of readings (lauks.rollups): per site, kit and bucket, for every readings field F the fields
# sum_F, count_F, min_F and max_F (the names InfluxDB gives ``SELECT sum(*), count(*) ...``). Kept from
# the raw readings, rebuilt from them with one command; never the only copy. The hourly one, and the daily one
# in the schools' days (Europe/Riga, whose offsets Lithuania's Europe/Vilnius shares), computed from it
# (lauks.rollups says why).
ROLLUP_1H = "readings_1h"
ROLLUP_1D = "readings_1d"
ROLLUPS = (ROLLUP_1H, ROLLUP_1D)
# How far each rollup is complete: one point per pass of the worker or rebuild, tagged with the rollup's name
ROLLUP_STATE = "rollup_state"
ROLLUP_STATE_ROLLUP = "rollup"  # tag
ROLLUP_COMPLETE_FROM = "complete_from"  # field, ms
ROLLUP_KEPT_TO = "kept_to"  # field, ms
ROLLUP_STATS = ("sum", "count", "min", "max")

# --- tag keys --------------------------------------------------------------------------------------------

SITE = "site"
KIT = "kit"
REASON = "reason"  # a ``lauks.contract.Reason`` value
INSTANCE = "instance"  # the gateway's ``gateway_instance`` setting

# --- field keys ------------------------------------------------------------------------------------------

# readings: the catalog's names; these two are read as a kit's health as well (and kit_status has them too)
BATTERY = quantity("battery").name
RSSI = quantity("rssi").name

# readings: what the gateway knew when it received the sample, written only when there is something to say,
# so the read-time quality flags (lauks.quality) can tell backfill and an estimated clock
LATE_S = "late_s"  # whole seconds from the sample's time to its receipt, written when at least LATE_S_MIN
LATE_S_MIN = 60
FROM_AGE = "from_age"  # 1 when the sample's time was worked out from 'age' and the time of receipt
INGEST_FACTS = (LATE_S, FROM_AGE)

# rejections
COUNT = "count"  # 1 per rejection; for rate_limited, the messages not stored since the kit's previous point
DETAIL = "detail"  # the sentence sent to the kit
# The sentence's parts, so the web app can say it in the reader's language (each written only when the
# rejection has it). The names avoid InfluxQL's keywords FIELD, KEY, LIMIT and VALUE.
FIELD_NAME = "field_name"  # the quantity or message key
BAD_VALUE = "bad_value"  # the offending value as short JSON text: ``85.3``, ``"abc"``, ``true``
BOUND = "bound"  # the limit crossed: a range's end, the byte limit, the time window, messages a second
SAMPLE_INDEX = "sample_index"  # the sample's index in ``samples``
BAD_VALUE_MAX_CHARS = 64

# kit_status, from a status message (with BATTERY and RSSI): the message's own keys
STATE = "state"
FW = "fw"
BOOT = "boot"
INTERVAL_S = "interval_s"
SENSORS = "sensors"  # comma-separated
FAILED_SENSORS = "failed_sensors"  # comma-separated
BUFFERED = "buffered"
DROPPED = "dropped"
AWAKE_MS = "awake_ms"
# kit_status, from a status message's ``update`` object (issue 14): the last over-the-air update the kit tried
UPDATE_VERSION = "update_version"  # the version it was offered
UPDATE_STATE = "update_state"  # one of UPDATE_STATES
UPDATE_REASON = "update_reason"  # why it failed or rolled back, for a person to read
UPDATE_STATES = ("offered", "downloading", "staged", "trial", "confirmed", "rolled_back", "failed")
UPDATE_FAILED_STATES = ("rolled_back", "failed")  # an alert and the fleet page say the update failed

# kit_status, from readings: a ``seen`` point (with BOOT and FW)
SEEN = "seen"  # always 1: its time is when the kit was last seen
SAMPLES = "samples"  # samples stored since the kit's previous seen point
LATE = "late"  # of those, samples older than 5 minutes when received (backfill after an outage)
LATE_FROM = "late_from"  # the oldest of those late samples' times, in ms since the epoch (rollups redo from it)

# gateway
RECEIVED = "received"
STORED_MESSAGES = "stored_messages"
STORED_POINTS = "stored_points"
DUPLICATES = "duplicates"
REJECTED = "rejected"
SPOOLED = "spooled"
SPOOL_DEPTH = "spool_depth"
INFLIGHT = "inflight"
WRITE_LATENCY_MS_P50 = "write_latency_ms_p50"
WRITE_LATENCY_MS_P99 = "write_latency_ms_p99"


@dataclass(frozen=True, slots=True)
class Measurement:
    """A measurement's tag keys and its field keys with the type each is always written as."""

    name: str
    tags: tuple[str, ...]
    fields: Mapping[str, FieldType]


MEASUREMENTS: dict[str, Measurement] = {m.name: m for m in (
    Measurement(READINGS, (SITE, KIT), {**dict.fromkeys(QUANTITY_NAMES, "float"), LATE_S: "integer",
                                         FROM_AGE: "integer"}),
    Measurement(REJECTIONS, (SITE, KIT, REASON), {
        COUNT: "integer", DETAIL: "text", FIELD_NAME: "text", BAD_VALUE: "text", BOUND: "float",
        SAMPLE_INDEX: "integer"}),
    Measurement(KIT_STATUS, (SITE, KIT), {
        STATE: "text", FW: "text", BOOT: "integer", INTERVAL_S: "integer", BUFFERED: "integer",
        DROPPED: "integer", AWAKE_MS: "integer", BATTERY: "float", RSSI: "float", SENSORS: "text",
        FAILED_SENSORS: "text", SEEN: "integer", SAMPLES: "integer", LATE: "integer", LATE_FROM: "integer"}),
    Measurement(GATEWAY, (INSTANCE,), {
        RECEIVED: "integer", STORED_MESSAGES: "integer", STORED_POINTS: "integer", DUPLICATES: "integer",
        REJECTED: "integer", SPOOLED: "integer", SPOOL_DEPTH: "integer", INFLIGHT: "integer",
        WRITE_LATENCY_MS_P50: "float", WRITE_LATENCY_MS_P99: "float"}),
    # an integer field's sum, min and max stay integers (as InfluxDB's INTO writes them)
    *(Measurement(name, (SITE, KIT), {
        f"{stat}_{f}": "integer" if stat == "count" or f in INGEST_FACTS else "float"
        for f in (*QUANTITY_NAMES, *INGEST_FACTS) for stat in ROLLUP_STATS}) for name in ROLLUPS),
    Measurement(ROLLUP_STATE, (ROLLUP_STATE_ROLLUP,), {ROLLUP_COMPLETE_FROM: "integer", ROLLUP_KEPT_TO: "integer"}),
)}

# --- point builders --------------------------------------------------------------------------------------

# The readings head, escaped once. Tags go in key order (kit before site), as InfluxDB prefers; site and
# kit are contract ids (a-z, 0-9, '-'), which line protocol writes as they are.
_READINGS_KIT = f"{measurement(READINGS)},{KIT}="
_READINGS_SITE = f",{SITE}="


def readings_lines(site: str, kit: str, samples: Iterable[Sample]) -> list[str]:
    """The ``readings`` points of validated samples, timestamps in milliseconds (write with precision=ms).

    Every value is written as a float, so a whole number never becomes an integer field.
    """
    return sample_lines(f"{_READINGS_KIT}{kit}{_READINGS_SITE}{site} ", samples)


def bad_value_text(value: object) -> str:
    """``value`` as JSON text of at most ``BAD_VALUE_MAX_CHARS`` characters, cut with an ellipsis if longer.

    JSON, so that a reader tells the number ``85`` from the text ``"85"``; a value JSON cannot write (a
    non-finite float, an integer beyond 64 bits, anything else) is written as the JSON text of its repr.
    """
    if isinstance(value, float) and not math.isfinite(value):
        value = repr(value)
    try:
        text = orjson.dumps(value).decode()
    except TypeError:  # an integer beyond 64 bits, or a type orjson does not know
        text = orjson.dumps(repr(value)).decode()
    return text if len(text) <= BAD_VALUE_MAX_CHARS else text[:BAD_VALUE_MAX_CHARS - 1] + "…"


def rejection_line(site: str, kit: str, reason: str, detail: str, time_ms: int, count: int = 1, *,
                   field_name: str | None = None, bad_value: object = None, bound: float | None = None,
                   sample_index: int | None = None) -> str:
    """A ``rejections`` point: the sentence, and those of its parts the rejection has (a ``None`` is left out,
    as InfluxDB lets a point lack a field). ``bad_value`` is the value itself; it is stored as ``bad_value_text``."""
    fields: dict[str, FieldValue] = {COUNT: count, DETAIL: detail}
    if field_name is not None:
        fields[FIELD_NAME] = field_name
    if bad_value is not None:
        fields[BAD_VALUE] = bad_value_text(bad_value)
    if bound is not None and math.isfinite(bound):
        fields[BOUND] = float(bound)
    if sample_index is not None:
        fields[SAMPLE_INDEX] = sample_index
    return line(REJECTIONS, {SITE: site, KIT: kit, REASON: reason}, fields, time_ms)


def status_line(site: str, kit: str, status: StatusMessage, time_ms: int) -> str:
    """A status message as a ``kit_status`` point; ``LineProtocolError`` for a sensor name it cannot carry."""
    fields: dict[str, FieldValue] = {STATE: status.state}
    counts = ((FW, status.fw), (BOOT, status.boot), (INTERVAL_S, status.interval_s), (BUFFERED, status.buffered),
              (DROPPED, status.dropped), (AWAKE_MS, status.awake_ms))
    for key, value in counts:
        if value is not None:
            fields[key] = value
    for key, number in ((BATTERY, status.battery), (RSSI, status.rssi)):
        if number is not None:
            fields[key] = float(number)  # an integer voltage must not make the field an integer
    for key, names in ((SENSORS, status.sensors), (FAILED_SENSORS, status.failed_sensors)):
        if names is not None:
            fields[key] = ",".join(names)
    if status.update is not None:
        fields[UPDATE_VERSION] = status.update.version
        fields[UPDATE_STATE] = status.update.state
        if status.update.reason:
            fields[UPDATE_REASON] = status.update.reason
    return line(KIT_STATUS, {SITE: site, KIT: kit}, fields, time_ms)


def seen_line(site: str, kit: str, time_ms: int, *, samples: int, late: int, boot: int, fw: str | None) -> str:
    """A ``seen`` point of ``kit_status``: the kit sent readings."""
    fields: dict[str, FieldValue] = {SEEN: 1, SAMPLES: samples, LATE: late, BOOT: boot}
    if fw is not None:
        fields[FW] = fw
    return line(KIT_STATUS, {SITE: site, KIT: kit}, fields, time_ms)


def gateway_line(instance: str, time_ms: int, *, received: int, stored_messages: int, stored_points: int,
                 duplicates: int, rejected: int, spooled: int, spool_depth: int, inflight: int,
                 write_latency_ms_p50: float, write_latency_ms_p99: float) -> str:
    """The gateway's counters as a ``gateway`` point."""
    return line(GATEWAY, {INSTANCE: instance}, {
        RECEIVED: received, STORED_MESSAGES: stored_messages, STORED_POINTS: stored_points, DUPLICATES: duplicates,
        REJECTED: rejected, SPOOLED: spooled, SPOOL_DEPTH: spool_depth, INFLIGHT: inflight,
        WRITE_LATENCY_MS_P50: float(write_latency_ms_p50), WRITE_LATENCY_MS_P99: float(write_latency_ms_p99),
    }, time_ms)
