"""Chart data for the pages: one quantity of one or more kits over a window, aggregated on the server to about
one point per pixel of the chart, missing buckets as ``null`` so a chart draws a gap rather than a line across it.

The pure core (ranges, choosing the bucket, the InfluxQL, shaping rows into the chart's JSON) is plain functions
with unit tests; the routes at the bottom are a thin shell. JSON (``web/static/chart.js`` reads it)::

    {"t": [unix s], "series": [{"label": "kit-1", "values": [number | null]}], "unit": "°C",
     "quantity": "temperature", "every_s": 300, "gaps": true}
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from api.dataset import window_of
from api.deps import dataset_for_code
from api.errors import ApiError, bad_request
from api.query import (
    AGGREGATES,
    DAY_S,
    EVERY_CHOICES,
    parse_agg,
    parse_every,
    parse_quantities,
    parse_time,
    parse_zone,
    split_names,
)
from lauks import influxql, rollups, schema
from lauks.catalog import CATALOG, Quantity
from metastore import registry
from web.render import Page

RANGES: dict[str, int] = {"24h": DAY_S, "7d": 7 * DAY_S, "30d": 30 * DAY_S, "1y": 365 * DAY_S}
DEFAULT_RANGE = "24h"
DEFAULT_WIDTH = 800
# A chart is never drawn narrower than a phone's column nor wider than a 4K screen: outside these a ``width``
# is taken as the nearest, so nobody can ask for a million buckets.
MIN_WIDTH, MAX_WIDTH = 100, 4000
# Only buckets that divide a day (api.query.EVERY_CHOICES): they line up with the school's midnights in every
# range, so a "1d" bucket is a local calendar day and the 1 y chart's 12 h buckets are mornings and afternoons.
# 1d is the widest: a year of days is 365 points, which even the narrowest chart shows well (about one a pixel).
EVERY_SECONDS: tuple[int, ...] = tuple(parse_every(text) for text in EVERY_CHOICES)

_READINGS = influxql.identifier(schema.READINGS)
_SITE = influxql.identifier(schema.SITE)
_KIT = influxql.identifier(schema.KIT)


def parse_range(text: str | None) -> tuple[str, int]:
    name = text or DEFAULT_RANGE
    if name not in RANGES:
        raise bad_request("bad_range", f"range={name[:20]!r} is not one we draw: choose one of {', '.join(RANGES)}")
    return name, RANGES[name]


def parse_width(text: str | None) -> int:
    """Pixels of the chart; missing means a desktop's chart, out of bounds means the nearest bound."""
    if text is None or text == "":
        return DEFAULT_WIDTH
    try:
        width = int(text)
    except ValueError:
        raise bad_request("bad_width", f"width={text[:20]!r} is not a whole number of pixels, e.g. width=800") \
            from None
    return min(MAX_WIDTH, max(MIN_WIDTH, width))


def choose_every(span_s: float, width: int, at_least_s: int = 0) -> int:
    """The smallest bucket (seconds) of ``EVERY_SECONDS`` that gives at most ``width`` points over ``span_s``,
    and no smaller than ``at_least_s`` (a dataset's own bucket); the widest (1d) when none is wide enough."""
    for every in EVERY_SECONDS:
        if every >= at_least_s and span_s / every + 1 <= width:
            return every
    return EVERY_SECONDS[-1]


