"""Chart data for the class page and the teacher's preview, in the chart contract of web/static/chart.js.

One InfluxDB query per chart, all kits at once, bucketed on the server (GROUP BY time) to about one point per
pixel, so a year's window costs no more than a day's. A gap in the readings stays a gap: the answer holds a
``null`` where a kit measured nothing, and nothing is ever interpolated.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from api import dataset as datasets
from api.deps import dataset_for_code
from api.errors import ApiError
from api.query import AGGREGATES, parse_every, parse_quantities, parse_time, parse_zone, split_names
from lauks import influxql, schema
from lauks.catalog import CATALOG
from lauks.influx import InfluxClient, InfluxError
from metastore import registry
from metastore.db import now
from web.i18n import N_, Translator
from web.session import staff_of

router = APIRouter()
# Bucket sizes that divide a day (so buckets start at the school's midnights), then whole days.
STEPS = (300, 600, 900, 1200, 1800, 3600, 7200, 10800, 14400, 21600, 28800, 43200, 86400)
WIDTH = (100, 800, 4000)  # fewest, default and most points a chart asks for
GAP_FACTOR = 2.5  # a silence longer than this many usual spacings is an outage, drawn as a gap

# Quantity names as a pupil reads them (the catalog's descriptions are for the data files).
QUANTITY_LABELS: dict[str, str] = {
    "temperature": N_("Air temperature"), "soil_temperature": N_("Soil temperature"),
    "water_temperature": N_("Water temperature"), "humidity": N_("Humidity"), "pressure": N_("Air pressure"),
    "light": N_("Light"), "uv_index": N_("UV index"), "soil_moisture": N_("Soil moisture"),
    "wind_speed": N_("Wind speed"), "wind_gust": N_("Wind gusts"), "wind_direction": N_("Wind direction"),
    "rain": N_("Rain"), "pm1": N_("Fine dust PM1"), "pm2_5": N_("Fine dust PM2.5"), "pm10": N_("Dust PM10"),
    "co2": N_("Carbon dioxide (CO₂)"), "tvoc": N_("Volatile organic compounds (TVOC)"), "noise": N_("Noise"),
    "battery": N_("Battery voltage"), "rssi": N_("Wi-Fi signal"),
}


def quantity_label(t: Translator, name: str) -> str:
    return t.gettext(QUANTITY_LABELS.get(name, name))


def with_unit(t: Translator, name: str) -> str:
    """``Air temperature (°C)``: a chart's caption and a checkbox's label."""
    unit = CATALOG[name].unit
    return f"{quantity_label(t, name)} ({unit})" if unit else quantity_label(t, name)


# --- the pure core ------------------------------------------------------------------------------------------

def bucket_for(window_s: float, width: int, at_least_s: int = STEPS[0]) -> int:
    """The smallest step giving at most ``width`` points over the window, and no finer than ``at_least_s``.

    Five minutes at the finest: kits sample every few minutes, and a finer bucket would leave most empty."""
    wanted = max(window_s / max(width, 1), at_least_s)
    for step in STEPS:
        if step >= wanted:
            return step
    return math.ceil(wanted / 86400) * 86400


@dataclass(frozen=True)
class Chart:
    """One chart's question: one quantity, some kits of one site, a window, a bucket and an aggregate."""

    site: str
    kits: list[str]
    quantity: str
    start: datetime
    end: datetime
    zone: ZoneInfo
    every_s: int
    agg: str

    def statement(self) -> str:
        field = influxql.identifier(self.quantity)
        where = [f"{influxql.identifier(schema.SITE)} = {influxql.string(self.site)}",
                 f"{influxql.identifier(schema.KIT)} =~ {influxql.regex_exact(self.kits)}",
                 f"time >= {influxql.time_literal(self.start)} AND time < {influxql.time_literal(self.end)}"]
        zone = "" if self.zone.key == "UTC" else f" tz({influxql.string(self.zone.key)})"
        return (f"SELECT {AGGREGATES[self.agg]}({field}) AS {field} FROM {influxql.identifier(schema.READINGS)} "
                f"WHERE {' AND '.join(where)} GROUP BY time({self.every_s}s), {influxql.identifier(schema.KIT)} "
                f"fill(none){zone}")


