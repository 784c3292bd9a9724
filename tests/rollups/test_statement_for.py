"""Which rollup answers an aggregate, and when none does (pure: no InfluxDB)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from lauks import rollups, schema

START = datetime(2026, 1, 1, tzinfo=UTC)
END = START + timedelta(days=30)
KEPT = {r.measurement: rollups.Kept(rollups.EARLIEST, END + timedelta(days=1)) for r in rollups.KEPT_ROLLUPS}
WHERE = "\"site\" = 's' AND time >= 0"
UTC_ZONE, RIGA = ZoneInfo("UTC"), ZoneInfo("Europe/Riga")


def answer(columns: list[rollups.Column], every_s: int, zone: ZoneInfo = UTC_ZONE, start: datetime = START,
           end: datetime = END, fill: str = "none", kept: dict[str, rollups.Kept] | None = KEPT) -> str | None:
    return rollups.statement_for(columns, WHERE, every_s, zone, start, end, fill=fill, kept=kept)


def test_each_statistic_reads_its_rollup_fields_under_its_alias_in_order() -> None:
    statement = answer([("t", "mean", "temperature"), ("t_min", "min", "temperature"), ("h", "max", "humidity"),
                        ("n", "count", "from_age"), ("r", "sum", "rain")], 86400, RIGA)
    assert statement == (
        'SELECT SUM("sum_temperature") / SUM("count_temperature") AS "t", MIN("min_temperature") AS "t_min", '
        'MAX("max_humidity") AS "h", SUM("count_from_age") AS "n", SUM("sum_rain") AS "r" FROM "readings_1h" '
        f"WHERE {WHERE} GROUP BY time(86400s), \"kit\" fill(none) tz('Europe/Riga')")


def test_buckets_of_the_rollups_own_size_read_its_points_with_no_grouping_by_time() -> None:
    statement = answer([("t", "mean", "temperature"), ("t_min", "min", "temperature"), ("n", "count", "from_age")],
                       3600, RIGA)
    assert statement == (
        'SELECT "sum_temperature" / "count_temperature" AS "t", "min_temperature" AS "t_min", "count_from_age" AS "n" '
        f'FROM "readings_1h" WHERE {WHERE} GROUP BY "kit"')
    # an empty bucket must be a row (fill null): only a GROUP BY time makes one
    assert "GROUP BY time(3600s)" in (answer([("t", "mean", "temperature")], 3600, fill="null") or "")


@pytest.mark.parametrize(("every_s", "zone", "expected"), [
    (3600, RIGA, schema.ROLLUP_1H), (7200, UTC_ZONE, schema.ROLLUP_1H), (43200, RIGA, schema.ROLLUP_1H),
    (86400, ZoneInfo("America/New_York"), schema.ROLLUP_1H), (86400, UTC_ZONE, schema.ROLLUP_1H),
])
def test_the_coarsest_rollup_whose_buckets_make_up_the_requests_answers(every_s: int, zone: ZoneInfo,
                                                                       expected: str) -> None:
    statement = answer([("t", "mean", "temperature")], every_s, zone, start=START - timedelta(hours=12))
    assert statement is not None and f'FROM "{expected}"' in statement


@pytest.mark.parametrize(("why", "columns", "every_s", "zone", "start", "end", "fill", "kept"), [
    ("a median", [("t", "median", "temperature")], 3600, UTC_ZONE, START, END, "none", KEPT),
    ("a bucket no rollup divides", [("t", "mean", "temperature")], 1800, UTC_ZONE, START, END, "none", KEPT),
    ("India's +05:30", [("t", "mean", "temperature")], 3600, ZoneInfo("Asia/Kolkata"), START, END, "none", KEPT),
    ("a bucket finer than any rollup", [("t", "mean", "temperature")], 60, UTC_ZONE, START, END, "none", KEPT),
    ("Nepal's +05:45", [("t", "mean", "temperature")], 3600, ZoneInfo("Asia/Kathmandu"), START, END, "none", KEPT),
    ("a start inside a bucket", [("t", "mean", "temperature")], 3600, UTC_ZONE, START + timedelta(minutes=5), END,
     "none", KEPT),
    ("an end inside a bucket", [("t", "mean", "temperature")], 3600, UTC_ZONE, START, END - timedelta(minutes=1),
     "none", KEPT),
    ("nothing known to be kept", [("t", "mean", "temperature")], 3600, UTC_ZONE, START, END, "none", None),
    ("a window past what is kept", [("t", "mean", "temperature")], 3600, UTC_ZONE, START, END + timedelta(days=2),
     "none", KEPT),
    ("a window before what is kept", [("t", "mean", "temperature")], 3600, UTC_ZONE, START, END, "none",
     {r.measurement: rollups.Kept(START + timedelta(days=1), END) for r in rollups.KEPT_ROLLUPS}),
    ("a derived quantity", [("d", "mean", "dew_point")], 3600, UTC_ZONE, START, END, "none", KEPT),
    ("a count beside a mean with fill(null)", [("t", "mean", "temperature"), ("n", "count", "temperature")], 3600,
     UTC_ZONE, START, END, "null", KEPT),
    ("a mean with fill(0)", [("t", "mean", "temperature")], 3600, UTC_ZONE, START, END, "0", KEPT),
    ("a fill that is no fill", [("t", "max", "temperature")], 3600, UTC_ZONE, START, END, "sideways", KEPT),
])
def test_no_rollup_answers_what_it_cannot_answer_exactly(why: str, columns: list[rollups.Column], every_s: int,
                                                         zone: ZoneInfo, start: datetime, end: datetime, fill: str,
                                                         kept: dict[str, rollups.Kept] | None) -> None:
    assert answer(columns, every_s, zone, start, end, fill, kept) is None, why


@pytest.mark.parametrize("zone", [RIGA, ZoneInfo("Europe/Vilnius")])
def test_the_schools_days_are_read_from_the_daily_rollup_as_its_points_are(zone: ZoneInfo) -> None:
    # 1 January 2026 00:00 in Riga and Vilnius is 31 December 22:00 UTC
    local_start = START - timedelta(hours=2)
    statement = answer([("t", "mean", "temperature")], 86400, zone, start=local_start, end=END - timedelta(hours=2))
    assert statement == ('SELECT "sum_temperature" / "count_temperature" AS "t" FROM "readings_1d" '
                         f'WHERE {WHERE} GROUP BY "kit"')
    filled = answer([("t", "max", "temperature")], 86400, zone, start=local_start, end=END - timedelta(hours=2),
                    fill="null")
    assert filled is not None and 'FROM "readings_1d"' in filled and filled.endswith(
        f"fill(null) tz('{zone.key}')")


@pytest.mark.parametrize(("why", "every_s", "zone", "start", "end"), [
    ("UTC days", 86400, UTC_ZONE, START, END),
    ("Minsk's days (UTC+3 all year, Riga +2 in winter)", 86400, ZoneInfo("Europe/Minsk"),
     START - timedelta(hours=3), END - timedelta(hours=3)),
    ("two days a bucket", 172800, RIGA, START - timedelta(hours=2), END - timedelta(hours=2)),
    ("a start at a Riga hour that is not midnight", 86400, RIGA, START - timedelta(hours=1),
     END - timedelta(hours=2)),
])
def test_the_daily_rollup_answers_only_its_own_days(why: str, every_s: int, zone: ZoneInfo, start: datetime,
                                                   end: datetime) -> None:
    statement = answer([("t", "mean", "temperature")], every_s, zone, start, end)
    assert statement is None or 'FROM "readings_1d"' not in statement, why


def test_a_riga_day_starts_at_local_midnight_in_winter_and_summer() -> None:
    winter, summer = datetime(2026, 1, 15, 9, tzinfo=UTC), datetime(2026, 7, 15, 21, 30, tzinfo=UTC)
    assert rollups.floor_to(winter, 86400, "Europe/Riga") == datetime(2026, 1, 14, 22, tzinfo=UTC)
    assert rollups.floor_to(summer, 86400, "Europe/Riga") == datetime(2026, 7, 15, 21, tzinfo=UTC)
    assert rollups.ceil_to(summer, 86400, "Europe/Riga") == datetime(2026, 7, 16, 21, tzinfo=UTC)
    # the day clocks go forward is 23 hours long
    assert rollups.ceil_to(datetime(2026, 3, 29, 12, tzinfo=UTC), 86400, "Europe/Riga") == \
        datetime(2026, 3, 29, 21, tzinfo=UTC)
    with pytest.raises(ValueError, match="daily buckets"):
        rollups.floor_to(winter, 3600, "Europe/Riga")


def test_a_count_alone_with_fill_null_is_read_with_fill_0_as_influxdb_counts_an_empty_bucket() -> None:
    statement = answer([("n", "count", "temperature")], 3600, fill="null")
    assert statement is not None and statement.endswith("fill(0)")
    assert str(answer([("t", "mean", "temperature")], 3600, fill="null")).endswith("fill(null)")


def test_the_into_statement_computes_the_hourly_rollup_from_raw_over_whole_hours() -> None:
    hour, day = rollups.recompute_statements(START + timedelta(minutes=25), START + timedelta(minutes=35),
                                             site="s-1", kit="k'1")
    assert hour == ('SELECT sum(*), count(*), min(*), max(*) INTO "readings_1h" FROM "readings" WHERE '
                    "\"site\" = 's-1' AND \"kit\" = 'k\\'1' AND time >= 1767225600000000000 AND time < "
                    "1767229200000000000 GROUP BY time(3600s), * fill(none)")
    # the daily rollup, from the hourly one, over the Riga day the hour is in (1 January 2026 00:00 to 24:00 EET)
    assert day.startswith('SELECT sum("sum_temperature") AS "sum_temperature"') and 'FROM "readings_1h"' in day
    assert day.endswith("AND time >= 1767218400000000000 AND time < 1767304800000000000 GROUP BY time(86400s), * "
                        "fill(none) tz('Europe/Riga')")


def test_a_rollup_computed_from_another_combines_its_statistics() -> None:
    daily = rollups.into_statement(rollups.Rollup("readings_1d", 86400, schema.ROLLUP_1H), START, END)
    assert 'sum("count_temperature") AS "count_temperature"' in daily and 'FROM "readings_1h"' in daily
    assert 'min("min_late_s") AS "min_late_s"' in daily and daily.endswith("GROUP BY time(86400s), * fill(none)")


def test_a_zone_whose_clocks_change_an_hour_apart_from_rigas_does_not_have_its_days() -> None:
    # Chisinau is UTC+2/+3 like Riga but changes at 00:00 UTC, Riga at 01:00 UTC (29 March 2026): one hour apart
    chisinau, helsinki = ZoneInfo("Europe/Chisinau"), ZoneInfo("Europe/Helsinki")
    start, end = datetime(2026, 2, 28, 22, tzinfo=UTC), datetime(2026, 3, 31, 21, tzinfo=UTC)
    kept = {r.measurement: rollups.Kept(rollups.EARLIEST, end) for r in rollups.KEPT_ROLLUPS}
    assert not rollups.same_offsets(chisinau, RIGA, start, end)
    assert rollups.same_offsets(chisinau, RIGA, start, datetime(2026, 3, 28, 22, tzinfo=UTC))  # before the change
    assert rollups.same_offsets(helsinki, RIGA, start, end)
    assert 'FROM "readings_1d"' not in str(answer([("t", "mean", "temperature")], 86400, chisinau, start, end,
                                                  kept=kept))
    assert 'FROM "readings_1d"' in str(answer([("t", "mean", "temperature")], 86400, helsinki, start, end, kept=kept))