def bucket_start(moment: datetime, every_s: int, zone: ZoneInfo) -> datetime:
    """The start of ``moment``'s bucket, buckets counted from the local midnight (as ``GROUP BY time(...)
    tz(...)`` counts them), so the first bucket of a window is a whole one."""
    local = moment.astimezone(zone)
    midnight = datetime.combine(local.date(), time(0), zone)
    into = (local.replace(tzinfo=None) - midnight.replace(tzinfo=None)).total_seconds()
    start = (midnight.replace(tzinfo=None) + timedelta(seconds=into // every_s * every_s)).replace(tzinfo=zone)
    return start.astimezone(UTC)


@dataclass(frozen=True)
class SeriesQuery:
    """One quantity of some kits of a site over ``[start, end)`` in buckets of ``every_s`` seconds."""

    site: str
    kits: tuple[str, ...]
    quantity: str
    start: datetime
    end: datetime
    every_s: int
    agg: str  # a key of api.query.AGGREGATES
    zone: ZoneInfo

    @property
    def spec(self) -> Quantity:
        return CATALOG[self.quantity]


def recent_query(site: str, kit: str, quantity: str, range_name: str, width: int, now: datetime,
                 zone: ZoneInfo) -> SeriesQuery:
    """A kit's chart of the last ``range_name``, up to ``now``."""
    span = RANGES[range_name]
    every = choose_every(span, width)
    start = bucket_start(now - timedelta(seconds=span), every, zone)
    return SeriesQuery(site, (kit,), quantity, start, now, every, CATALOG[quantity].default_agg, zone)


def _where(query: SeriesQuery) -> str:
    where = [f"{_SITE} = {influxql.string(query.site)}"]
    if query.kits:
        where.append(f"{_KIT} =~ {influxql.regex_exact(list(query.kits))}")
    where.append(f"time >= {influxql.time_literal(query.start)} AND time < {influxql.time_literal(query.end)}")
    return " AND ".join(where)


def statement(query: SeriesQuery) -> str:
    """One GROUP BY time query for all the kits, ``fill(null)`` so an empty bucket is a row with null: a gap."""
    field = influxql.identifier(query.quantity)
    zone = "" if query.zone.key == "UTC" else f" tz({influxql.string(query.zone.key)})"
    return (f"SELECT {AGGREGATES[query.agg]}({field}) AS {field} FROM {_READINGS} WHERE {_where(query)} "
            f"GROUP BY time({query.every_s}s), {_KIT} fill(null){zone}")


def statements(query: SeriesQuery, kept: Mapping[str, rollups.Kept]) -> list[str]:
    """The statements whose answers, one after the other per kit, are ``statement(query)``'s: the buckets the
    rollups are kept for read from them (lauks.rollups), the newest buckets since then from the raw readings.

    The window is cut at a bucket's start, so each bucket comes whole from one of them; the rollups answer
    exactly as the raw aggregate (``fill(null)`` included) or not at all, so the chart is the same either way."""
    kept_to = min((window.kept_to for window in kept.values()), default=None)
    if kept_to is None:
        return [statement(query)]
    cut = bucket_start(min(query.end, kept_to), query.every_s, query.zone)
    if cut <= query.start:
        return [statement(query)]
    head = replace(query, end=cut)
    column = [(query.quantity, query.agg, query.quantity)]
    rolled = rollups.statement_for(column, _where(head), query.every_s, query.zone, head.start, head.end,
                                   fill="null", kept=kept)
    if rolled is None:
        return [statement(query)]
    return [rolled] + ([statement(replace(query, start=cut))] if cut < query.end else [])


def rounder(query: SeriesQuery) -> int | None:
    """Decimals a value is rounded to (the catalog's resolution); None for a count, which stays whole."""
    return None if query.agg == "count" else query.spec.decimals


def shape(query: SeriesQuery, rows_by_kit: Mapping[str, Sequence[Sequence[Any]]]) -> dict[str, Any]:
    """The chart's JSON from ``{kit: [[time_ms, value], ...]}``: one time axis for every kit (the union of their
    bucket times), a kit's missing bucket ``null``, values rounded to the quantity's resolution.

    A kit with no row at all in the window still gets its line (all null), so the legend names every kit asked.
    """
    decimals = rounder(query)
    times = sorted({int(row[0]) // 1000 for rows in rows_by_kit.values() for row in rows})
    index = {t: i for i, t in enumerate(times)}
    series = []
    for kit in query.kits or tuple(sorted(rows_by_kit)):
        values: list[float | None] = [None] * len(times)
        for row in rows_by_kit.get(kit, ()):
            value = row[1]
            if value is not None:
                values[index[int(row[0]) // 1000]] = round(float(value), decimals) if decimals is not None \
                    else float(value)
        series.append({"label": kit, "values": values})
    return {"t": times, "series": series, "unit": query.spec.unit, "quantity": query.quantity,
            "every_s": query.every_s, "agg": query.agg, "gaps": True,
            "start": int(query.start.timestamp()), "end": int(query.end.timestamp())}


def sparse_every(query: SeriesQuery, rows_by_kit: Mapping[str, Sequence[Sequence[Any]]]) -> int | None:
    """A wider bucket when the readings are sparser than the buckets, else None.

    A kit that reports every 10 minutes, drawn in 2-minute buckets, leaves four empty buckets between any two
    readings: with ``fill(null)`` that is a gap each time, and the line falls apart into dots. So when a kit's
    typical distance between filled buckets (the median) is more than a bucket, the chart is drawn again in buckets
    at least that distance wide: a reading in nearly every bucket (chart.js spans the lone empty bucket that a
    reading just over a bucket's edge leaves), and two or more empty only where the kit was really silent.
    """
    spacing = 0
    for rows in rows_by_kit.values():
        filled = [int(row[0]) // 1000 for row in rows if row[1] is not None]
        steps = sorted(later - earlier for earlier, later in itertools.pairwise(filled))
        if len(steps) >= 2:
            spacing = max(spacing, steps[len(steps) // 2])
    if spacing <= query.every_s:
        return None
    wider = next((every for every in EVERY_SECONDS if every >= spacing), EVERY_SECONDS[-1])
    return wider if wider > query.every_s else None


async def _rows(request: Request, query: SeriesQuery) -> dict[str, list[list[Any]]]:
    state = request.app.state
    client, database = state.influx, state.settings.influx_database
    cache = getattr(state, "rollups_kept", None)
    if cache is None:
        cache = state.rollups_kept = rollups.KeptCache()
    rows: dict[str, list[list[Any]]] = {}
    for text in statements(query, await cache.get(client, database)):
        async for found in client.query(text, database=database):
            rows.setdefault(found.tags.get(schema.KIT, ""), []).extend(found.values)
    return rows


async def fetch(request: Request, query: SeriesQuery) -> dict[str, Any]:
    """Run the statement and shape its answer (the I/O edge); once more in wider buckets if the readings are
    sparser than the buckets (``sparse_every``)."""
    rows = await _rows(request, query)
    wider = sparse_every(query, rows)
    if wider is not None:
        query = replace(query, every_s=wider, start=bucket_start(query.start, wider, query.zone))
        rows = await _rows(request, query)
    return shape(query, rows)


def site_zone(request: Request, site_zone_name: str | None) -> ZoneInfo:
    return parse_zone(site_zone_name or request.app.state.settings.api_timezone)


def quantity_of(text: str | None) -> str:
    if not text:
        raise bad_request("no_quantity", "name the quantity to draw, e.g. q=temperature")
    names = parse_quantities([text])
    if len(names) != 1:
        raise bad_request("one_quantity", "a chart draws one quantity: name one, e.g. q=temperature")
    return names[0]


def require_reader(request: Request) -> Page:
    """The pages' read rules, answered as JSON: public read on, or a signed-in staff member."""
    page = Page.of(request)
    if not page.can_read:
        raise ApiError(401, "sign_in_needed", "these readings are for staff on this server: sign in first")
    return page


def reply(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, headers={"Cache-Control": "no-cache"})


def names_of(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


# --- routes ------------------------------------------------------------------------------------------------

router = APIRouter(prefix="/w/series")
Text = Annotated[str | None, Query(max_length=200)]


@router.get("/kit/{site}/{kit}")
async def kit_series(request: Request, site: str, kit: str, q: Text = None,
                     range_: Annotated[str | None, Query(alias="range", max_length=20)] = None,
                     width: Text = None) -> JSONResponse:
    """A kit's chart of one quantity over 24 h, 7 d, 30 d or 1 y (the kit page, the site's sparklines, embeds)."""
    page = require_reader(request)
    quantity = quantity_of(q)
    range_name, _span = parse_range(range_)
    chosen = parse_width(width)
    with request.app.state.sessions() as db:
        row = registry.get_site(db, site)
        found = registry.get_kit(db, site, kit)
        if found.retired_at is not None and page.staff is None:
            raise ApiError(410, "kit_retired", f"kit {kit!r} is retired: its readings are no longer shown")
        zone = site_zone(request, row.timezone)
    query = recent_query(site, kit, quantity, range_name, chosen, page.now(), zone)
    return reply(await fetch(request, query))


@router.get("/d/{code}")
async def dataset_series(request: Request, code: str, q: Text = None, width: Text = None) -> JSONResponse:
    """A class dataset's chart of one of its quantities, every kit a line, by its share code (no sign-in)."""
    chosen = parse_width(width)
    with request.app.state.sessions() as db:
        dataset = dataset_for_code(request, db, code)
        quantity = quantity_of(q or (dataset.quantities[0] if dataset.quantities else None))
        if quantity not in dataset.quantities:
            raise ApiError(404, "unknown_quantity", f"this dataset has no {quantity}: it has "
                                                    f"{', '.join(dataset.quantities)}")
        start, end = window_of(dataset, datetime.now(UTC))
        zone = parse_zone(dataset.timezone)
        at_least = parse_every(dataset.every) if dataset.every else 0
        every = choose_every((end - start).total_seconds(), chosen, at_least)
        agg = dataset.agg or CATALOG[quantity].default_agg
        query = SeriesQuery(dataset.site, names_of(dataset.kits), quantity, bucket_start(start, every, zone), end,
                            every, agg, zone)
    return reply(await fetch(request, query))


@router.get("/preview")
async def preview_series(request: Request, site: Text = None, kits: Text = None, q: Text = None, start: Text = None,
                         end: Text = None, rolling_days: Text = None, agg: Text = None,
                         width: Text = None) -> JSONResponse:
    """The dataset builder's preview chart (staff): the window as typed, or the last ``rolling_days`` days."""
    page = Page.of(request)
    if page.staff is None:
        raise ApiError(401, "staff_only", "the preview is for signed-in staff: sign in first")
    if not site:
        raise bad_request("no_site", "name the site, e.g. site=school-1")
    quantity = quantity_of(q)
    chosen = parse_width(width)
    with request.app.state.sessions() as db:
        row = registry.get_site(db, site)
        zone = site_zone(request, row.timezone)
        chosen_kits = names_of(registry.check_kits(db, site, split_names([kits] if kits else None)))
    now = page.now().replace(microsecond=0)
    if rolling_days:
        try:
            days = int(rolling_days)
        except ValueError:
            days = 0
        if not 1 <= days <= 366:
            raise bad_request("bad_rolling_days", "rolling_days must be a whole number of days from 1 to 366")
        window = (now - timedelta(days=days), now)
    else:
        if not start or not end:
            raise bad_request("no_window", "give start and end (e.g. 2025-03-01 and 2025-03-07), or rolling_days")
        window = (parse_time(start, zone, is_end=False, what="start"), parse_time(end, zone, is_end=True, what="end"))
    if window[1] <= window[0]:
        raise bad_request("reversed_window", "the window ends before it starts: swap start and end")
    if window[1] - window[0] > timedelta(days=3 * 366):
        raise bad_request("window_too_large", "a preview shows at most three years: choose a shorter window")
    aggregate = parse_agg(agg) or CATALOG[quantity].default_agg
    every = choose_every((window[1] - window[0]).total_seconds(), chosen)
    query = SeriesQuery(site, chosen_kits, quantity, bucket_start(window[0], every, zone), window[1], every,
                        aggregate, zone)
    return reply(await fetch(request, query))
