"""Writers that turn streamed rows into CSV, JSON or Parquet bytes, a chunk at a time.

A row is ``[time_ms, kit, value_of_quantity_1, ..., masks]`` in time order (then kit order), as
``api.source.rows`` gives it: ``masks`` is a tuple of one quality flag mask per quantity, or None when all
are 0. Each layout carries the flags in one ``flags`` column (lauks.quality's texts). Nothing holds more than
one chunk.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import orjson

from lauks import quality
from lauks.catalog import CATALOG
from lauks.derived import DERIVED

Row = list[Any]
Format = Literal["csv", "json", "parquet"]
FLUSH_ROWS = 2_000  # rows per chunk sent: about 100 kB of CSV
PARQUET_ROWS = 10_000  # rows per row group: what one holds in memory while it is written
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
    def value_columns(self) -> list[str]:
        """The wide layout's value columns, in the order of a wide row's values (and of its flags)."""
        if not self.kit_in_names:
            return list(self.quantities)
        return [f"{kit}.{q}" for kit in self.kits for q in self.quantities]

    @property
    def columns(self) -> list[str]:
        if self.layout == "tidy":
            return ["time", "kit", "quantity", "value", "unit", "flags"]
        return ["time", *self.value_columns, "flags"]

    def unit_of(self, column: str) -> str:
        if column in ("time", "kit", "quantity", "value", "unit", "flags"):
            return ""
        return unit_of(column.rsplit(".", 1)[-1])


def unit_of(quantity: str) -> str:
    """A stored or derived quantity's unit."""
    found = CATALOG.get(quantity)
    return found.unit if found is not None else DERIVED[quantity].unit


def description_of(quantity: str) -> str:
    found = CATALOG.get(quantity)
    return found.description if found is not None else DERIVED[quantity].description


class _FlagTexts(dict[int, str]):
    """A mask's tidy text, made once per mask (a request sees a handful); with ``sep``, as a CSV cell (quoted
    when it holds the separator: "stuck;battery_low" in a file with ';' between columns)."""

    def __init__(self, sep: str | None = None) -> None:
        super().__init__()
        self.sep = sep

    def __missing__(self, mask: int) -> str:
        text = quality.tidy_text(mask)
        text = self[mask] = text if self.sep is None else _csv_text(text, self.sep)
        return text


