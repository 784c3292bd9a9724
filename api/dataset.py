"""Class datasets: the readings request a dataset stands for, and its zip (CSVs, datapackage.json, README).

A dataset whose window has ended is frozen: its files are built once, kept under
``<state_dir>/datasets/`` and served from there (``api.frozen``), so the same code always gives the
same bytes (readings backfilled after that are not added). Zip entries carry the dataset's creation time.
A rolling dataset (``rolling_days``) is the last N days up to now (``window_of``): live, never frozen.
"""

from __future__ import annotations

import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Protocol

import orjson

from api import streaming
from api.export import Format
from api.query import (
    ReadingsRequest,
    aggregate_statement,
    make_request,
    parse_every,
    parse_zone,
    raw_statement,
    slices,
)
from lauks.catalog import CATALOG
from lauks.influx import InfluxClient
from metastore import sharecode
from metastore.db import Dataset, now

BOM = "\ufeff".encode()  # UTF-8's byte order mark: Excel reads a CSV as UTF-8 only when it starts with one


@dataclass(frozen=True)
class CsvOptions:
    """What changes a dataset's CSV bytes besides its data: each choice is its own kept file (``api.frozen``)."""

    decimal_comma: bool = False  # ';' between columns and a decimal comma, as spreadsheets in LV/LT expect
    bom: bool = False  # a byte order mark first, so Excel on Windows reads the UTF-8 (ā, č, ų, µg/m³)
    lang: str = "en"  # the zip's README.md: its language (one of README_LANGUAGES)

    @property
    def suffix(self) -> str:
        """The kept file's name part: ``{code}{suffix}.{fmt}``."""
        return (("-comma" if self.decimal_comma else "") + ("-bom" if self.bom else "")
                + ("" if self.lang == "en" else f"-{self.lang}"))


PLAIN = CsvOptions()  # ',' and a decimal point, no byte order mark
README_LANGUAGES = ("en", "lv", "lt", "ru")
# Every suffix a kept file can have, for removing them all with the dataset.
SUFFIXES: tuple[str, ...] = tuple(CsvOptions(comma, bom, lang).suffix for comma in (False, True)
                                  for bom in (False, True) for lang in README_LANGUAGES)


class Translate(Protocol):
    """A message in the reader's language with its ``%(name)s`` parts filled in (the web app's catalogs)."""

    def __call__(self, message: str, **values: Any) -> str: ...


def english(message: str, **values: Any) -> str:
    return message % values if values else message


