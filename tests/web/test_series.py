"""Chart data (web/series.py): the bucket chosen for each range and width, the InfluxQL, the shape of the JSON, and
the endpoint against a real InfluxDB (gaps as null, values rounded to the catalog's resolution, bad parameters)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from api_fixtures import Api, api_settings_for, point, running

from api.errors import ApiError
from api.query import EVERY_CHOICES, parse_every
from lauks.services import Influxd
from web import series

RIGA = ZoneInfo("Europe/Riga")
NOW = datetime(2025, 6, 10, 12, 34, 56, tzinfo=UTC)


# --- the pure core ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("range_name", list(series.RANGES))
@pytest.mark.parametrize("width", [100, 375, 800, 1280, 4000])
def test_every_range_and_width_gets_at_most_one_bucket_a_pixel_or_whole_days(range_name: str, width: int) -> None:
    span = series.RANGES[range_name]
    every = series.choose_every(span, width)
    assert every in series.EVERY_SECONDS
    buckets = span / every + 1  # the first bucket starts at its boundary, before the window does
    assert buckets <= width or every == 86_400
    smaller = [e for e in series.EVERY_SECONDS if e < every]
    assert all(span / e + 1 > width for e in smaller), "a smaller bucket would have fitted"


def test_a_phone_sized_day_is_five_minute_buckets_and_a_desktop_day_two_minute_ones() -> None:
    assert series.choose_every(86_400, 375) == 300
    assert series.choose_every(86_400, 1280) == 120
    assert series.choose_every(365 * 86_400, 1000) == 12 * 3600
    assert series.choose_every(365 * 86_400, 100) == 86_400


def test_a_dataset_bucket_is_never_made_finer() -> None:
    assert series.choose_every(86_400, 4000, at_least_s=3600) == 3600
    assert series.choose_every(7 * 86_400, 100, at_least_s=3600) == 2 * 3600


def test_every_bucket_choice_divides_a_day() -> None:
    assert series.EVERY_SECONDS == tuple(parse_every(e) for e in EVERY_CHOICES)
    assert all(86_400 % e == 0 for e in series.EVERY_SECONDS)


def test_buckets_start_at_the_school_midnight() -> None:
    start = series.bucket_start(datetime(2025, 6, 10, 1, 30, tzinfo=UTC), 86_400, RIGA)
    assert start == datetime(2025, 6, 9, 21, 0, tzinfo=UTC)  # 00:00 in Riga (UTC+3 in summer)
    assert series.bucket_start(datetime(2025, 6, 10, 1, 33, 20, tzinfo=UTC), 300, RIGA) == \
        datetime(2025, 6, 10, 1, 30, tzinfo=UTC)


def test_the_statement_fills_missing_buckets_with_null_and_sums_rain() -> None:
    query = series.recent_query("s'1", "k1", "rain", "24h", 375, NOW, RIGA)
    text = series.statement(query)
    assert 'SUM("rain") AS "rain"' in text
    assert "fill(null)" in text and "GROUP BY time(300s)" in text and "tz('Europe/Riga')" in text
    assert "'s\\'1'" in text  # the site name is quoted, never pasted
    mean = series.statement(series.recent_query("s1", "k1", "temperature", "7d", 800, NOW, RIGA))
    assert 'MEAN("temperature")' in mean


def test_shape_puts_kits_on_one_time_axis_with_nulls_and_rounds_to_the_resolution() -> None:
    query = series.SeriesQuery("s1", ("a", "b"), "temperature", NOW, NOW + timedelta(hours=1), 600, "mean", RIGA)
    body = series.shape(query, {"a": [[0, 12.646666666], [600_000, None]], "b": [[600_000, 3.14159]]})
    assert body["t"] == [0, 600]
    assert body["series"] == [{"label": "a", "values": [12.65, None]}, {"label": "b", "values": [None, 3.14]}]
    assert body["unit"] == "°C" and body["every_s"] == 600 and body["gaps"] is True


def test_counts_stay_whole_numbers() -> None:
    query = series.SeriesQuery("s1", ("a",), "light", NOW, NOW, 600, "count", RIGA)
    assert series.shape(query, {"a": [[0, 7]]})["series"][0]["values"] == [7.0]
    assert series.rounder(query) is None


@pytest.mark.parametrize(("call", "code"), [
    (lambda: series.parse_range("2w"), "bad_range"),
    (lambda: series.parse_width("wide"), "bad_width"),
    (lambda: series.quantity_of(None), "no_quantity"),
])
def test_bad_parameters_are_refused_with_a_sentence(call: object, code: str) -> None:
    with pytest.raises(ApiError) as caught:
        call()  # type: ignore[operator]
    assert caught.value.status == 400 and caught.value.code == code and len(caught.value.message) > 20


def test_a_width_out_of_bounds_is_taken_as_the_nearest() -> None:
    assert series.parse_width("5") == series.MIN_WIDTH
    assert series.parse_width("99999") == series.MAX_WIDTH
    assert series.parse_width(None) == series.DEFAULT_WIDTH


# --- the endpoint, against a real InfluxDB --------------------------------------------------------------


@pytest.fixture
async def public(tmp_path: Path, influxd: Influxd, database: str) -> AsyncIterator[Api]:
    settings = api_settings_for(tmp_path, influxd.url, database, api_public_read=True, api_timezone="Europe/Riga")
    async for made in running(settings):
        made.add_site("chart-school", timezone="Europe/Riga")
        made.add_kits("chart-school", "k1", "k2")
        yield made


def minutes_ago(now: datetime, minutes: float) -> datetime:
    return now - timedelta(minutes=minutes)


async def test_a_three_hour_hole_comes_back_as_nulls(public: Api) -> None:
    now = datetime.now(UTC)
    lines = [point("chart-school", "k1", minutes_ago(now, m), temperature=20.0 + m / 1000)
             for m in range(0, 20 * 60, 5) if not 6 * 60 <= m < 9 * 60]
    await public.write(lines)
    answer = await public.client.get("/w/series/kit/chart-school/k1", params={"q": "temperature", "width": "375"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["every_s"] == 300 and body["unit"] == "°C"
    times, values = body["t"], body["series"][0]["values"]
    assert len(times) == len(values) <= 375
    in_hole = [v for t, v in zip(times, values, strict=True)
               if now.timestamp() - 9 * 3600 + 600 < t < now.timestamp() - 6 * 3600 - 600]
    assert len(in_hole) >= 30 and all(v is None for v in in_hole)
    outside = [v for t, v in zip(times, values, strict=True) if t > now.timestamp() - 5 * 3600]
    assert sum(v is not None for v in outside) >= 50
    assert all(v is None or round(v, 2) == v for v in values)  # rounded to the resolution, 0.01 °C


async def test_means_are_rounded_to_the_catalog_resolution(public: Api) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = series.bucket_start(now - timedelta(days=6), 86_400, RIGA) + timedelta(hours=1)
    await public.write([point("chart-school", "k2", start + timedelta(minutes=i), humidity=v)
                        for i, v in enumerate([50.0, 50.0, 50.1])])
    answer = await public.client.get("/w/series/kit/chart-school/k2",
                                     params={"q": "humidity", "range": "7d", "width": "7"})
    body = answer.json()
    assert body["every_s"] == 2 * 3600  # width 7 is taken as the narrowest chart, 100 px
    assert 50.0 in body["series"][0]["values"]  # 50.0333... to 0.1 %
    assert all(v is None or round(v, 1) == v for v in body["series"][0]["values"])


@pytest.mark.parametrize(("path", "params", "status", "code"), [
    ("/w/series/kit/chart-school/k1", {"q": "temperature", "range": "2w"}, 400, "bad_range"),
    ("/w/series/kit/chart-school/k1", {"q": "temperature", "width": "lots"}, 400, "bad_width"),
    ("/w/series/kit/chart-school/k1", {}, 400, "no_quantity"),
    ("/w/series/kit/chart-school/k1", {"q": "temprature"}, 404, "unknown_quantity"),
    ("/w/series/kit/chart-school/nope", {"q": "temperature"}, 404, "unknown_kit"),
    ("/w/series/kit/no-school/k1", {"q": "temperature"}, 404, "unknown_site"),
    ("/w/series/d/ZZZZ-ZZZZ", {"q": "temperature"}, 404, "unknown_code"),
    ("/w/series/preview", {"site": "chart-school", "q": "temperature", "rolling_days": "7"}, 401, "staff_only"),
])
async def test_bad_requests_answer_json_with_a_sentence(public: Api, path: str, params: dict[str, str], status: int,
                                                        code: str) -> None:
    answer = await public.client.get(path, params=params)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json()["error"] == code and len(answer.json()["message"]) > 15


async def test_every_range_answers_within_its_width(public: Api) -> None:
    now = datetime.now(UTC)
    await public.write([point("chart-school", "k1", now - timedelta(hours=h), pressure=1000.123)
                        for h in range(0, 24 * 40, 7)])
    for range_name in series.RANGES:
        answer = await public.client.get("/w/series/kit/chart-school/k1",
                                         params={"q": "pressure", "range": range_name, "width": "400"})
        body = answer.json()
        assert answer.status_code == 200 and len(body["t"]) <= 400, (range_name, len(body["t"]))
        assert any(v == 1000.12 for v in body["series"][0]["values"]), range_name


async def test_without_public_read_the_series_needs_staff(tmp_path: Path, influxd: Influxd, database: str) -> None:
    settings = api_settings_for(tmp_path, influxd.url, database, api_public_read=False)
    async for api in running(settings):
        api.add_site("closed-school")
        api.add_kits("closed-school", "k1")
        answer = await api.client.get("/w/series/kit/closed-school/k1", params={"q": "temperature"})
        assert answer.status_code == 401 and answer.json()["error"] == "sign_in_needed"


def _query(every_s: int) -> series.SeriesQuery:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    return series.SeriesQuery("s", ("k1", "k2"), "temperature", start, start + timedelta(days=1), every_s, "mean",
                              ZoneInfo("UTC"))


def test_readings_sparser_than_the_buckets_are_drawn_again_in_wider_buckets() -> None:
    t0 = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp() * 1000)
    every10min = [[t0 + i * 120_000, 5.0 if i % 5 == 0 else None] for i in range(100)]  # 2 min buckets, 10 min data
    assert series.sparse_every(_query(120), {"k1": every10min}) == 600  # the 10 min between readings
    dense = [[t0 + i * 120_000, 5.0] for i in range(100)]
    hole = [[t0 + i * 120_000, None if 20 <= i < 60 else 5.0] for i in range(100)]  # a real silence
    assert series.sparse_every(_query(120), {"k1": dense, "k2": hole}) is None  # gaps there are real: kept
    assert series.sparse_every(_query(86_400), {"k1": every10min}) is None  # nothing wider than a day
