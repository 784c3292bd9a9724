"""On seeded readings (a gap, late backfill, Riga's change to summer time), what the rollups answer equals the raw
aggregate for every statistic and resolution they serve: after the worker's pass, after late samples and the pass
that follows them, and after ``lauks rollups rebuild``."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from rollup_seed import GAP, NOW, SITE, compare, minute_lines, seed

from gateway.rollups import RollupWorker, read_kept
from gateway.rollups_cli import RebuildError, rebuild
from lauks import rollups, schema
from lauks.influx import InfluxClient
from lauks.lineprotocol import line

UTC_ZONE, RIGA, VILNIUS = ZoneInfo("UTC"), ZoneInfo("Europe/Riga"), ZoneInfo("Europe/Vilnius")
RIGA_DAYS = (datetime(2026, 3, 26, 22, tzinfo=UTC), datetime(2026, 3, 29, 21, tzinfo=UTC))
STATS = ("mean", "min", "max", "count", "sum")
# (every_s, zone, start, end, the rollup expected to answer)
CASES = [
    (3600, RIGA, NOW - timedelta(days=3), NOW - timedelta(hours=1), schema.ROLLUP_1H),
    (7200, UTC_ZONE, NOW - timedelta(days=2), NOW - timedelta(hours=2), schema.ROLLUP_1H),
    (43200, RIGA, NOW - timedelta(days=3, hours=12), NOW - timedelta(hours=12), schema.ROLLUP_1H),
    # the local days of 27 to 29 March, the last one 23 hours long: the daily rollup's own days, in Riga and in
    # Vilnius (the same offsets), and the UTC days of the same dates, which the hourly rollup answers
    (86400, RIGA, *RIGA_DAYS, schema.ROLLUP_1D),
    (86400, VILNIUS, *RIGA_DAYS, schema.ROLLUP_1D),
    (86400, UTC_ZONE, datetime(2026, 3, 27, tzinfo=UTC), datetime(2026, 3, 30, tzinfo=UTC), schema.ROLLUP_1H),
    # two local days a bucket: not the daily rollup's buckets, made from hours
    (172800, RIGA, RIGA_DAYS[0] - timedelta(days=1), RIGA_DAYS[1], schema.ROLLUP_1H),
]


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at.timestamp()


def worker(influx: InfluxClient, database: str, clock: Clock) -> RollupWorker:
    return RollupWorker(influx, database, lookback=timedelta(days=5), clock=clock)


async def assert_all_equal(influx: InfluxClient, database: str) -> None:
    kept = await read_kept(influx, database)
    for every_s, zone, start, end, expected in CASES:
        statement, rolled, raw = await compare(influx, database, kept, STATS, every_s, zone, start, end)
        assert f'FROM "{expected}"' in statement
        assert rolled == raw, (every_s, zone.key)


async def test_after_the_workers_first_pass_every_statistic_equals_the_raw_aggregate(influx: InfluxClient,
                                                                                    database: str) -> None:
    await seed(influx, database)
    keeper = worker(influx, database, Clock(NOW))
    assert await keeper.run_pass()
    await assert_all_equal(influx, database)


async def test_a_single_chart_column_with_fill_null_equals_the_raw_one_gaps_and_counts_included(
        influx: InfluxClient, database: str) -> None:
    await seed(influx, database)
    assert await worker(influx, database, Clock(NOW)).run_pass()
    kept = await read_kept(influx, database)
    start, end = GAP[0] - timedelta(hours=10), GAP[1] + timedelta(hours=10)
    for stat in ("mean", "count", "sum", "max"):
        _statement, rolled, raw = await compare(influx, database, kept, [stat], 3600, RIGA, start, end, fill="null",
                                                fields=["temperature"], kits=["k1"])
        assert rolled == raw, stat
        assert any(row[1] in (None, 0) for row in raw[0][2])  # the gap is in it


async def test_late_backfill_is_wrong_until_the_next_pass_recomputes_its_buckets(influx: InfluxClient,
                                                                                 database: str) -> None:
    await seed(influx, database)
    clock = Clock(NOW)
    keeper = worker(influx, database, clock)
    assert await keeper.run_pass()
    # two days late, k1's silent hours arrive, and its seen point says from when
    await influx.write(database, minute_lines(SITE, "k1", GAP[0], GAP[1], shift=11), precision="ms")
    arrival = NOW + timedelta(minutes=1)
    seen = {schema.SEEN: 1, schema.SAMPLES: 180, schema.LATE: 180, schema.LATE_FROM: int(GAP[0].timestamp() * 1000),
            schema.BOOT: 1}
    await influx.write(database, [line(schema.KIT_STATUS, {schema.SITE: SITE, schema.KIT: "k1"}, seen,
                                       int(arrival.timestamp() * 1000))], precision="ms")
    kept = await read_kept(influx, database)
    _statement, stale, raw = await compare(influx, database, kept, STATS, 3600, RIGA, *CASES[0][2:4])
    assert stale != raw  # the comparison can fail: the backfill is not in the rollup yet
    clock.at = NOW + timedelta(minutes=2)
    assert await keeper.run_pass()
    assert keeper.stats.backfills == 1
    await assert_all_equal(influx, database)


async def test_a_rebuild_from_raw_brings_back_rollups_that_were_lost(influx: InfluxClient, database: str) -> None:
    await seed(influx, database)
    await influx.write(database, minute_lines(SITE, "k1", GAP[0], GAP[1], shift=11), precision="ms")
    assert await read_kept(influx, database) == {}
    written = await rebuild(influx, database, site=None, start=None, end=None, out=io.StringIO(), now=NOW)
    assert written > 0
    kept = await read_kept(influx, database)
    assert kept[schema.ROLLUP_1H].complete_from <= NOW - timedelta(days=4)
    await assert_all_equal(influx, database)


async def test_a_rebuild_of_a_site_nobody_has_readings_of_says_so_and_writes_nothing(influx: InfluxClient,
                                                                                    database: str) -> None:
    await seed(influx, database)
    with pytest.raises(RebuildError, match=r"site 'nope' has no readings.*school"):
        await rebuild(influx, database, site="nope", start=None, end=None)
    with pytest.raises(RebuildError, match="before it starts"):
        await rebuild(influx, database, site=SITE, start=NOW, end=NOW - timedelta(days=1))
    measurements = await influx.query_rows("SHOW MEASUREMENTS", database=database)
    assert [row["name"] for row in measurements] == [schema.READINGS]


async def test_without_a_record_of_what_is_kept_no_rollup_answers(influx: InfluxClient, database: str) -> None:
    """A database whose rollups were never built reads raw (an empty rollup would answer with nothing)."""
    await seed(influx, database)
    kept = await read_kept(influx, database)
    assert rollups.statement_for([("t", "mean", "temperature")], "time > 0", 3600, RIGA, NOW - timedelta(days=1),
                                 NOW - timedelta(hours=1), kept=kept) is None
    assert datetime.now(UTC) > NOW  # (the seeded days are in the past)


async def test_passes_as_readings_arrive_keep_every_bucket_equal_to_raw(influx: InfluxClient, database: str) -> None:
    """Each pass after the first recomputes only the buckets since the previous one (less the margin): the hour
    the readings keep arriving in is computed again by the next pass, and equals raw."""
    await seed(influx, database)
    clock = Clock(NOW)
    keeper = worker(influx, database, clock)
    assert await keeper.run_pass()
    for kit in ("k1", "k2"):
        await influx.write(database, minute_lines(SITE, kit, NOW, NOW + timedelta(minutes=30)), precision="ms")
    clock.at = NOW + timedelta(minutes=30)
    assert await keeper.run_pass()
    for kit in ("k1", "k2"):
        await influx.write(database, minute_lines(SITE, kit, NOW + timedelta(minutes=30), NOW + timedelta(minutes=70),
                                                  shift=1), precision="ms")
    clock.at = NOW + timedelta(minutes=75)
    assert await keeper.run_pass()
    kept = await read_kept(influx, database)
    for every_s, expected in ((3600, schema.ROLLUP_1H), (7200, schema.ROLLUP_1H)):
        statement, rolled, raw = await compare(influx, database, kept, STATS, every_s, RIGA, NOW - timedelta(hours=3),
                                               NOW + timedelta(hours=1))
        assert f'FROM "{expected}"' in statement and rolled == raw