def window_of(dataset: Dataset, at: datetime | None = None) -> tuple[datetime, datetime]:
    """The window the dataset stands for at ``at`` (default: now), as (start, end), end excluded.

    Fixed: its start and end. Rolling: the last ``rolling_days`` days up to ``at``; with buckets (``every``), the
    start goes back to where its bucket starts in the dataset's time zone, so the first bucket is a whole one
    (a daily mean of the last three hours of a day would mislead a class).
    """
    if dataset.rolling_days is None:
        return dataset.start, dataset.end
    end = (at or now()).replace(microsecond=0)
    start = end - timedelta(days=dataset.rolling_days)
    if dataset.every:
        zone = parse_zone(dataset.timezone)
        local = start.astimezone(zone)
        midnight = datetime.combine(local.date(), time(0), zone)
        step = parse_every(dataset.every)
        into = (local.replace(tzinfo=None) - midnight.replace(tzinfo=None)).total_seconds()
        start = (midnight.replace(tzinfo=None) + timedelta(seconds=into // step * step)).replace(tzinfo=zone)
    return start, end


def is_frozen(dataset: Dataset, at: datetime | None = None) -> bool:
    """A fixed window that has ended: its bytes never change again. A rolling dataset never is."""
    return dataset.rolling_days is None and dataset.end <= (at or now())


def request_of(dataset: Dataset, *, layout: str = "tidy", kits: list[str] | None = None,
               at: datetime | None = None) -> ReadingsRequest:
    start, end = window_of(dataset, at)
    return make_request(site=dataset.site, kits=kits or list(dataset.kits), quantities=list(dataset.quantities),
                        start=start, end=end, zone=parse_zone(dataset.timezone),
                        every=dataset.every, agg=dataset.agg, layout="wide" if layout == "wide" else "tidy",
                        max_raw_days=100_000)


def statements(request: ReadingsRequest) -> list[str]:
    if not request.aggregated:
        return [raw_statement(request)]
    return [aggregate_statement(request, a, b) for a, b in slices(request)]


def datapackage(dataset: Dataset, api_path: str, options: CsvOptions = PLAIN,
                at: datetime | None = None) -> dict[str, Any]:
    """Frictionless Data Package: one resource per kit, fields with units, licence, citation, the query."""
    zone = parse_zone(dataset.timezone)
    start, end = window_of(dataset, at)
    resources = []
    for kit in dataset.kits:
        request = request_of(dataset, layout="wide", kits=[kit], at=at)
        fields: list[dict[str, Any]] = [{"name": "time", "type": "datetime",
                                         "description": f"start of the bucket, ISO 8601 in {zone.key}"
                                         if dataset.every else f"time of the sample, ISO 8601 in {zone.key}"}]
        for q in dataset.quantities:
            row = CATALOG[q]
            how = (f"{request.aggregates[q]} over {dataset.every}, rounded to {row.resolution:g}"
                   if dataset.every else "as measured")
            field: dict[str, Any] = {"name": q, "type": "number",
                                     "title": f"{row.description} ({row.unit or 'no unit'})",
                                     "description": f"{row.description}, {how}", "unit": row.unit, "ucum": row.ucum}
            if options.decimal_comma:
                field["decimalChar"] = ","
            fields.append(field)
        resources.append({"name": kit, "path": file_name(dataset, "csv", kit=kit, at=at),
                          "profile": "tabular-data-resource", "format": "csv",
                          "mediatype": "text/csv", "encoding": "utf-8-sig" if options.bom else "utf-8",
                          "dialect": {"delimiter": ";" if options.decimal_comma else ",", "lineTerminator": "\r\n"},
                          "schema": {"fields": fields}, "lauks": {"influxql": statements(request)}})
    created = dataset.created_at.isoformat()
    first, last = _days(dataset, at)
    citation = (f"{dataset.title}. Lauks site {dataset.site}, kits {', '.join(dataset.kits)}, "
                f"{first} to {last}. Dataset {sharecode.display(dataset.code)}, created {dataset.created_at:%Y-%m-%d}.")
    return {
        "profile": "tabular-data-package",
        "name": f"lauks-{dataset.site}-{dataset.code.lower()}",
        "title": dataset.title,
        "description": dataset.description,
        "licenses": [{"name": dataset.licence}],
        "created": created,
        "citation": citation,
        "lauks": {"code": sharecode.display(dataset.code), "site": dataset.site, "kits": list(dataset.kits),
                  "quantities": list(dataset.quantities), "start": start.isoformat(),
                  "end": end.isoformat(), "rolling_days": dataset.rolling_days, "every": dataset.every,
                  "agg": dataset.agg, "timezone": dataset.timezone, "api": api_path},
        "resources": resources,
    }


def readme(dataset: Dataset, package: dict[str, Any], at: datetime | None = None, _: Translate = english) -> str:
    """The zip's README.md for people, in the language of ``_`` (English without it). Its sentences are in the web
    app's catalogs (area ``exports``), so each is written whole, with its parts as placeholders."""
    zone = parse_zone(dataset.timezone)
    start, end = window_of(dataset, at)
    lines = [f"# {dataset.title}", "", dataset.description, "",
             _("Measured by the Lauks sensor kits %(kits)s at site %(site)s, from %(start)s to %(end)s (%(zone)s "
               "time).", kits=", ".join(dataset.kits), site=dataset.site,
               start=start.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
               end=end.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
               zone=zone.key), ""]
    if dataset.rolling_days is not None:
        lines += [_("This is a rolling dataset: it always holds the last %(days)s days, so a download made later "
                    "holds newer readings.", days=dataset.rolling_days), ""]
    if dataset.every:
        lines += [_("Each row is one %(every)s bucket: the `time` column is when the bucket starts. Buckets in which "
                    "a kit measured nothing are left out. Values are rounded to the step the sensors can tell apart "
                    "(the resolution column).", every=dataset.every), ""]
    else:
        lines += [_("Each row is one sample as the kit measured it."), ""]
    header = [_("column"), _("unit"), _("resolution"), _("meaning")]
    lines += [_("One file per kit, one column per quantity:"), "", "| " + " | ".join(header) + " |",
              "|---|---|---|---|"]
    lines += [f"| {q} | {CATALOG[q].unit or '—'} | {CATALOG[q].resolution:g} | {CATALOG[q].description} |"
              for q in dataset.quantities]
    lines += ["", _("Licence: %(licence)s. Please cite it as:", licence=dataset.licence), "",
              f"> {package['citation']}", "",
              _("`datapackage.json` describes the files for programs (Frictionless Data Package), including the "
                "exact query that produced them."), ""]
    return "\n".join(lines)


class _Sink:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: Any) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        data = b"".join(self.parts)
        self.parts = []
        return data


async def zip_bytes(client: InfluxClient, database: str, dataset: Dataset, api_path: str,
                    options: CsvOptions = PLAIN, at: datetime | None = None,
                    translate: Translate | None = None) -> AsyncIterator[bytes]:
    """The zip, written as it streams: nothing bigger than a chunk is held. Every part is of one window."""
    at = at or now()
    sink = _Sink()
    stamp = dataset.created_at.timetuple()[:6]
    archive = zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED)  # type: ignore[call-overload]

    def entry(name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        return info

    package = datapackage(dataset, api_path, options, at)
    archive.writestr(entry("README.md"), readme(dataset, package, at, translate or english))
    archive.writestr(entry("datapackage.json"), orjson.dumps(package, option=orjson.OPT_INDENT_2))
    yield sink.drain()
    for kit in dataset.kits:
        request = request_of(dataset, layout="wide", kits=[kit], at=at)
        with archive.open(entry(file_name(dataset, "csv", kit=kit, at=at)), "w", force_zip64=True) as member:
            if options.bom:
                member.write(BOM)
            async for part in streaming.body(client, database, request, "csv", decimal_comma=options.decimal_comma,
                                             kit_in_names=False):
                member.write(part)
                data = sink.drain()
                if data:
                    yield data
        yield sink.drain()
    archive.close()
    yield sink.drain()


def _days(dataset: Dataset, at: datetime | None) -> tuple[str, str]:
    """The first and the last day the window touches, in the dataset's zone (an end at midnight excludes it)."""
    zone = parse_zone(dataset.timezone)
    start, end = window_of(dataset, at)
    last = end.astimezone(zone)
    if last.time() == time(0) and end > start:
        last -= timedelta(days=1)
    return f"{start.astimezone(zone):%Y-%m-%d}", f"{last:%Y-%m-%d}"


def file_name(dataset: Dataset, extension: str, *, kit: str | None = None, at: datetime | None = None) -> str:
    """``lauks_<site>_<CODE>_<first day>_<last day>[_<kit>].<ext>``: one stem for data.csv's download, the zip
    and the CSVs inside it, so a pupil sees they belong together. Days are the dataset's local days, the last one
    included (as /v1/readings names its files)."""
    first, last = _days(dataset, at)
    tail = f"_{kit}" if kit else ""
    return f"lauks_{dataset.site}_{sharecode.display(dataset.code)}_{first}_{last}{tail}.{extension}"


FORMATS: tuple[Format, ...] = ("csv", "json", "parquet")
