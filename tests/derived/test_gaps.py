"""Gaps on seeded readings in a real InfluxDB: a kit offline, a kit with no data, a gap at the window's start,
two quantities of which one keeps reporting, the kit's own interval, and a window that ends now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api import gaps
from api.gaps import Gap, Slice, find_gaps, free_parts, intersect, kit_intervals, split
from lauks import lineprotocol, schema
from lauks.influx import InfluxClient

SITE = "gap-school"
START = datetime(2025, 3, 3, 0, 0, tzinfo=UTC)
END = START + timedelta(days=1)
LATER = END + timedelta(days=30)  # "now" for a window in the past


def reading(kit: str, at: datetime, **values: float) -> str:
    return lineprotocol.line(schema.READINGS, {schema.SITE: SITE, schema.KIT: kit}, values,
                             int(at.timestamp() * 1000))


def every_minute(kit: str, start: datetime, end: datetime, step_s: int = 60, **values: float) -> list[str]:
    lines = []
    at = start
    while at < end:
        lines.append(reading(kit, at, **values))
        at += timedelta(seconds=step_s)
    return lines


def at(hours: float) -> datetime:
    return START + timedelta(hours=hours)


async def seed(influx: InfluxClient, database: str, lines: list[str]) -> None:
    await influx.write(database, lines, precision="ms")


async def test_a_kit_offline_for_two_hours_has_one_gap_from_its_last_reading_to_its_next(
        influx: InfluxClient, database: str) -> None:
    await seed(influx, database, every_minute("k1", START, at(10), temperature=5.0)
               + every_minute("k1", at(12), END, temperature=6.0))
    found = await find_gaps(influx, database, SITE, ["k1"], ["temperature"], START, END, {}, now=LATER)
    assert found == [Gap("k1", at(10) - timedelta(minutes=1), at(12))]
    assert found[0].seconds == 2 * 3600 + 60


async def test_a_kit_with_no_data_at_all_is_one_gap_over_the_whole_window(influx: InfluxClient,
                                                                          database: str) -> None:
    await seed(influx, database, every_minute("k1", START, END, temperature=5.0))
    found = await find_gaps(influx, database, SITE, ["k1", "silent"], ["temperature"], START, END, {}, now=LATER)
    assert found == [Gap("silent", START, END)]


async def test_a_kit_that_starts_late_has_a_gap_from_the_window_s_start(influx: InfluxClient,
                                                                        database: str) -> None:
    await seed(influx, database, every_minute("k1", at(3.5), END, temperature=5.0))
    found = await find_gaps(influx, database, SITE, ["k1"], ["temperature"], START, END, {}, now=LATER)
    assert found == [Gap("k1", START, at(3.5))]


async def test_a_kit_that_stops_early_has_a_gap_to_the_window_s_end(influx: InfluxClient, database: str) -> None:
    await seed(influx, database, every_minute("k1", START, at(20), temperature=5.0))
    found = await find_gaps(influx, database, SITE, ["k1"], ["temperature"], START, END, {}, now=LATER)
    assert found == [Gap("k1", at(20) - timedelta(minutes=1), END)]


async def test_a_quantity_that_keeps_reporting_means_no_gap(influx: InfluxClient, database: str) -> None:
    # the humidity sensor fails for six hours, the temperature goes on: the kit has data all along
    await seed(influx, database, every_minute("k1", START, END, temperature=5.0)
               + every_minute("k1", START, at(6), humidity=70.0) + every_minute("k1", at(12), END, humidity=71.0))
    assert await find_gaps(influx, database, SITE, ["k1"], ["temperature", "humidity"], START, END, {},
                           now=LATER) == []
    only_humidity = await find_gaps(influx, database, SITE, ["k1"], ["humidity"], START, END, {}, now=LATER)
    assert only_humidity == [Gap("k1", at(6) - timedelta(minutes=1), at(12))]


async def test_the_gap_of_two_quantities_is_where_both_are_silent(influx: InfluxClient, database: str) -> None:
    # temperature stops at 05:00 and comes back at 09:00; humidity stops at 06:00 and comes back at 08:00
    await seed(influx, database, every_minute("k1", START, at(5), temperature=5.0)
               + every_minute("k1", at(9), END, temperature=5.0)
               + every_minute("k1", START, at(6), humidity=70.0) + every_minute("k1", at(8), END, humidity=70.0))
    found = await find_gaps(influx, database, SITE, ["k1"], ["temperature", "humidity"], START, END, {},
                            now=LATER)
    assert found == [Gap("k1", at(6) - timedelta(minutes=1), at(8))]
    reversed_order = await find_gaps(influx, database, SITE, ["k1"], ["humidity", "temperature"], START, END, {},
                                     now=LATER)
    assert reversed_order == found


async def test_a_derived_quantity_counts_through_its_inputs(influx: InfluxClient, database: str) -> None:
    await seed(influx, database, every_minute("k1", START, at(5), temperature=5.0, humidity=70.0)
               + every_minute("k1", at(5), END, temperature=5.0))
    found = await find_gaps(influx, database, SITE, ["k1"], ["dew_point"], START, END, {}, now=LATER)
    assert found == []  # the temperature goes on: dew point's inputs are read, and one of them is there
    humidity_only = await find_gaps(influx, database, SITE, ["k1"], ["humidity"], START, END, {}, now=LATER)
    assert humidity_only == [Gap("k1", at(5) - timedelta(minutes=1), END)]


async def test_a_space_of_exactly_three_intervals_is_not_a_gap_and_a_longer_one_is(influx: InfluxClient,
                                                                                   database: str) -> None:
    await seed(influx, database, [reading("k1", at(0), temperature=1.0), reading("k1", at(0.05), temperature=1.0),
                                  reading("k1", at(0.05) + timedelta(seconds=181), temperature=1.0)])
    window_end = at(0.05) + timedelta(seconds=200)
    found = await find_gaps(influx, database, SITE, ["k1"], ["temperature"], START, window_end, {"k1": 60},
                            now=LATER)
    assert found == [Gap("k1", at(0.05), at(0.05) + timedelta(seconds=181))]  # 180 s (03:00) is not one


async def test_each_kit_s_own_interval_sets_how_long_a_gap_is(influx: InfluxClient, database: str) -> None:
    # both kits fall silent from 01:00 to 01:08: 9 minutes for k-fast (a gap), 13 for k-slow, whose status says
    # it reports every 5 minutes, so that only 15 minutes would be a gap for it
    lines = []
    for kit, step in (("k-fast", 60), ("k-slow", 300)):
        lines += every_minute(kit, START, at(1), step, temperature=3.0)
        lines += every_minute(kit, at(1) + timedelta(minutes=8), at(3), step, temperature=3.0)
    lines.append(lineprotocol.line(schema.KIT_STATUS, {schema.SITE: SITE, schema.KIT: "k-slow"},
                                   {schema.STATE: "online", schema.INTERVAL_S: 300}, int(at(0).timestamp() * 1000)))
    await seed(influx, database, lines)
    intervals = await kit_intervals(influx, database, SITE, ["k-fast", "k-slow"])
    assert intervals == {"k-fast": gaps.DEFAULT_INTERVAL_S, "k-slow": 300}
    found = await find_gaps(influx, database, SITE, ["k-fast", "k-slow"], ["temperature"], START, at(3), intervals,
                            now=LATER)
    assert [(g.kit, g.seconds) for g in found] == [("k-fast", 9 * 60)]


async def test_kit_intervals_take_the_last_status_message_s(influx: InfluxClient, database: str) -> None:
    def status(minutes: int, interval: int) -> str:
        return lineprotocol.line(schema.KIT_STATUS, {schema.SITE: SITE, schema.KIT: "k1"},
                                 {schema.STATE: "online", schema.INTERVAL_S: interval},
                                 int((START + timedelta(minutes=minutes)).timestamp() * 1000))

    seen = lineprotocol.line(schema.KIT_STATUS, {schema.SITE: SITE, schema.KIT: "k1"}, {schema.SEEN: 1},
                             int(at(5).timestamp() * 1000))
    await seed(influx, database, [status(0, 30), status(60, 120), seen])
    assert await kit_intervals(influx, database, SITE, ["k1", "k2"]) == {"k1": 120, "k2": gaps.DEFAULT_INTERVAL_S}
    assert await kit_intervals(influx, database, SITE, []) == {}


async def test_a_window_that_ends_now_shows_a_late_kit_but_not_one_whose_reading_is_not_due(
        influx: InfluxClient, database: str) -> None:
    now = at(6)
    await seed(influx, database, every_minute("on-time", START, now - timedelta(minutes=1), temperature=1.0)
               + every_minute("late", START, now - timedelta(minutes=10), temperature=1.0))
    found = await find_gaps(influx, database, SITE, ["on-time", "late"], ["temperature"], START, now, {}, now=now)
    assert found == [Gap("late", now - timedelta(minutes=11), now)]
    # a window that ends after now ends at now: tomorrow is not a gap yet
    tomorrow = await find_gaps(influx, database, SITE, ["on-time"], ["temperature"], START, END, {}, now=now)
    assert tomorrow == []


async def test_gaps_are_joined_across_the_slices_a_long_window_is_read_in(influx: InfluxClient, database: str,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    await seed(influx, database, every_minute("k1", START, at(2.5), temperature=5.0)
               + every_minute("k1", at(7.25), END, temperature=5.0)
               + every_minute("k1", START, at(2.5), humidity=5.0) + every_minute("k1", at(7.25), END, humidity=5.0))
    expected = [Gap("k1", at(2.5) - timedelta(minutes=1), at(7.25))]
    whole = await find_gaps(influx, database, SITE, ["k1"], ["temperature", "humidity"], START, END, {}, now=LATER)
    monkeypatch.setattr(gaps, "SLICE_MS", 3600 * 1000)  # 24 slices, the gap over five of them
    monkeypatch.setattr(gaps, "MAX_PIECES_ASKED", 0)  # and the second quantity read over the whole window
    sliced = await find_gaps(influx, database, SITE, ["k1"], ["temperature", "humidity"], START, END, {}, now=LATER)
    assert whole == sliced == expected


async def test_an_unknown_quantity_or_a_naive_time_is_refused_before_asking_influxdb(influx: InfluxClient,
                                                                                     database: str) -> None:
    with pytest.raises(ValueError, match="no quantity is called 'humidty'"):
        await find_gaps(influx, database, SITE, ["k1"], ["humidty"], START, END, {})
    with pytest.raises(ValueError, match="at least one quantity"):
        await find_gaps(influx, database, SITE, ["k1"], [], START, END, {})
    with pytest.raises(ValueError, match="timezone-aware"):
        await find_gaps(influx, database, SITE, ["k1"], ["temperature"], START.replace(tzinfo=None), END, {})


async def test_a_site_or_kit_name_with_quotes_stays_a_name(influx: InfluxClient, database: str) -> None:
    # InfluxQL is built from quoted literals only: a hostile name finds no readings rather than changing the query
    found = await find_gaps(influx, database, "x' OR site =~ /.*/ --", ["k1' OR '1'='1"], ["temperature"], START,
                            END, {}, now=LATER)
    assert found == [Gap("k1' OR '1'='1", START, END)]


# --- the pure parts ----------------------------------------------------------------------------------------


def test_free_parts_joins_consecutive_slices_and_keeps_only_long_spaces() -> None:
    slices = [Slice(10, 40, []), Slice(None, None, []), Slice(300, 320, [(305, 318)]), Slice(400, 410, [])]
    assert free_parts(0, 500, slices, 20) == [(40, 300), (320, 400), (410, 500)]
    assert free_parts(0, 500, slices, 5) == [(0, 10), (40, 300), (305, 318), (320, 400), (410, 500)]
    assert free_parts(0, 500, [Slice(None, None, [])], 20) == [(0, 500)]


def test_intersect_keeps_where_both_lists_are_free_and_long_enough() -> None:
    left = [(0, 100), (200, 300), (400, 500)]
    right = [(50, 250), (260, 270), (280, 450)]
    assert intersect(left, right, 5) == [(50, 100), (200, 250), (260, 270), (280, 300), (400, 450)]
    assert intersect(left, right, 30) == [(50, 100), (200, 250), (400, 450)]
    assert intersect(left, [], 0) == []


def test_split_cuts_a_piece_into_slices_that_cover_it() -> None:
    assert split((0, 25), 10) == [(0, 10), (10, 20), (20, 25)]
    assert split((5, 5), 10) == [(5, 5)]
