"""The web charts (web/series.py) read the rollups where they are kept, and draw exactly what the raw readings
give: the same buckets, the same values, the same gaps."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from types import SimpleNamespace
from typing import Any, cast
from zoneinfo import ZoneInfo

from fastapi import Request
from rollup_seed import GAP, NOW, SITE, seed

from gateway.rollups import RollupWorker, read_kept, write_state
from lauks import rollups, schema
from lauks.influx import InfluxClient
from web.series import SeriesQuery, fetch, recent_query, shape, statement, statements

RIGA = ZoneInfo("Europe/Riga")


async def rows_of(influx: InfluxClient, database: str, texts: list[str]) -> dict[str, list[list[Any]]]:
    rows: dict[str, list[list[Any]]] = {}
    for text in texts:
        async for found in influx.query(text, database=database):
            rows.setdefault(found.tags.get(schema.KIT, ""), []).extend(found.values)
    return rows


async def kept_rollups(influx: InfluxClient, database: str) -> dict[str, rollups.Kept]:
    await seed(influx, database)
    assert await RollupWorker(influx, database, lookback=timedelta(days=5), clock=NOW.timestamp).run_pass()
    # nothing was stored before the seeded days: the rollups are complete from long before
    await write_state(influx, database, NOW, complete_from=NOW - timedelta(days=400),
                      kept_to=NOW - rollups.LATE_MARGIN)
    return await read_kept(influx, database)


async def test_the_30_day_and_year_charts_read_the_hourly_rollup_and_draw_what_raw_draws(
        influx: InfluxClient, database: str) -> None:
    kept = await kept_rollups(influx, database)
    for range_name in ("30d", "1y"):
        for agg in ("mean", "min", "max", "sum", "count"):
            query = replace(recent_query(SITE, "k1", "temperature", range_name, 800, NOW, RIGA), agg=agg)
            texts = statements(query, kept)
            assert f'FROM "{schema.ROLLUP_1H}"' in texts[0] and len(texts) == 2, texts  # the rest of today: raw
            rolled = shape(query, await rows_of(influx, database, texts))
            raw = shape(query, await rows_of(influx, database, [statement(query)]))
            assert rolled == raw, (range_name, agg)
            # the gap stays a gap (InfluxDB counts an empty bucket 0 with fill(null), so a count chart says 0)
            assert (0 if agg == "count" else None) in rolled["series"][0]["values"]


async def test_a_dataset_chart_of_several_kits_reads_the_rollups_and_draws_what_raw_draws(
        influx: InfluxClient, database: str) -> None:
    kept = await kept_rollups(influx, database)
    start = GAP[0] - timedelta(hours=GAP[0].hour)
    query = SeriesQuery(SITE, ("k1", "k2"), "humidity", start, start + timedelta(days=2), 7200, "mean", RIGA)
    texts = statements(query, kept)
    # the window ends inside a two-hour bucket (summer time began): that last bucket is read raw
    assert f'FROM "{schema.ROLLUP_1H}"' in texts[0] and f'FROM "{schema.READINGS}"' in texts[1]
    assert shape(query, await rows_of(influx, database, texts)) == \
        shape(query, await rows_of(influx, database, [statement(query)]))


async def test_the_chart_route_reads_what_is_kept_through_its_cache(influx: InfluxClient, database: str) -> None:
    kept = await kept_rollups(influx, database)
    query = recent_query(SITE, "k2", "temperature", "1y", 800, NOW, RIGA)
    state = SimpleNamespace(influx=influx, settings=SimpleNamespace(influx_database=database))
    request = cast("Request", SimpleNamespace(app=SimpleNamespace(state=state)))
    drawn = await fetch(request, query)
    assert state.rollups_kept._kept[database][1] == kept
    assert drawn == shape(query, await rows_of(influx, database, [statement(query)]))


def test_a_median_a_seven_day_chart_or_nothing_kept_reads_raw_only() -> None:
    now_kept = {r.measurement: rollups.Kept(NOW - timedelta(days=400), NOW) for r in rollups.KEPT_ROLLUPS}
    year = recent_query(SITE, "k1", "temperature", "1y", 800, NOW, RIGA)
    week = recent_query(SITE, "k1", "temperature", "7d", 800, NOW, RIGA)  # 15-minute buckets: no rollup divides
    for query, kept in ((replace(year, agg="median"), now_kept), (week, now_kept), (year, {})):
        assert statements(query, kept) == [statement(query)]
