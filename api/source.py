"""Reading rows out of InfluxDB in time order, chunk by chunk: the I/O edge of a readings request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from api.export import Row
from api.query import ReadingsRequest, aggregate_statement, latest_statements, raw_statement, slices, status_statements
from lauks import schema
from lauks.catalog import CATALOG
from lauks.influx import InfluxClient

CHUNK = 20_000


async def rows(client: InfluxClient, database: str, request: ReadingsRequest) -> AsyncIterator[list[Row]]:
    """``[time_ms, kit, value per quantity...]`` in time order, then kit order."""
    if not request.aggregated:
        async for series in client.query(raw_statement(request), database=database, chunk_size=CHUNK):
            if series.values:
                yield series.values
        return
    digits = decimals_of(request)
    rounded = [(i, d) for i, d in enumerate(digits, 1) if d is not None]
    for start, end in slices(request):
        held: list[Row] = []
        async for series in client.query(aggregate_statement(request, start, end), database=database,
                                         chunk_size=CHUNK):
            kit = series.tags.get(schema.KIT, "")
            for row in series.values:
                for i, d in rounded:
                    value = row[i]
                    if value is not None:
                        row[i] = round(value, d)
                held.append([row[0], kit, *row[1:]])
        held.sort(key=lambda row: (row[0], row[1]))
        if held:
            yield held


def decimals_of(request: ReadingsRequest) -> list[int | None]:
    """Per quantity, the decimals its aggregate is rounded to (its catalog resolution), None for a count.

    A mean of three readings is 12.646666666666667 in the store; the class gets 12.65. Worked out once per
    request, so the per-value cost is one ``round``. Raw readings are never rounded: they are as measured.
    """
    return [None if request.aggregates.get(q) == "count" else CATALOG[q].decimals for q in request.quantities]


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
