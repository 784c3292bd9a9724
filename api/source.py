"""Reading rows out of InfluxDB in time order, slice by slice: the I/O edge of a readings request.

A row is ``[time_ms, kit, value per requested quantity..., masks]``: ``masks`` is a tuple of one flag mask
(lauks.quality) per quantity, or None when every one is 0 (the common case costs one None). The flags,
calibrations and derived quantities are worked out here, from what InfluxDB gives, by the pure functions of
``api.rowwork``-like helpers below; the statements come from ``api.query``.
"""

from __future__ import annotations

import statistics
from bisect import bisect_left
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from api.export import Row
from api.query import (
    BATTERY_HOLD_MS,
    BATTERY_MIN,
    FROM_AGE_N,
    LATE_S_MAX,
    ReadingsRequest,
    aggregate_statements,
    bucket_alias,
    context_ms,
    daily_statement,
    latest_statements,
    raw_slices,
    raw_statement,
    raw_values_statement,
    slices,
    status_statements,
)
from lauks import quality, rollups, schema
from lauks.calibration import Calibration
from lauks.catalog import CATALOG
from lauks.derived import DERIVED
from lauks.influx import InfluxClient

CHUNK = 20_000
DAY_MS = 86_400_000
# Flags that make a value flagged for flags=exclude|only: a calibrated value is a better one, not a doubtful one.
QUALITY_BITS = sum(quality.FLAGS.values()) & ~quality.CALIBRATED
_INF = float("inf")

# Where the rollups are kept, per database, read again every 20 s (lauks.rollups: a rollup answers only there).
KEPT = rollups.KeptCache()

# (start ms, end ms, gain, offset) of one calibration
Span = tuple[float, float, float, float]


def _spans(calibrations: Iterable[Calibration]) -> dict[tuple[str, str], list[Span]]:
    out: dict[tuple[str, str], list[Span]] = {}
    for c in calibrations:
        end = c.valid_to.timestamp() * 1000 if c.valid_to is not None else _INF
        out.setdefault((c.kit, c.quantity), []).append((c.valid_from.timestamp() * 1000, end, c.gain, c.offset))
    for spans in out.values():
        spans.sort()
    return out


def _span_at(spans: list[Span], ms: float) -> Span | None:
    for span in spans:
        if span[0] <= ms < span[1]:
            return span
    return None


async def rows(client: InfluxClient, database: str, request: ReadingsRequest) -> AsyncIterator[list[Row]]:
    """``[time_ms, kit, value per quantity..., masks]`` in time order, then kit order, a slice at a time."""
    daily = await _daily(client, database, request) if request.daily else {}
    chunks = _aggregated(client, database, request) if request.aggregated else _raw(client, database, request)
    if not request.stored:  # only daily quantities: no reading or bucket to read
        chunks = _nothing()
    async for chunk in chunks:
        if daily:
            chunk = _merge_daily(chunk, daily, request)
        chunk = _filtered(chunk, request.flags)
        if chunk:
            yield chunk
    if daily:  # days after the last slice with readings (none of their readings were in a slice)
        rest = _filtered(_merge_daily([], daily, request), request.flags)
        if rest:
            yield rest


async def _nothing() -> AsyncIterator[list[Row]]:
    return
    yield  # an async generator with nothing in it


def _has_value(row: Row) -> bool:
    for value in row[2:-1]:
        if value is not None:
            return True
    return False


def _filtered(chunk: list[Row], flags: str) -> list[Row]:
    """flags=exclude leaves out values with a quality flag, flags=only keeps only those; a row left with no
    value is left out."""
    if flags == "include":
        return chunk
    out: list[Row] = []
    for row in chunk:
        masks = row[-1]
        if masks is None:
            if flags == "exclude":
                out.append(row)
            continue
        keep = False
        for i, mask in enumerate(masks, 2):
            if bool(mask & QUALITY_BITS) == (flags == "exclude"):
                row[i] = None
            elif row[i] is not None:
                keep = True
        if keep:
            out.append(row)
    return out


# --- raw ---------------------------------------------------------------------------------------------------


async def _raw(client: InfluxClient, database: str, request: ReadingsRequest) -> AsyncIterator[list[Row]]:
    context = timedelta(milliseconds=context_ms(request))
    for start, end in raw_slices(request):
        held: list[Row] = []
        statement = raw_statement(request, max(start - context, request.start - context), end + context)
        async for series in client.query(statement, database=database, chunk_size=CHUNK):
            held.extend(series.values)
        out = _raw_slice(held, int(start.timestamp() * 1000), int(end.timestamp() * 1000), request)
        if out:
            yield out


