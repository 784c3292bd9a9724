"""Class datasets: staff name a selection and get a share code; pupils read it with the code, no account."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from api import dataset as datasets
from api import export, source, streaming
from api.deps import InfluxDep, SessionDep, SettingsDep, Staff, dataset_for_code
from api.errors import ApiError, responses
from api.frozen import Freezer
from api.query import make_request, parse_quantities, parse_time, parse_zone, split_names
from api.routers.readings import FILE_RESPONSES
from api.schemas import DatasetEdit, DatasetIn, DatasetOut, DatasetPreview
from lauks.influx import InfluxError
from metastore import registry, sharecode
from metastore.db import Dataset, now

router = APIRouter(prefix="/v1/datasets", tags=["class datasets"])
FORMATS = ("csv", "json", "parquet", "zip")
DECIMAL = "comma: decimal comma and ';' between columns, as spreadsheets in LV/LT expect"
BOM_TEXT = "start each CSV with a UTF-8 byte order mark, so Excel shows ā, č, ų and µg/m³ right"
FLAGS_TEXT = ("include: every value, with its quality flags in a flags column; exclude: values with a quality flag "
              "(any but calibrated) left out; only: only those")
CALIBRATION_TEXT = "applied: calibrated values (a calibrated flag on each); raw: the values as stored"


def _out(dataset: Dataset, at: datetime | None = None) -> dict[str, Any]:
    code = sharecode.display(dataset.code)
    base = f"/v1/datasets/{code}"
    start, end = datasets.window_of(dataset, at)
    return {
        "code": code, "title": dataset.title, "description": dataset.description, "licence": dataset.licence,
        "site": dataset.site, "kits": list(dataset.kits), "quantities": list(dataset.quantities),
        "start": start, "end": end, "rolling_days": dataset.rolling_days, "every": dataset.every,
        "agg": dataset.agg, "timezone": dataset.timezone, "created_by": dataset.created_by,
        "created_at": dataset.created_at, "expires_at": dataset.expires_at,
        "frozen": datasets.is_frozen(dataset),
        "links": {"preview": base, "csv": f"{base}/data.csv", "json": f"{base}/data.json",
                  "parquet": f"{base}/data.parquet", "zip": f"{base}/dataset.zip"},
    }


def _local(moment: datetime | None, zone: ZoneInfo) -> datetime | None:
    """A time without an offset is the dataset's local time, as its start and end are; kept in UTC."""
    if moment is None:
        return None
    try:
        return (moment.replace(tzinfo=zone) if moment.tzinfo is None else moment).astimezone(UTC)
    except OverflowError:  # year 1 east of UTC, or 9999 west of it
        raise ApiError(400, "bad_time", f"{moment.isoformat()} is outside the times the store can keep: give a "
                                        "time like 2025-06-01T00:00:00+03:00") from None


def frozen_files(folder: Path, code: str) -> list[Path]:
    """Every file ``api.frozen`` may have left for a dataset: its kept files, their locks and temporary files.

    Read from one listing of the folder: a dataset has a kept file per choice (datasets.SUFFIXES, a few hundred
    names), and looking each of them up would list the folder hundreds of times."""
    kept = {f"{code}{suffix}.{fmt}" for suffix in datasets.SUFFIXES for fmt in FORMATS}
    found: list[Path] = []
    for path in folder.iterdir() if folder.is_dir() else ():
        name = path.name
        if name in kept:
            found.append(path)
        elif name.startswith(".") and name.endswith(".lock") and name[1:-5] in kept:
            found.append(path)
        elif name.startswith(".") and name.endswith(".tmp") and name[1:].rsplit(".", 2)[0] in kept:
            found.append(path)  # .<kept name>.<mkstemp's letters>.tmp
    return sorted(found)


@router.post("", response_model=DatasetOut, status_code=201, responses=responses(400, 401, 404, 422),
             summary="Publish a class dataset (staff)")
def create_dataset(body: DatasetIn, session: SessionDep, settings: SettingsDep, staff: Staff) -> dict[str, Any]:
    site = registry.get_site(session, body.site)
    zone = parse_zone(body.tz or site.timezone or settings.api_timezone)
    kits = registry.check_kits(session, body.site, split_names(body.kits))
    if not kits:
        raise ApiError(404, "no_kits", f"site {body.site!r} has no kits yet: register one first")
    quantities = parse_quantities(body.quantities)
    start, end = _window(body, zone)
    # the site's elevation too: a dataset of sea_level_pressure at a site without one is refused now, saying why,
    # rather than at every download
    request = make_request(site=body.site, kits=kits, quantities=quantities, start=start, end=end, zone=zone,
                           every=body.every, agg=body.agg, layout="tidy", max_raw_days=settings.api_max_raw_days,
                           elevation_m=site.elevation_m)
    row = registry.add_dataset(
        session, title=body.title, description=body.description, licence=body.licence, site=body.site, kits=kits,
        quantities=quantities, start=request.start, end=request.end, every=body.every, agg=body.agg,
        timezone=zone.key, created_by=staff.name, expires_at=_local(body.expires_at, zone),
        rolling_days=body.rolling_days)
    return _out(row)


