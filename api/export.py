"""Writers that turn streamed rows into CSV, JSON or Parquet bytes, a chunk at a time.

A row is ``[time_ms, kit, value_of_quantity_1, ...]`` in time order (then kit order), exactly as a
raw InfluxDB series of ``SELECT "kit", "q1", ... `` gives it. Nothing holds more than one chunk.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from lauks.catalog import CATALOG

Row = list[Any]
Format = Literal["csv", "json", "parquet"]
FLUSH_BYTES = 1 << 16
PARQUET_ROWS = 50_000
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json",
               "parquet": "application/vnd.apache.parquet"}


@dataclass(frozen=True)
class Shape:
    """What the columns are: the request's kits and quantities, and the layout."""

    kits: list[str]
    quantities: list[str]
    layout: Literal["tidy", "wide"]
    zone: ZoneInfo
    kit_in_names: bool = True  # wide columns named kit.quantity; False for one kit's file: just quantity

    @property
    def columns(self) -> list[str]:
        if self.layout == "tidy":
            return ["time", "kit", "quantity", "value", "unit"]
        if not self.kit_in_names:
            return ["time", *self.quantities]
        return ["time", *(f"{kit}.{q}" for kit in self.kits for q in self.quantities)]

    def unit_of(self, column: str) -> str:
        if column == "value" or column in ("time", "kit", "quantity", "unit"):
            return ""
        return CATALOG[column.rsplit(".", 1)[-1]].unit


class TimeFormatter:
    """ISO 8601 in the school's zone, with its offset (``Z`` for UTC)."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self.utc = zone.key == "UTC"

    def __call__(self, ms: int) -> str:
        moment = datetime.fromtimestamp(ms / 1000, self.zone)
        text = moment.isoformat(timespec="seconds" if ms % 1000 == 0 else "milliseconds")
        return text[:-6] + "Z" if self.utc else text


async def tidy_rows(chunks: AsyncIterator[list[Row]], shape: Shape) -> AsyncIterator[list[Row]]:
    """[time_ms, kit, quantity, value, unit] per stored value; missing values are left out."""
    units = [CATALOG[q].unit for q in shape.quantities]
    quantities = shape.quantities
    async for chunk in chunks:
        out: list[Row] = []
        for row in chunk:
            t, kit = row[0], row[1]
            for i, value in enumerate(row[2:]):
                if value is not None:
                    out.append([t, kit, quantities[i], value, units[i]])
        if out:
            yield out


async def wide_rows(chunks: AsyncIterator[list[Row]], shape: Shape) -> AsyncIterator[list[Row]]:
    """[time_ms, value per kit and quantity ...]: rows of the same time are joined into one."""
    width = len(shape.quantities)
    slot = {kit: 1 + i * width for i, kit in enumerate(shape.kits)}
    empty = [None] * (len(shape.kits) * width)
    current: Row | None = None
    async for chunk in chunks:
        out: list[Row] = []
        for row in chunk:
            t = row[0]
            if current is None or current[0] != t:
                if current is not None:
                    out.append(current)
                current = [t, *empty]
            start = slot.get(row[1])
            if start is None:
                continue
            for i, value in enumerate(row[2:]):
                if value is not None:
                    current[start + i] = value
        if out:
            yield out
    if current is not None:
        yield [current]


def _number(value: Any, comma: bool) -> str:
    if value is None:
        return ""
    text = repr(value) if isinstance(value, float) else str(value)
    if text.endswith(".0"):
        text = text[:-2]
    return text.replace(".", ",") if comma else text


def _csv_text(value: str, sep: str) -> str:
    if sep in value or '"' in value or "\n" in value or "\r" in value:
        return '"' + value.replace('"', '""') + '"'
    return value


async def csv_bytes(rows: AsyncIterator[list[Row]], shape: Shape, *, decimal_comma: bool = False,
                    bom: bool = False) -> AsyncIterator[bytes]:
    """CSV (RFC 4180, CRLF); with ``decimal_comma`` the separator is ';' as spreadsheets in LV/LT expect."""
    sep = ";" if decimal_comma else ","
    fmt = TimeFormatter(shape.zone)
    head = sep.join(_csv_text(c, sep) for c in shape.columns) + "\r\n"
    buffer: list[str] = [("\ufeff" if bom else "") + head]
    size = 0
    tidy = shape.layout == "tidy"
    async for chunk in rows:
        for row in chunk:
            if tidy:
                line = (f"{fmt(row[0])}{sep}{row[1]}{sep}{row[2]}{sep}{_number(row[3], decimal_comma)}{sep}"
                        f"{_csv_text(row[4], sep)}\r\n")
            else:
                line = fmt(row[0]) + sep + sep.join(_number(v, decimal_comma) for v in row[1:]) + "\r\n"
            buffer.append(line)
            size += len(line)
        if size >= FLUSH_BYTES:
            yield "".join(buffer).encode()
            buffer, size = [], 0
    yield "".join(buffer).encode()


async def json_bytes(rows: AsyncIterator[list[Row]], shape: Shape, meta: dict[str, Any]) -> AsyncIterator[bytes]:
    """``{"meta": {...}, "fields": [...], "data": [{column: value}, ...]}``, the data streamed."""
    fmt = TimeFormatter(shape.zone)
    columns = shape.columns
    fields = [{"name": c, "unit": shape.unit_of(c)} for c in columns]
    head = orjson.dumps({"meta": meta, "fields": fields})
    yield head[:-1] + b', "data": ['
    first = True
    async for chunk in rows:
        parts = []
        for row in chunk:
            record = dict(zip(columns, row, strict=True))
            record["time"] = fmt(row[0])
            parts.append(orjson.dumps(record))
        if not parts:
            continue
        body = b",\n".join(parts)
        yield (b"\n" if first else b",\n") + body
        first = False
    yield b"\n]}\n"


class _Sink:
    """A file that pyarrow writes into and we drain after each row group."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0
        self.closed = False

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.parts.append(chunk)
        self.position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def drain(self) -> bytes:
        data = b"".join(self.parts)
        self.parts = []
        return data