def _raw_slice(held: list[Row], start_ms: int, end_ms: int, request: ReadingsRequest) -> list[Row]:
    """The rows of [start_ms, end_ms) of ``held`` (which holds the context either side, in time then kit order,
    as InfluxDB gives one series), each kit's flags worked out over its own readings. The rows stay in
    InfluxDB's order (no sort), and the common case (no calibration, no derived quantity, few flags) touches
    each row twice."""
    times = [row[0] for row in held]
    lo, hi = bisect_left(times, start_ms), bisect_left(times, end_ms)
    if lo == hi:
        return []
    stored = request.stored
    width = len(stored)
    fields = request.raw_fields
    battery_i, late_i, age_i = (2 + fields.index(f) for f in (schema.BATTERY, schema.LATE_S, schema.FROM_AGE))
    by_kit: dict[str, list[int]] = {}
    facts = False
    for i, row in enumerate(held):
        found = by_kit.get(row[1])
        if found is None:
            by_kit[row[1]] = [i]
        else:
            found.append(i)
        if not facts and (row[battery_i] is not None or row[late_i] is not None or row[age_i] is not None):
            facts = True
    # index in held -> a mask per stored quantity, only for rows with a flag
    flagged: dict[int, list[int]] = {}
    thresholds = [j for j, q in enumerate(stored) if CATALOG[q].stuck_minutes is not None
                  or CATALOG[q].max_rate is not None]
    for indices in by_kit.values():
        kit_times = [times[i] for i in indices]
        for j in thresholds:
            column = 2 + j
            masks = quality.series_masks(stored[j], kit_times, [held[i][column] for i in indices])
            for p in [p for p, m in enumerate(masks) if m]:
                i = indices[p]
                if lo <= i < hi:
                    flagged.setdefault(i, [0] * width)[j] |= masks[p]
        if facts:
            _point_masks(held, indices, lo, hi, (battery_i, late_i, age_i), flagged, width)
    spans = _spans(request.calibrations)
    simple = not request.per_reading and not spans and stored == request.quantities
    window = held[lo:hi]
    if simple:  # the common case: the stored values as they are, a few flags
        # a point may hold only facts read for the flags (a battery reading): it is not a row
        if width == 1:
            for row in window:
                del row[3:]
                row.append(None)
            for i, masks in flagged.items():
                held[i][3] = tuple(masks)
            return [row for row in window if row[2] is not None]
        for row in window:
            del row[2 + width:]
            row.append(None)
        for i, masks in flagged.items():
            held[i][2 + width] = tuple(masks)
        return [row for row in window if any(v is not None for v in row[2:2 + width])]
    digits = [CATALOG[q].decimals + 3 for q in stored]
    infos = _derived_info(request)
    positions = _positions(request)
    out: list[Row] = []
    none = [0] * width
    for i in range(lo, hi):
        row = held[i]
        t, kit = row[0], row[1]
        values = row[2:2 + width]
        masks = flagged.get(i) or list(none)
        for j, q in enumerate(stored):
            calibrations = spans.get((kit, q))
            if calibrations is not None and values[j] is not None:
                span = _span_at(calibrations, t)
                if span is not None:
                    values[j] = round(span[2] * values[j] + span[3], digits[j])
                    masks[j] |= quality.CALIBRATED
        made = _assemble(t, kit, values, masks, request, positions, infos)
        if _has_value(made):
            out.append(made)
    return out


def _point_masks(held: list[Row], indices: list[int], lo: int, hi: int, columns: tuple[int, int, int],
                 flagged: dict[int, list[int]], width: int) -> None:
    """BACKFILLED, CLOCK_ESTIMATED and BATTERY_LOW of one kit's points in [lo, hi) of ``held``, or'ed into
    every stored quantity's mask (battery: the point's own, else the kit's last within BATTERY_HOLD_MS)."""
    battery_i, late_i, age_i = columns
    last_battery: float | None = None
    last_battery_ms = -BATTERY_HOLD_MS - 1
    for i in indices:
        if i >= hi:
            break
        row = held[i]
        battery = row[battery_i]
        if battery is not None:
            last_battery, last_battery_ms = battery, row[0]
        if i < lo:
            continue
        carried = battery if battery is not None else (
            last_battery if row[0] - last_battery_ms <= BATTERY_HOLD_MS else None)
        late, age = row[late_i], row[age_i]
        if carried is None and late is None and age is None:
            continue
        mask = quality.reading_mask(late, age, carried)
        if mask:
            masks = flagged.setdefault(i, [0] * width)
            for j in range(width):
                masks[j] |= mask