def assemble(points: Iterable[tuple[str, int, float | None]], kits: list[str], quantity: str, every_s: int,
             decimals: int | None) -> dict[str, Any]:
    """The chart contract's JSON from (kit, bucket start in ms, value) rows.

    The time axis is every bucket in which some kit measured; a kit without a value in one gets ``null``. Where
    the axis itself pauses for longer than ``GAP_FACTOR`` usual spacings (the kits were silent), one ``null``
    row is put in the pause, so the line breaks there instead of bridging the outage."""
    by_kit: dict[str, dict[int, float]] = {kit: {} for kit in kits}
    for kit, t_ms, value in points:
        if value is None or kit not in by_kit:
            continue
        by_kit[kit][int(t_ms) // 1000] = round(float(value), decimals) if decimals is not None else float(value)
    times = sorted({t for values in by_kit.values() for t in values})
    spacings = [b - a for a, b in itertools.pairwise(times)]
    usual = max(statistics.median(spacings) if spacings else every_s, every_s)
    axis: list[int] = []
    for index, t in enumerate(times):
        if index and t - times[index - 1] > GAP_FACTOR * usual:
            axis.append(times[index - 1] + int(usual))  # the gap's marker: no kit has a value here
        axis.append(t)
    series = [{"label": kit, "values": [by_kit[kit].get(t) for t in axis]} for kit in kits]
    return {"t": axis, "series": series, "unit": CATALOG[quantity].unit, "quantity": quantity, "every_s": every_s,
            "gaps": True}


# --- I/O ------------------------------------------------------------------------------------------------------

async def chart_series(client: InfluxClient, database: str, chart: Chart) -> dict[str, Any]:
    points: list[tuple[str, int, float | None]] = []
    async for series in client.query(chart.statement(), database=database):
        kit = series.tags.get(schema.KIT, "")
        points.extend((kit, row[0], row[1]) for row in series.values)
    decimals = None if chart.agg == "count" else CATALOG[chart.quantity].decimals
    return assemble(points, chart.kits, chart.quantity, chart.every_s, decimals)


def _width(width: int | None) -> int:
    low, default, high = WIDTH
    return default if width is None else min(max(width, low), high)


async def _answer(request: Request, chart: Chart) -> JSONResponse:
    settings = request.app.state.settings
    try:
        body = await chart_series(request.app.state.influx, settings.influx_database, chart)
    except InfluxError:
        raise ApiError(503, "store_unavailable", "the readings store is not answering right now: try again in a "
                                                 "minute") from None
    return JSONResponse(body, headers={"Cache-Control": "private, max-age=30"})


def _quantity(q: str, allowed: list[str] | None = None) -> str:
    names = parse_quantities([q])
    if len(names) != 1:
        raise ApiError(400, "one_quantity", "name one quantity, e.g. q=temperature")
    if allowed is not None and names[0] not in allowed:
        raise ApiError(404, "unknown_quantity", f"this dataset has no {names[0]!r}; it has {', '.join(allowed)}")
    return names[0]


@router.get("/w/series/d/{code}", include_in_schema=False)
async def dataset_series(request: Request, code: str, q: Annotated[str, Query(max_length=64)],
                         width: Annotated[int | None, Query()] = None) -> JSONResponse:
    """A class dataset's chart: its kits, its window (a rolling one up to now), its aggregate."""
    with request.app.state.sessions() as db:
        dataset = dataset_for_code(request, db, code)
    quantity = _quantity(q, list(dataset.quantities))
    start, end = datasets.window_of(dataset)
    floor = parse_every(dataset.every) if dataset.every else STEPS[0]  # never finer than the dataset's buckets
    every_s = bucket_for((end - start).total_seconds(), _width(width), floor)
    agg = dataset.agg or CATALOG[quantity].default_agg
    return await _answer(request, Chart(dataset.site, list(dataset.kits), quantity, start, end,
                                        parse_zone(dataset.timezone), every_s, agg))


@router.get("/w/series/preview", include_in_schema=False)
async def preview_series(request: Request, site: Annotated[str, Query(max_length=64)],
                         q: Annotated[str, Query(max_length=64)], kits: Annotated[str, Query(max_length=2000)] = "",
                         start: Annotated[str, Query(max_length=40)] = "",
                         end: Annotated[str, Query(max_length=40)] = "",
                         rolling_days: Annotated[int | None, Query()] = None,
                         agg: Annotated[str, Query(max_length=8)] = "",
                         every: Annotated[str, Query(max_length=8)] = "",
                         width: Annotated[int | None, Query()] = None) -> JSONResponse:
    """The builder's preview (staff): the chart a dataset of these choices would have, before it exists."""
    if staff_of(request) is None:
        raise ApiError(401, "staff_only", "sign in as staff to preview a dataset")
    with request.app.state.sessions() as db:
        row = registry.get_site(db, site)
        zone = parse_zone(row.timezone or request.app.state.settings.api_timezone)
        names = registry.check_kits(db, site, split_names([kits])) or [k.name for k in registry.list_kits(db, site)]
    if not names:
        raise ApiError(404, "no_kits", f"site {site!r} has no kits yet")
    quantity = _quantity(q)
    if rolling_days is not None:
        low, high = registry.ROLLING_DAYS
        if not low <= rolling_days <= high:
            raise ApiError(400, "bad_rolling_days", f"rolling_days must be from {low} to {high}")
        window_end = now().replace(microsecond=0)
        window_start = window_end - timedelta(days=rolling_days)
    else:
        if not start or not end:
            raise ApiError(400, "no_window", "give start and end dates, or rolling_days")
        window_start = parse_time(start, zone, is_end=False, what="start")
        window_end = parse_time(end, zone, is_end=True, what="end")
        if window_end <= window_start:
            raise ApiError(400, "reversed_window", "the window ends before it starts: swap start and end")
    how = agg if agg in AGGREGATES else CATALOG[quantity].default_agg
    floor = parse_every(every) if every and every != "raw" else STEPS[0]
    every_s = bucket_for((window_end - window_start).total_seconds(), _width(width), floor)
    return await _answer(request, Chart(site, names, quantity, window_start, window_end, zone, every_s, how))
