"""Aggregated readings: bucket edges, defaults per quantity, empty buckets, and school days across DST."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from api_fixtures import Api, point, service

__all__ = ["service"]

RIGA = ZoneInfo("Europe/Riga")


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_a_point_on_a_bucket_edge_belongs_to_the_later_bucket(service: Api) -> None:
    service.add_site("s")
    service.add_kits("s", "k")
    edge = datetime(2025, 5, 1, 10, 0, tzinfo=UTC)
    await service.write([point("s", "k", edge - timedelta(milliseconds=1), temperature=1.0),
                         point("s", "k", edge, temperature=3.0),
                         point("s", "k", edge + timedelta(minutes=59), temperature=5.0)])
    response = await service.get("/v1/sites/s/readings", params={
        "start": "2025-05-01T09:00Z", "end": "2025-05-01T11:00Z", "quantities": "temperature", "every": "1h"})
    got = [(r["time"], r["value"]) for r in rows(response.text)]
    assert got == [("2025-05-01T09:00:00Z", "1"), ("2025-05-01T10:00:00Z", "4")]


async def test_rain_sums_and_temperature_averages_unless_told_otherwise(service: Api) -> None:
    service.add_site("s")
    service.add_kits("s", "k")
    start = datetime(2025, 5, 1, tzinfo=UTC)
    await service.write([point("s", "k", start + timedelta(minutes=10 * i), temperature=float(i), rain=0.3)
                         for i in range(6)])
    params = {"start": "2025-05-01", "end": "2025-05-01", "quantities": "temperature,rain", "every": "1h"}
    got = {r["quantity"]: r["value"] for r in rows((await service.get("/v1/sites/s/readings",
                                                                       params=params)).text)}
    assert got == {"temperature": "2.5", "rain": "1.8"}  # six times 0.3 is 1.7999999999999998 in floats
    got_max = {r["quantity"]: float(r["value"]) for r in rows((await service.get(
        "/v1/sites/s/readings", params={**params, "agg": "max"})).text)}
    assert got_max == {"temperature": 5.0, "rain": 0.3}
    counted = rows((await service.get("/v1/sites/s/readings", params={**params, "agg": "count"})).text)
    assert {r["value"] for r in counted} == {"6"}


async def test_empty_buckets_are_left_out_not_filled_with_zero(service: Api) -> None:
    service.add_site("s")
    service.add_kits("s", "k")
    start = datetime(2025, 5, 1, tzinfo=UTC)
    await service.write([point("s", "k", start, temperature=1.0), point("s", "k", start + timedelta(hours=3),
                                                                         temperature=2.0)])
    response = await service.get("/v1/sites/s/readings", params={
        "start": "2025-05-01", "end": "2025-05-01", "quantities": "temperature", "every": "1h"})
    assert [r["time"][11:16] for r in rows(response.text)] == ["00:00", "03:00"]


async def test_daily_buckets_are_the_schools_days_across_the_spring_dst_change(service: Api) -> None:
    # Riga moves from +02:00 to +03:00 at 03:00 local on 2025-03-30: that day has 23 hours.
    service.add_site("school", timezone="Europe/Riga")
    service.add_kits("school", "k")
    lines = []
    for day in (29, 30, 31):
        local_midnight = datetime(2025, 3, day, tzinfo=RIGA)
        following = datetime.combine(local_midnight.date() + timedelta(days=1), local_midnight.time(), RIGA)
        moment = local_midnight
        while moment < following:  # one sample every real hour of the local day
            lines.append(point("school", "k", moment, rain=1.0))
            moment = (moment.astimezone(UTC) + timedelta(hours=1)).astimezone(RIGA)
    await service.write(lines)
    response = await service.get("/v1/sites/school/readings", params={
        "start": "2025-03-29", "end": "2025-03-31", "quantities": "rain", "every": "1d"})
    got = [(r["time"], float(r["value"])) for r in rows(response.text)]
    assert got == [("2025-03-29T00:00:00+02:00", 24.0), ("2025-03-30T00:00:00+02:00", 23.0),
                   ("2025-03-31T00:00:00+03:00", 24.0)]


async def test_an_explicit_time_zone_moves_daily_buckets_to_that_zones_midnight(service: Api) -> None:
    service.add_site("s")
    service.add_kits("s", "k")
    # 23:30 UTC on 1 May is already 2 May in Riga (+03:00).
    await service.write([point("s", "k", datetime(2025, 5, 1, 23, 30, tzinfo=UTC), temperature=7.0)])
    params = {"start": "2025-05-01", "end": "2025-05-02", "quantities": "temperature", "every": "1d"}
    utc = rows((await service.get("/v1/sites/s/readings", params=params)).text)
    riga = rows((await service.get("/v1/sites/s/readings", params={**params, "tz": "Europe/Riga"})).text)
    assert [r["time"] for r in utc] == ["2025-05-01T00:00:00Z"]
    assert [r["time"] for r in riga] == ["2025-05-02T00:00:00+03:00"]


async def test_long_aggregated_windows_come_out_in_time_order_across_slices(service: Api) -> None:
    service.add_site("s")
    service.add_kits("s", "a", "b")
    start = datetime(2025, 1, 1, tzinfo=UTC)
    lines = [point("s", kit, start + timedelta(hours=6 * i), temperature=float(i))
             for i in range(4 * 60) for kit in ("a", "b")]
    await service.write(lines)
    import api.query
    original = api.query.SLICE_ROWS
    api.query.SLICE_ROWS = 10  # force many slices of a few days each
    try:
        response = await service.get("/v1/sites/s/readings", params={
            "start": "2025-01-01", "end": "2025-03-01", "quantities": "temperature", "every": "1d",
            "layout": "wide"})
    finally:
        api.query.SLICE_ROWS = original
    got = rows(response.text)
    assert len(got) == 60
    assert [r["time"] for r in got] == sorted(r["time"] for r in got)
    assert float(got[10]["a.temperature"]) == 41.5 and got[10]["a.temperature"] == got[10]["b.temperature"]