# --- shared by raw and aggregated rows ---------------------------------------------------------------------


class _DerivedInfo:
    __slots__ = ("derived", "inputs", "resolution_decimals")

    def __init__(self, name: str, stored: list[str]) -> None:
        self.derived = DERIVED[name]
        self.inputs = [(q, stored.index(q)) for q in self.derived.inputs]
        self.resolution_decimals = self.derived.decimals


def _derived_info(request: ReadingsRequest) -> list[_DerivedInfo]:
    return [_DerivedInfo(d.name, request.stored) for d in request.per_reading]


def _positions(request: ReadingsRequest) -> list[tuple[bool, int]]:
    """Per requested quantity: (is derived, index into stored values or into the per-reading derived)."""
    out: list[tuple[bool, int]] = []
    derived_names = [d.name for d in request.per_reading]
    for q in request.quantities:
        if q in derived_names:
            out.append((True, derived_names.index(q)))
        elif q in request.stored:
            out.append((False, request.stored.index(q)))
        else:  # a daily derived quantity: filled in at local midnights by _merge_daily
            out.append((True, -1))
    return out


def _assemble(t: int, kit: str, values: list[Any], masks: list[int], request: ReadingsRequest,
              positions: list[tuple[bool, int]], infos: list[_DerivedInfo]) -> Row:
    """The output row from the stored values and masks of one time (a reading or a bucket)."""
    derived: list[tuple[float | None, int]] = []
    for info in infos:
        digits = info.resolution_decimals
        inputs = {q: values[j] for q, j in info.inputs}
        value = info.derived.compute(inputs, request.elevation_m)
        mask = 0
        for _, j in info.inputs:
            mask |= masks[j]
        derived.append((None if value is None else round(value, digits), mask))
    row: Row = [t, kit]
    out_masks: list[int] = []
    for is_derived, i in positions:
        if not is_derived:
            row.append(values[i])
            out_masks.append(masks[i] if values[i] is not None else 0)
        elif i < 0:
            row.append(None)
            out_masks.append(0)
        else:
            value, mask = derived[i]
            row.append(value)
            out_masks.append(mask if value is not None else 0)
    row.append(tuple(out_masks) if any(out_masks) else None)
    return row


# --- aggregated --------------------------------------------------------------------------------------------


async def _aggregated(client: InfluxClient, database: str, request: ReadingsRequest) -> AsyncIterator[list[Row]]:
    assert request.every_s is not None
    positions = _positions(request)
    infos = _derived_info(request)
    digits = [None if request.stat_of(q) == "count" else CATALOG[q].decimals for q in request.stored]
    spans = _spans(request.calibrations)
    index = {alias: i for i, (alias, _, _) in enumerate(request.columns, 1)}
    kept = await KEPT.get(client, database)
    for start, end in slices(request):
        held: list[Row] = []
        async for series in _each(client, database, aggregate_statements(request, start, end, kept)):
            kit = series.tags.get(schema.KIT, "")
            for row in series.values:
                t = row[0]
                values, masks, cut = _bucket(kit, row, request, index, spans)
                for j in cut:  # rare: a bucket a calibration's start or end cuts in two
                    q = request.stored[j]
                    bucket_start = datetime.fromtimestamp(t / 1000, UTC)
                    value, calibrated = await _from_raw(client, database, request, kit, q, request.stat_of(q),
                                                        bucket_start, timedelta(seconds=request.every_s),
                                                        spans[(kit, q)])
                    values[j] = value
                    masks[j] |= quality.CALIBRATED if calibrated else 0
                for j, d in enumerate(digits):
                    if d is not None and values[j] is not None:
                        values[j] = round(values[j], d)
                made = _assemble(t, kit, values, masks, request, positions, infos)
                if _has_value(made):
                    held.append(made)
        held.sort(key=lambda row: (row[0], row[1]))
        if held:
            yield held


