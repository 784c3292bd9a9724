"""Readings of a site over a window, raw or aggregated, streamed as CSV, JSON or Parquet; and the latest values."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import Field

from api import source, streaming
from api.deps import InfluxDep, Reader, SessionDep, SettingsDep
from api.errors import ApiError, responses
from api.query import (
    AGGREGATES,
    CALIBRATION_CHOICES,
    EVERY_CHOICES,
    FLAG_CHOICES,
    ReadingsRequest,
    make_request,
    parse_quantities,
    parse_time,
    parse_zone,
    split_names,
)
from api.schemas import LatestValue
from api.settings import ApiSettings
from lauks.catalog import CATALOG
from lauks.derived import stored_inputs
from lauks.influx import InfluxError
from metastore import registry

router = APIRouter(prefix="/v1/sites/{site}", tags=["readings"])

# `kits=` (empty) names no kit: a 422, not "every kit"
Names = Annotated[str, Field(min_length=1, max_length=2000)]

FILE_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"description": "the rows, streamed", "content": {
        "text/csv": {"schema": {"type": "string"}},
        "application/json": {"schema": {"type": "object"}},
        "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}}}},
}


def _unparsable(statuses: dict[int | str, dict[str, object]]) -> dict[int | str, dict[str, object]]:
    """The 400 also as uvicorn gives it, in plain text, to a request line it cannot parse (a query of thousands
    of generated characters): the route never sees those."""
    entry = dict(statuses[400])
    entry["content"] = {"text/plain": {"schema": {"type": "string"}}}
    return {**statuses, 400: entry}


def build_request(session: SessionDep, settings: ApiSettings, *, site: str, kits: list[str] | None,
                  quantities: list[str] | None, start: str, end: str, every: str | None, agg: str | None,
                  tz: str | None, layout: Literal["tidy", "wide"], flags: str = "include",
                  calibration: str = "applied") -> ReadingsRequest:
    row = registry.get_site(session, site)
    zone = parse_zone(tz or row.timezone or settings.api_timezone)
    chosen = registry.check_kits(session, site, split_names(kits))
    if not chosen:
        raise ApiError(404, "no_kits", f"site {site!r} has no kits yet: register one with `lauks kit register`")
    names = parse_quantities(quantities or [])
    first = parse_time(start, zone, is_end=False, what="start")
    last = parse_time(end, zone, is_end=True, what="end")
    # Calibrations are public facts of the data (a dataset's datapackage lists them): read for every reader.
    calibrations = (registry.calibrations_for(session, site, chosen, stored_inputs(names), first, last)
                    if calibration == "applied" and last > first else [])
    return make_request(site=site, kits=chosen, quantities=names, start=first, end=last, zone=zone, every=every,
                        agg=agg, layout=layout, max_raw_days=settings.api_max_raw_days, flags=flags,
                        calibration=calibration, calibrations=calibrations, elevation_m=row.elevation_m,
                        site_zone=row.timezone or settings.api_timezone)


@router.get("/readings", response_class=StreamingResponse,
            responses={**FILE_RESPONSES, **_unparsable(responses(400, 401, 404, 422, 502, 503))},
            summary="Readings over a time window, raw or aggregated, as CSV, JSON or Parquet")
async def readings(
    site: str, session: SessionDep, influx: InfluxDep, settings: SettingsDep, _reader: Reader,
    start: str = Query(description="a date (YYYY-MM-DD, local midnight) or an ISO 8601 time", examples=["2025-03-01"]),
    end: str = Query(description="a date (the whole day is included) or an ISO 8601 time (excluded)",
                     examples=["2025-03-31"]),
    quantities: Annotated[list[Names] | None, Query(description="comma-separated, e.g. temperature,humidity")] = None,
    kits: Annotated[list[Names] | None, Query(description="comma-separated; default: every kit of the site")] = None,
    every: str | None = Query(None, description="bucket size 1m ... 1d that divides a day, e.g. 10m, 1h, 1d",
                              json_schema_extra={"enum": list(EVERY_CHOICES)}),
    agg: str | None = Query(None, description="mean, min, max, median, count or sum; default: rain sums, "
                                              "the rest average", json_schema_extra={"enum": list(AGGREGATES)}),
    tz: str | None = Query(None, description="IANA time zone of dates and daily buckets; default: the site's"),
    layout: Literal["tidy", "wide"] = Query("tidy", description="tidy: time, kit, quantity, value, unit; "
                                                                "wide: a column per kit and quantity"),
    format: Literal["csv", "json", "parquet"] = Query("csv"),
    decimal: Literal["point", "comma"] = Query("point", description="comma: decimal comma and ';' between "
                                                                     "columns, as spreadsheets in LV/LT expect"),
    flags: str = Query("include", description="include: every value, with its quality flags in a flags column; "
                                              "exclude: flagged values left out; only: only flagged values "
                                              "(calibrated alone does not count as flagged)",
                       json_schema_extra={"enum": list(FLAG_CHOICES)}),
    calibration: str = Query("applied", description="applied: values corrected by the kit's calibrations (and "
                                                    "flagged calibrated); raw: the values as stored",
                             json_schema_extra={"enum": list(CALIBRATION_CHOICES)}),
) -> StreamingResponse:
    request = build_request(session, settings, site=site, kits=kits, quantities=quantities, start=start, end=end,
                            every=every, agg=agg, tz=tz, layout=layout, flags=flags, calibration=calibration)
    session.close()  # the store is done with; the stream may run for minutes
    meta = {"site": site, "start": request.start.isoformat(), "end": request.end.isoformat(),
            "every": every, "agg": agg, "tz": request.zone.key, "layout": layout, "flags": request.flags,
            "calibration": request.calibration,
            "calibrations": [c.as_json() for c in request.calibrations]}
    return await streaming.response(influx, settings.influx_database, request, format,
                                    decimal_comma=decimal == "comma", meta=meta)


@router.get("/latest", response_model=list[LatestValue],
            responses=_unparsable(responses(400, 401, 404, 422, 503)),
            summary="The newest value of each kit and quantity")
async def latest(site: str, session: SessionDep, influx: InfluxDep, settings: SettingsDep, _reader: Reader,
                 quantities: Annotated[list[Names] | None, Query(description="comma-separated; default: all")] = None,
                 kits: Annotated[list[Names] | None, Query(description="comma-separated; default: every kit")] = None,
                 ) -> list[LatestValue]:
    registry.get_site(session, site)
    chosen = registry.check_kits(session, site, split_names(kits))
    names = parse_quantities(quantities or []) or list(CATALOG)
    derived = [q for q in names if q not in CATALOG]
    if derived:
        raise ApiError(400, "derived_quantity", f"{derived[0]} is worked out from other readings, not measured, "
                                                "so it has no latest reading: ask for its inputs here, or for "
                                                f"{derived[0]} through /v1/sites/{site}/readings")
    if not chosen:
        return []
    try:
        found = await source.latest(influx, settings.influx_database, site, names, chosen)
    except InfluxError as error:
        raise ApiError(503, "store_unavailable", "the readings store is not answering right now: try again in a "
                                                 "minute") from error
    return [LatestValue(kit=kit, quantity=q, value=value, unit=CATALOG[q].unit, time=t)
            for kit, q, value, t in found]