def _window(body: DatasetIn, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """start and end, or the last rolling_days days up to now: exactly one of the two, said in a sentence."""
    fixed = body.start is not None or body.end is not None
    if body.rolling_days is not None:
        if fixed:
            raise ApiError(400, "window_twice", "give either start and end (a fixed window) or rolling_days (the "
                                                "last N days up to now), not both")
        low, high = registry.ROLLING_DAYS
        if not low <= body.rolling_days <= high:
            raise ApiError(400, "bad_rolling_days", f"rolling_days must be from {low} to {high} days, not "
                                                    f"{body.rolling_days}: e.g. 7 for the last week")
        end = now()
        return end - timedelta(days=body.rolling_days), end
    if body.start is None or body.end is None:
        raise ApiError(400, "no_window", "give the window: start and end (e.g. 2025-03-01 and 2025-05-31), or "
                                         "rolling_days for the last N days up to now (e.g. 7)")
    return (parse_time(body.start, zone, is_end=False, what="start"),
            parse_time(body.end, zone, is_end=True, what="end"))


@router.get("", response_model=list[DatasetOut], responses=responses(401, 422),
            summary="Every class dataset, or with mine=true the caller's own (staff)")
def list_datasets(session: SessionDep, staff: Staff,
                  mine: bool = Query(False, description="only the datasets published with this staff token's name")
                  ) -> list[dict[str, Any]]:
    at = now()
    found = registry.list_datasets(session, created_by=staff.name if mine else None)
    return [_out(d, at) for d in found]


@router.patch("/{code}", response_model=DatasetOut, responses=responses(400, 401, 404, 422),
              summary="Edit a class dataset's title, description, expiry or rolling days (staff)")
def edit_dataset(code: str, body: DatasetEdit, session: SessionDep, _staff: Staff) -> dict[str, Any]:
    # Staff reach expired datasets too (to extend them), and a staff token is not a guess: no failure budget.
    changes = body.model_dump(exclude_unset=True)
    if changes.get("expires_at") is not None:
        zone = parse_zone(registry.get_dataset(session, code).timezone)  # a time without an offset is local
        changes["expires_at"] = _local(changes["expires_at"], zone)
    return _out(registry.edit_dataset(session, code, **changes))


@router.delete("/{code}", status_code=204, response_class=Response, responses=responses(401, 404),
               summary="Delete a class dataset and its kept files (staff): the code stops working")
def delete_dataset(code: str, session: SessionDep, settings: SettingsDep, _staff: Staff) -> Response:
    stored = registry.delete_dataset(session, code)
    # After the row: a download that looked the code up before may still keep a file, which no request can
    # reach now that the code is unknown.
    for path in frozen_files(settings.datasets_dir, stored):
        path.unlink(missing_ok=True)
    return Response(status_code=204)


@router.get("/{code}", response_model=DatasetPreview, responses=responses(404, 410),
            summary="What a share code holds, with its first rows")
async def preview(code: str, request: Request, session: SessionDep, influx: InfluxDep,
                  settings: SettingsDep) -> dict[str, Any]:
    dataset = dataset_for_code(request, session, code)
    at = now()
    wanted = datasets.request_of(dataset, layout="wide", at=at, facts=datasets.facts_of(session, dataset, at))
    shape = streaming.shape_of(wanted)
    fmt = export.TimeFormatter(wanted.zone)
    rows: list[list[Any]] = []
    try:
        async for chunk in export.wide_rows(source.rows(influx, settings.influx_database, wanted), shape):
            rows.extend([fmt(r[0]), *r[1:]] for r in chunk)
            if len(rows) >= settings.api_preview_rows:
                break
    except InfluxError:  # the store being down must not hide what the code holds
        rows = []
    return {**_out(dataset, at), "columns": shape.columns, "rows": rows[: settings.api_preview_rows]}


async def _with_bom(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield datasets.BOM
    async for part in stream:
        yield part


async def _download(request: Request, code: str, fmt: Literal["csv", "json", "parquet", "zip"],
                    session: SessionDep, influx: InfluxDep, settings: SettingsDep,
                    options: datasets.CsvOptions = datasets.PLAIN) -> StreamingResponse:
    dataset = dataset_for_code(request, session, code)
    at = now()  # one window for the whole file and its name, even as the download runs past midnight
    facts = datasets.facts_of(session, dataset, at)  # its calibrations and elevation, read before the stream
    session.close()
    database = settings.influx_database
    frozen = datasets.is_frozen(dataset, at)
    path = settings.datasets_dir / f"{dataset.code}{options.suffix}.{fmt}"
    api_path = f"/v1/datasets/{sharecode.display(dataset.code)}"
    translator = getattr(request.app.state, "translator_for", None)  # the web app's catalogs, when it is mounted
    translate = translator(options.lang) if translator is not None else None

    def make() -> Any:
        if fmt == "zip":
            return datasets.zip_bytes(influx, database, dataset, api_path, options, at, translate, facts)
        request = datasets.request_of(dataset, at=at, facts=facts, options=options)
        body = streaming.body(influx, database, request, fmt, decimal_comma=options.decimal_comma,
                              meta={"dataset": api_path, "title": dataset.title, "licence": dataset.licence})
        return _with_bom(body) if options.bom else body

    freezer: Freezer = request.app.state.freezer
    stream = await streaming.primed(freezer.serve(path, make) if frozen else make())
    media = "application/zip" if fmt == "zip" else export.MEDIA_TYPES[fmt]
    return streaming.Streamed(stream, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="{datasets.file_name(dataset, fmt, at=at)}"'})


@router.get("/{code}/data.csv", response_class=StreamingResponse,
            responses={**FILE_RESPONSES, **responses(400, 404, 410, 422, 502, 503)},
            summary="The dataset as one tidy CSV")
async def data_csv(code: str, request: Request, session: SessionDep, influx: InfluxDep, settings: SettingsDep,
                   decimal: Literal["point", "comma"] = Query("point", description=DECIMAL),
                   decimal_comma: bool = Query(False, description="the same as decimal=comma"),
                   bom: bool = Query(False, description=BOM_TEXT),
                   flags: Literal["include", "exclude", "only"] = Query("include", description=FLAGS_TEXT),
                   calibration: Literal["applied", "raw"] = Query("applied", description=CALIBRATION_TEXT)
                   ) -> StreamingResponse:
    options = datasets.CsvOptions(decimal_comma=decimal_comma or decimal == "comma", bom=bom, flags=flags,
                                  calibration=calibration)
    return await _download(request, code, "csv", session, influx, settings, options)


@router.get("/{code}/data.json", response_class=StreamingResponse,
            responses={**FILE_RESPONSES, **responses(400, 404, 410, 422, 502, 503)},
            summary="The dataset as JSON")
async def data_json(code: str, request: Request, session: SessionDep, influx: InfluxDep, settings: SettingsDep,
                    flags: Literal["include", "exclude", "only"] = Query("include", description=FLAGS_TEXT),
                    calibration: Literal["applied", "raw"] = Query("applied", description=CALIBRATION_TEXT)
                    ) -> StreamingResponse:
    options = datasets.CsvOptions(flags=flags, calibration=calibration)
    return await _download(request, code, "json", session, influx, settings, options)


@router.get("/{code}/data.parquet", response_class=StreamingResponse,
            responses={**FILE_RESPONSES, **responses(400, 404, 410, 422, 502, 503)},
            summary="The dataset as Parquet")
async def data_parquet(code: str, request: Request, session: SessionDep, influx: InfluxDep, settings: SettingsDep,
                       flags: Literal["include", "exclude", "only"] = Query("include", description=FLAGS_TEXT),
                       calibration: Literal["applied", "raw"] = Query("applied", description=CALIBRATION_TEXT)
                       ) -> StreamingResponse:
    options = datasets.CsvOptions(flags=flags, calibration=calibration)
    return await _download(request, code, "parquet", session, influx, settings, options)


@router.get("/{code}/dataset.zip", response_class=StreamingResponse,
            responses={200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}},
                       **responses(400, 404, 410, 422, 502, 503)},
            summary="The dataset to keep: a CSV per kit, gaps.csv, datapackage.json and a README")
async def data_zip(code: str, request: Request, session: SessionDep, influx: InfluxDep, settings: SettingsDep,
                   decimal_comma: bool = Query(False, description="the CSVs inside use ';' between columns and a "
                                                               "decimal comma, as spreadsheets in LV/LT expect"),
                   bom: bool = Query(False, description=BOM_TEXT),
                   lang: Literal["en", "lv", "lt", "ru"] = Query("en", description="the language of README.md"),
                   flags: Literal["include", "exclude", "only"] = Query("include", description=FLAGS_TEXT),
                   calibration: Literal["applied", "raw"] = Query("applied", description=CALIBRATION_TEXT),
                   layout: Literal["wide", "tidy"] = Query("wide", description="wide: a column per quantity in each "
                                                           "kit's CSV; tidy: a row per value (time, kit, quantity, "
                                                           "value, unit, flags)")
                   ) -> StreamingResponse:
    options = datasets.CsvOptions(decimal_comma=decimal_comma, bom=bom, lang=lang, flags=flags,
                                  calibration=calibration, zip_layout=layout)
    return await _download(request, code, "zip", session, influx, settings, options)