def parquet_schema(shape: Shape) -> pa.Schema:
    time_type = pa.timestamp("ms", tz=shape.zone.key)
    if shape.layout == "tidy":
        return pa.schema([("time", time_type), ("kit", pa.string()), ("quantity", pa.string()),
                          ("value", pa.float64()), ("unit", pa.string())])
    return pa.schema([("time", time_type)] + [(c, pa.float64()) for c in shape.columns[1:]])


def _columns(rows: Iterable[Row], width: int) -> list[list[Any]]:
    columns: list[list[Any]] = [[] for _ in range(width)]
    for row in rows:
        for i in range(width):
            columns[i].append(row[i])
    return columns


async def parquet_bytes(rows: AsyncIterator[list[Row]], shape: Shape) -> AsyncIterator[bytes]:
    """Parquet, one row group per ``PARQUET_ROWS`` rows, each sent as soon as it is written."""
    schema = parquet_schema(shape)
    sink = _Sink()
    writer = pq.ParquetWriter(sink, schema, compression="zstd")
    pending: list[Row] = []

    def flush() -> None:
        columns = _columns(pending, len(schema))
        if shape.layout == "tidy":
            columns[3] = [float(v) for v in columns[3]]
        writer.write_batch(pa.record_batch(columns, schema=schema))
        pending.clear()

    async for chunk in rows:
        pending.extend(chunk)
        if len(pending) >= PARQUET_ROWS:
            flush()
            yield sink.drain()
    if pending:
        flush()
    writer.close()
    yield sink.drain()


def content_disposition(site: str, quantities: list[str], start: datetime, end: datetime, zone: ZoneInfo,
                        extension: str) -> str:
    """``lauks_<site>_<quantities>_<first day>_<last day>.<ext>``, dates in the school's zone."""
    first = start.astimezone(zone).date()
    last_moment = end.astimezone(zone)
    last = last_moment.date() if last_moment.time() != datetime.min.time() else (
        last_moment.date().fromordinal(last_moment.date().toordinal() - 1))
    names = "-".join(quantities) if len(quantities) <= 4 else f"{len(quantities)}-quantities"
    return f'attachment; filename="lauks_{site}_{names}_{first.isoformat()}_{last.isoformat()}.{extension}"'