async def _each(client: InfluxClient, database: str, statements: list[str]) -> AsyncIterator[Any]:
    for statement in statements:
        async for series in client.query(statement, database=database, chunk_size=CHUNK):
            yield series


def _bucket(kit: str, row: Row, request: ReadingsRequest, index: dict[str, int],
            spans: dict[tuple[str, str], list[Span]]) -> tuple[list[Any], list[int], list[int]]:
    """One bucket's stored values, calibrated linearly, and masks from its statistics (so a rollup and the raw
    aggregate give the same); and the stored quantities whose bucket a calibration cuts (recomputed from raw)."""
    assert request.every_s is not None
    t = row[0]
    every_ms = request.every_s * 1000
    battery_min, late_max, age_n = row[index[BATTERY_MIN]], row[index[LATE_S_MAX]], row[index[FROM_AGE_N]]
    values: list[Any] = []
    masks: list[int] = []
    cut: list[int] = []
    for j, q in enumerate(request.stored):
        value = row[j + 1]
        count, minimum, maximum = (_stat(row, index, request.stat_alias(q, s, q)) for s in ("count", "min", "max"))
        mask = quality.bucket_mask(q, request.every_s, minimum, maximum, count, battery_min, late_max, age_n)
        found = spans.get((kit, q))
        if found is not None and value is not None:
            span, whole = _bucket_span(found, t, t + every_ms)
            if not whole:
                cut.append(j)
            elif span is not None:
                value = _calibrated(request.stat_of(q), value, count, span)
                mask |= quality.CALIBRATED
        values.append(value)
        masks.append(mask)
    return values, masks, cut


def _stat(row: Row, index: dict[str, int], alias: str) -> Any:
    """A bucket statistic, None where the request did not read it (it could not flag anything)."""
    at = index.get(alias)
    return None if at is None else row[at]


def _bucket_span(spans: list[Span], start_ms: int, end_ms: int) -> tuple[Span | None, bool]:
    """The calibration in force over the whole bucket (or None), and whether the bucket is whole (no
    calibration starts or ends inside it)."""
    for span in spans:
        if start_ms < span[0] < end_ms or start_ms < span[1] < end_ms:
            return None, False
    return _span_at(spans, start_ms), True


def _calibrated(stat: str, value: float, count: int | None, span: Span) -> float:
    """A bucket's aggregate under value' = gain x value + offset: linear for mean, min, max and median (gain > 0),
    gain x sum + offset x count for a sum, a count unchanged."""
    if stat == "count":
        return value
    if stat == "sum":
        return span[2] * value + span[3] * (count or 0)
    return span[2] * value + span[3]


def _aggregate(stat: str, values: list[float]) -> float | None:
    """As InfluxDB's aggregate of the same values (its median of an even count is the mean of the middle two)."""
    if not values:
        return None
    if stat == "mean":
        return sum(values) / len(values)
    if stat == "min":
        return min(values)
    if stat == "max":
        return max(values)
    if stat == "median":
        return float(statistics.median(values))
    if stat == "count":
        return len(values)
    return sum(values)


async def _from_raw(client: InfluxClient, database: str, request: ReadingsRequest, kit: str, q: str, stat: str,
                    start: datetime, length: timedelta, spans: list[Span]) -> tuple[float | None, bool]:
    """The aggregate of one kit's bucket of ``q`` from its stored readings, each calibrated by the calibration
    in force at its time; and whether any was."""
    values: list[float] = []
    calibrated = False
    async for series in client.query(raw_values_statement(request, kit, q, start, start + length),
                                     database=database):
        for t, value in series.values:
            if value is not None:
                span = _span_at(spans, t)
                if span is not None:
                    value, calibrated = span[2] * value + span[3], True
                values.append(value)
    return _aggregate(stat, values), calibrated


# --- daily derived quantities ------------------------------------------------------------------------------

Daily = dict[tuple[int, str], tuple[list[Any], list[int]]]


