"""Class datasets: the readings request a dataset stands for, and its zip (CSVs, datapackage.json, README).

A dataset whose window has ended is frozen: its files are built once, kept under
``<state_dir>/datasets/`` and served from there (``api.frozen``), so the same code always gives the
same bytes (readings backfilled after that are not added). Zip entries carry the dataset's creation time.
"""

from __future__ import annotations

import zipfile
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import orjson

from api import streaming
from api.export import Format
from api.query import ReadingsRequest, aggregate_statement, make_request, parse_zone, raw_statement, slices
from lauks.catalog import CATALOG
from lauks.influx import InfluxClient
from metastore import sharecode
from metastore.db import Dataset, now


def is_frozen(dataset: Dataset, at: datetime | None = None) -> bool:
    return dataset.end <= (at or now())


def request_of(dataset: Dataset, *, layout: str = "tidy", kits: list[str] | None = None) -> ReadingsRequest:
    return make_request(site=dataset.site, kits=kits or list(dataset.kits), quantities=list(dataset.quantities),
                        start=dataset.start, end=dataset.end, zone=parse_zone(dataset.timezone),
                        every=dataset.every, agg=dataset.agg, layout="wide" if layout == "wide" else "tidy",
                        max_raw_days=100_000)


def statements(request: ReadingsRequest) -> list[str]:
    if not request.aggregated:
        return [raw_statement(request)]
    return [aggregate_statement(request, a, b) for a, b in slices(request)]


def datapackage(dataset: Dataset, api_path: str) -> dict[str, Any]:
    """Frictionless Data Package: one resource per kit, fields with units, licence, citation, the query."""
    zone = parse_zone(dataset.timezone)
    resources = []
    for kit in dataset.kits:
        request = request_of(dataset, layout="wide", kits=[kit])
        fields: list[dict[str, Any]] = [{"name": "time", "type": "datetime",
                                         "description": f"start of the bucket, ISO 8601 in {zone.key}"
                                         if dataset.every else f"time of the sample, ISO 8601 in {zone.key}"}]
        for q in dataset.quantities:
            row = CATALOG[q]
            how = f"{request.aggregates[q]} over {dataset.every}" if dataset.every else "as measured"
            fields.append({"name": q, "type": "number", "title": f"{row.description} ({row.unit or 'no unit'})",
                           "description": f"{row.description}, {how}", "unit": row.unit, "ucum": row.ucum})
        resources.append({"name": kit, "path": f"{kit}.csv", "profile": "tabular-data-resource", "format": "csv",
                          "mediatype": "text/csv", "encoding": "utf-8",
                          "dialect": {"delimiter": ",", "lineTerminator": "\r\n"},
                          "schema": {"fields": fields}, "lauks": {"influxql": statements(request)}})
    created = dataset.created_at.isoformat()
    citation = (f"{dataset.title}. Lauks site {dataset.site}, kits {', '.join(dataset.kits)}, "
                f"{dataset.start.astimezone(zone):%Y-%m-%d} to {dataset.end.astimezone(zone):%Y-%m-%d}. "
                f"Dataset {sharecode.display(dataset.code)}, created {dataset.created_at:%Y-%m-%d}.")
    return {
        "profile": "tabular-data-package",
        "name": f"lauks-{dataset.site}-{dataset.code.lower()}",
        "title": dataset.title,
        "description": dataset.description,
        "licenses": [{"name": dataset.licence}],
        "created": created,
        "citation": citation,
        "lauks": {"code": sharecode.display(dataset.code), "site": dataset.site, "kits": list(dataset.kits),
                  "quantities": list(dataset.quantities), "start": dataset.start.isoformat(),
                  "end": dataset.end.isoformat(), "every": dataset.every, "agg": dataset.agg,
                  "timezone": dataset.timezone, "api": api_path},
        "resources": resources,
    }


def readme(dataset: Dataset, package: dict[str, Any]) -> str:
    zone = parse_zone(dataset.timezone)
    lines = [f"# {dataset.title}", "", dataset.description, "",
             f"Measured by the Lauks sensor kits {', '.join(dataset.kits)} at site {dataset.site}, from "
             f"{dataset.start.astimezone(zone):%Y-%m-%d %H:%M} to {dataset.end.astimezone(zone):%Y-%m-%d %H:%M} "
             f"({zone.key} time).", ""]
    if dataset.every:
        lines += [f"Each row is one {dataset.every} bucket: the `time` column is when the bucket starts. Buckets in "
                  "which a kit measured nothing are left out.", ""]
    else:
        lines += ["Each row is one sample as the kit measured it.", ""]
    lines += ["One file per kit (`<kit>.csv`), one column per quantity:", "", "| column | unit | meaning |",
              "|---|---|---|"]
    lines += [f"| {q} | {CATALOG[q].unit or '—'} | {CATALOG[q].description} |" for q in dataset.quantities]
    lines += ["", f"Licence: {dataset.licence}. Please cite it as:", "", f"> {package['citation']}", "",
              "`datapackage.json` describes the files for programs (Frictionless Data Package), including the "
              "exact query that produced them.", ""]
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


async def zip_bytes(client: InfluxClient, database: str, dataset: Dataset, api_path: str) -> AsyncIterator[bytes]:
    """The zip, written as it streams: nothing bigger than a chunk is held."""
    sink = _Sink()
    stamp = dataset.created_at.timetuple()[:6]
    archive = zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED)  # type: ignore[call-overload]

    def entry(name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        return info

    package = datapackage(dataset, api_path)
    archive.writestr(entry("README.md"), readme(dataset, package))
    archive.writestr(entry("datapackage.json"), orjson.dumps(package, option=orjson.OPT_INDENT_2))
    yield sink.drain()
    for kit in dataset.kits:
        request = request_of(dataset, layout="wide", kits=[kit])
        with archive.open(entry(f"{kit}.csv"), "w", force_zip64=True) as member:
            async for part in streaming.body(client, database, request, "csv", kit_in_names=False):
                member.write(part)
                data = sink.drain()
                if data:
                    yield data
        yield sink.drain()
    archive.close()
    yield sink.drain()


def file_name(dataset: Dataset, extension: str) -> str:
    zone = parse_zone(dataset.timezone)
    return (f"lauks_{dataset.site}_{sharecode.display(dataset.code)}_{dataset.start.astimezone(zone):%Y-%m-%d}_"
            f"{dataset.end.astimezone(zone):%Y-%m-%d}.{extension}")


FORMATS: tuple[Format, ...] = ("csv", "json", "parquet")