class TimeFormatter:
    """ISO 8601 in the school's zone, with its offset (``Z`` for UTC).

    Formatting is the hot loop of an export, so the zone's offset is looked up once per quarter hour
    (every zone changes offset on a quarter hour) and each day's date text once.
    """

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self.utc = zone.key == "UTC"
        self._offsets: dict[int, tuple[int, str]] = {}
        self._days: dict[int, str] = {}
        self._last_ms = -1
        self._last_text = ""

    def _offset(self, quarter: int) -> tuple[int, str]:
        found = self._offsets.get(quarter)
        if found is None:
            if len(self._offsets) > 10_000:
                self._offsets.clear()
            delta = datetime.fromtimestamp(quarter * 900, self.zone).utcoffset()
            seconds = int(delta.total_seconds()) if delta is not None else 0
            if self.utc:
                suffix = "Z"
            else:
                sign = "-" if seconds < 0 else "+"
                hours, minutes = divmod(abs(seconds) // 60, 60)
                suffix = f"{sign}{hours:02d}:{minutes:02d}"
            found = self._offsets[quarter] = (seconds * 1000, suffix)
        return found

    def __call__(self, ms: int) -> str:
        if ms == self._last_ms:
            return self._last_text
        found = self._offsets.get(ms // 900_000)
        offset, suffix = found if found is not None else self._offset(ms // 900_000)
        day, rest = divmod(ms + offset, 86_400_000)
        prefix = self._days.get(day)
        if prefix is None:
            if len(self._days) > 10_000:
                self._days.clear()
            prefix = self._days[day] = (date(1970, 1, 1) + timedelta(days=day)).isoformat() + "T"
        second, milli = divmod(rest, 1000)
        if milli:
            text = f"{prefix}{_clock()[second]}.{milli:03d}{suffix}"
        else:
            text = prefix + _clock()[second] + suffix
        self._last_ms, self._last_text = ms, text
        return text


_CLOCK: list[str] = []


def _clock() -> list[str]:
    """``HH:MM:SS`` for every second of a day, made once (about 5 MB) and shared by every export."""
    if not _CLOCK:
        _CLOCK.extend(f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60))
    return _CLOCK


async def tidy_rows(chunks: AsyncIterator[list[Row]], shape: Shape) -> AsyncIterator[list[Row]]:
    """[time_ms, kit, quantity, value, unit, flags] per value; missing values are left out."""
    units = [unit_of(q) for q in shape.quantities]
    quantities = shape.quantities
    texts = _FlagTexts()
    async for chunk in chunks:
        out: list[Row] = []
        if len(quantities) == 1:  # one quantity: the common case, unrolled
            quantity, unit = quantities[0], units[0]
            for t, kit, value, masks in chunk:
                if value is not None:
                    out.append([t, kit, quantity, value, unit, texts[masks[0]] if masks else ""])
        else:
            for row in chunk:
                t, kit, masks = row[0], row[1], row[-1]
                for i, value in enumerate(row[2:-1]):
                    if value is not None:
                        out.append([t, kit, quantities[i], value, units[i], texts[masks[i]] if masks else ""])
        if out:
            yield out


async def wide_rows(chunks: AsyncIterator[list[Row]], shape: Shape) -> AsyncIterator[list[Row]]:
    """[time_ms, value per kit and quantity ..., flags]: rows of the same time are joined into one, and their
    flags into one text ("k1.temperature:stuck k2.humidity:spike+battery_low", "" for none)."""
    width = len(shape.quantities)
    slot = {kit: i * width for i, kit in enumerate(shape.kits)}
    names = shape.value_columns
    empty = [None] * (len(shape.kits) * width)
    current: Row | None = None
    masks: list[int] | None = None  # the current row's, once one of its values has a flag

    def finish(row: Row) -> Row:
        row.append(quality.wide_text(names, masks) if masks is not None else "")
        return row

    async for chunk in chunks:
        out: list[Row] = []
        for row in chunk:
            t = row[0]
            if current is None or current[0] != t:
                if current is not None:
                    out.append(finish(current))
                current = [t, *empty]
                masks = None
            start = slot.get(row[1])
            if start is None:
                continue
            for i, value in enumerate(row[2:-1], start + 1):
                if value is not None:
                    current[i] = value
            found = row[-1]
            if found is not None:
                if masks is None:
                    masks = [0] * len(names)
                for i, mask in enumerate(found, start):
                    masks[i] |= mask
        if out:
            yield out
    if current is not None:
        yield [finish(current)]


def _number(value: Any, comma: bool) -> str:
    if value is None:
        return ""
    text = repr(value) if isinstance(value, float) else str(value)
    if text.endswith(".0"):
        text = text[:-2]
    return text.replace(".", ",") if comma else text


def _value_texts(decimal_comma: bool) -> dict[Any, str]:
    return {}


def _value_text(texts: dict[Any, str], value: Any, decimal_comma: bool) -> str:
    """A value's CSV text, remembered: sensor values repeat a lot, and repr is the slow part of an export."""
    text = _number(value, decimal_comma)
    if len(texts) > 200_000:
        texts.clear()
    texts[value] = text
    return text


def _csv_text(value: str, sep: str) -> str:
    if sep in value or '"' in value or "\n" in value or "\r" in value:
        return '"' + value.replace('"', '""') + '"'
    return value


async def csv_bytes(rows: AsyncIterator[list[Row]], shape: Shape, *, decimal_comma: bool = False,
                    bom: bool = False, raw: bool = False) -> AsyncIterator[bytes]:
    """CSV (RFC 4180, CRLF); with ``decimal_comma`` the separator is ';' as spreadsheets in LV/LT expect.

    ``raw``: for the tidy layout, ``rows`` are the stored rows ``[time, kit, value...]`` and are made tidy
    here, in the same pass (the hot path of a big export).
    """
    sep = ";" if decimal_comma else ","
    fmt = TimeFormatter(shape.zone)
    head = sep.join(_csv_text(c, sep) for c in shape.columns) + "\r\n"
    buffer: list[str] = [("\ufeff" if bom else "") + head]
    size = 0
    tidy = shape.layout == "tidy"
    quantity_units = [f"{sep}{q}{sep}" for q in shape.quantities]
    unit_cells = [f"{sep}{_csv_text(unit_of(q), sep)}{sep}" for q in shape.quantities]
    unit_ends = [cell + "\r\n" for cell in unit_cells]  # a value with no flag
    flag_texts = _FlagTexts(sep)
    async for chunk in rows:
        if tidy and raw:
            append = buffer.append
            texts = _value_texts(decimal_comma)
            if len(quantity_units) == 1:  # one quantity: the common case, unrolled
                middle, tail, cell = quantity_units[0], unit_ends[0], unit_cells[0]
                for t, kit, value, masks in chunk:
                    if value is not None:
                        text = texts.get(value) or _value_text(texts, value, decimal_comma)
                        end = tail if masks is None else f"{cell}{flag_texts[masks[0]]}\r\n"
                        append(f"{fmt(t)}{sep}{kit}{middle}{text}{end}")
            else:
                for row in chunk:
                    stamp = fmt(row[0]) + sep + row[1]
                    masks = row[-1]
                    for i, (middle, tail) in enumerate(zip(quantity_units, unit_ends, strict=True)):
                        value = row[2 + i]
                        if value is not None:
                            text = texts.get(value) or _value_text(texts, value, decimal_comma)
                            end = tail if masks is None or not masks[i] else (
                                f"{unit_cells[i]}{flag_texts[masks[i]]}\r\n")
                            append(f"{stamp}{middle}{text}{end}")
        elif tidy:
            for row in chunk:
                buffer.append(f"{fmt(row[0])}{sep}{row[1]}{sep}{row[2]}{sep}{_number(row[3], decimal_comma)}{sep}"
                              f"{_csv_text(row[4], sep)}{sep}{_csv_text(row[5], sep)}\r\n")
        else:
            for row in chunk:
                buffer.append(fmt(row[0]) + sep + sep.join(_number(v, decimal_comma) for v in row[1:-1]) + sep
                              + _csv_text(row[-1], sep) + "\r\n")
        size += len(chunk)
        if size >= FLUSH_ROWS:
            yield "".join(buffer).encode()
            buffer, size = [], 0
    yield "".join(buffer).encode()


async def json_bytes(rows: AsyncIterator[list[Row]], shape: Shape, meta: dict[str, Any]) -> AsyncIterator[bytes]:
    """``{"meta": {...}, "fields": [...], "data": [{column: value}, ...]}``, the data streamed.

    One ``orjson.dumps`` per ``FLUSH_ROWS`` records, never one per record: orjson gives every result a
    buffer of at least 4 kB, so a chunk of 20,000 records dumped one by one held 80 MB.
    """
    fmt = TimeFormatter(shape.zone)
    columns = shape.columns
    fields = [{"name": c, "unit": shape.unit_of(c)} for c in columns]
    head = orjson.dumps({"meta": meta, "fields": fields})
    yield head[:-1] + b', "data": ['
    first = True
    async for chunk in rows:
        for start in range(0, len(chunk), FLUSH_ROWS):
            records = []
            for row in chunk[start:start + FLUSH_ROWS]:
                record = dict(zip(columns, row, strict=True))
                record["time"] = fmt(row[0])
                records.append(record)
            yield (b"\n" if first else b",\n") + orjson.dumps(records)[1:-1]
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


def _pyarrow() -> Any:
    """pyarrow, imported when a Parquet file is first asked for (it costs ~70 MB of memory), with the C library's
    allocator rather than mimalloc, which keeps ~15 MB more for itself after an export."""
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    import pyarrow as pa

    return pa


def parquet_schema(shape: Shape) -> Any:
    pa = _pyarrow()

    time_type = pa.timestamp("ms", tz=shape.zone.key)
    if shape.layout == "tidy":
        return pa.schema([("time", time_type), ("kit", pa.string()), ("quantity", pa.string()),
                          ("value", pa.float64()), ("unit", pa.string()), ("flags", pa.string())])
    return pa.schema([("time", time_type)] + [(c, pa.float64()) for c in shape.value_columns]
                     + [("flags", pa.string())])


# Arrow arrays are built from buffers, never from Python lists: pa.array() on a list imports pandas (about
# 50 MB of memory) to check whether the list is a pandas object.


def _float_array(pa: Any, values: list[Any]) -> Any:
    """float64, with nulls where a value is missing (a wide row's kit measured nothing)."""
    if None not in values:
        return pa.Array.from_buffers(pa.float64(), len(values), [None, pa.py_buffer(array("d", values))])
    valid = bytearray((len(values) + 7) // 8)
    for i, value in enumerate(values):
        if value is not None:
            valid[i >> 3] |= 1 << (i & 7)
    data = array("d", (0.0 if v is None else v for v in values))
    return pa.Array.from_buffers(pa.float64(), len(values), [pa.py_buffer(bytes(valid)), pa.py_buffer(data)])


def _string_array(pa: Any, values: list[str]) -> Any:
    distinct = set(values)
    if len(distinct) == 1:  # one quantity's name or unit, a flags column with no flag: no loop per value
        data = next(iter(distinct)).encode()
        size = len(data)
        count = len(values)
        offsets = array("i", range(0, (count + 1) * size, size)) if size else array("i", bytes(4 * (count + 1)))
        return pa.Array.from_buffers(pa.string(), len(values), [None, pa.py_buffer(offsets),
                                                                pa.py_buffer(data * len(values))])
    encoded = {text: text.encode() for text in distinct}  # a column of a few distinct names or units
    parts = [encoded[v] for v in values]
    offsets = array("i", [0])
    total = 0
    for part in parts:
        total += len(part)
        offsets.append(total)
    return pa.Array.from_buffers(pa.string(), len(values), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(parts))])


def _record_batch(pa: Any, schema: Any, pending: list[Row]) -> Any:
    count = len(pending)
    times = array("q", [row[0] for row in pending])
    arrays = [pa.Array.from_buffers(schema.field(0).type, count, [None, pa.py_buffer(times)])]
    for i in range(1, len(schema)):
        if pa.types.is_string(schema.field(i).type):
            arrays.append(_string_array(pa, [row[i] for row in pending]))
        else:
            arrays.append(_float_array(pa, [None if row[i] is None else float(row[i]) for row in pending]))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


async def parquet_bytes(rows: AsyncIterator[list[Row]], shape: Shape) -> AsyncIterator[bytes]:
    """Parquet, one row group per ``PARQUET_ROWS`` rows, each sent as soon as it is written."""
    pa = _pyarrow()
    import pyarrow.parquet as pq

    schema = parquet_schema(shape)
    sink = _Sink()
    writer = pq.ParquetWriter(sink, schema, compression="zstd")
    pending: list[Row] = []

    def flush() -> None:
        writer.write_batch(_record_batch(pa, schema, pending))
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