async def _daily(client: InfluxClient, database: str, request: ReadingsRequest) -> Daily:
    """Each kit's daily derived quantities per school day, keyed by (local midnight in ms, kit). A year of a
    20-kit site is 7,300 entries, held for the whole request."""
    statement = daily_statement(request, await KEPT.get(client, database))
    out: Daily = {}
    if statement is None:
        return out
    columns = request.daily_columns
    index = {alias: i for i, (alias, _, _) in enumerate(columns, 1)}
    spans = _spans(request.calibrations)
    async for series in client.query(statement, database=database, chunk_size=CHUNK):
        kit = series.tags.get(schema.KIT, "")
        for row in series.values:
            values: list[Any] = []
            masks: list[int] = []
            for d in request.daily:
                assert d.daily is not None
                q, stat = d.daily
                value = row[index[d.name]]
                count, minimum, maximum = (_stat(row, index, bucket_alias(q, s)) for s in ("count", "min", "max"))
                mask = quality.bucket_mask(q, 86_400, minimum, maximum, count, row[index[BATTERY_MIN]],
                                           row[index[LATE_S_MAX]], row[index[FROM_AGE_N]])
                found = spans.get((kit, q))
                if found is not None and value is not None:
                    span, whole = _bucket_span(found, row[0], row[0] + DAY_MS)
                    if not whole:
                        value, calibrated = await _from_raw(client, database, request, kit, q, stat,
                                                            datetime.fromtimestamp(row[0] / 1000, UTC),
                                                            timedelta(days=1), found)
                        mask |= quality.CALIBRATED if calibrated else 0
                    elif span is not None:
                        value = _calibrated(stat, value, count, span)
                        mask |= quality.CALIBRATED
                digits = d.decimals
                values.append(None if value is None else round(value, digits))
                masks.append(mask if value is not None else 0)
            out[(row[0], kit)] = (values, masks)
    return out


def _merge_daily(chunk: list[Row], daily: Daily, request: ReadingsRequest) -> list[Row]:
    """Daily values put into the rows at their local midnight (a row of their own where no reading or bucket
    is at that time). Entries used are removed, so each is given once; ``chunk=[]`` gives the rest."""
    if not daily:
        return chunk
    slots = [request.quantities.index(d.name) for d in request.daily]
    if chunk:
        last = chunk[-1][0]
        due = [key for key in daily if key[0] <= last]
    else:
        due = list(daily)
    if not due:
        return chunk
    at = {(row[0], row[1]): row for row in chunk}
    width = len(request.quantities)
    for key in due:
        values, masks = daily.pop(key)
        row = at.get(key)
        if row is None:
            row = [key[0], key[1], *([None] * width), None]
            chunk.append(row)
        current = list(row[-1]) if row[-1] is not None else [0] * width
        for slot, value, mask in zip(slots, values, masks, strict=True):
            row[2 + slot] = value
            current[slot] = mask
        row[-1] = tuple(current) if any(current) else None
    chunk.sort(key=lambda row: (row[0], row[1]))
    return chunk


def decimals_of(request: ReadingsRequest) -> list[int | None]:
    """Per quantity, the decimals its aggregate is rounded to (its catalog resolution), None for a count.

    A mean of three readings is 12.646666666666667 in the store; the class gets 12.65. Worked out once per
    request, so the per-value cost is one ``round``. Raw readings are never rounded: they are as measured.
    """
    return [None if request.aggregates.get(q) == "count" else
            (CATALOG[q].decimals if q in CATALOG else DERIVED[q].decimals) for q in request.quantities]


def _ms(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, UTC)


async def latest(client: InfluxClient, database: str, site: str, quantities: list[str],
                 kits: list[str]) -> list[tuple[str, str, float, datetime]]:
    """(kit, quantity, value, time) of each kit's newest value of each quantity."""
    out: list[tuple[str, str, float, datetime]] = []
    async for series in client.query(latest_statements(site, quantities, kits), database=database):
        quantity = quantities[series.statement_id]
        for t, value in series.values:
            if value is not None:
                out.append((series.tags.get(schema.KIT, ""), quantity, float(value), _ms(t)))
    out.sort(key=lambda item: (item[0], item[1]))
    return out


async def kit_status(client: InfluxClient, database: str, site: str) -> dict[str, dict[str, Any]]:
    """Per kit: state and its time, time last seen, battery (readings first, else status messages)."""
    found: dict[str, dict[str, Any]] = {}
    keys = ("state", "seen", "battery", "status_battery")
    async for series in client.query(status_statements(site), database=database):
        kit = series.tags.get(schema.KIT, "")
        for t, value in series.values:
            entry = found.setdefault(kit, {})
            key = keys[series.statement_id]
            entry[key] = value
            entry[key + "_time"] = _ms(t)
    return found
