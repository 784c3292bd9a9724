"""The read-time quality flags of lauks.quality: pure logic, nothing running."""

from __future__ import annotations

import re
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lauks import quality
from lauks.catalog import CATALOG
from lauks.quality import (
    BACKFILLED,
    BATTERY_LOW,
    CALIBRATED,
    CLOCK_ESTIMATED,
    SPIKE,
    STUCK,
    bucket_mask,
    reading_mask,
    series_masks,
)

MINUTE = 60_000
T0 = 1_700_000_000_000


def minutes(n: int, every: int = 1) -> list[int]:
    return [T0 + i * every * MINUTE for i in range(n)]


def varying(n: int, start: float = 10.0, step: float = 0.1) -> list[float | None]:
    """A gently rising series: never stuck, never too fast for temperature (2 °C a minute)."""
    return [round(start + i * step, 2) for i in range(n)]


def flagged(masks: list[int], bit: int) -> list[int]:
    return [i for i, m in enumerate(masks) if m & bit]


# --- names and texts ------------------------------------------------------------------------------------------

def test_names_come_in_the_catalog_order_of_flags() -> None:
    assert quality.names(BATTERY_LOW | STUCK | CALIBRATED) == ["stuck", "battery_low", "calibrated"]
    assert quality.names(0) == []


def test_a_tidy_cell_joins_names_with_semicolons_and_is_empty_without_flags() -> None:
    assert quality.tidy_text(STUCK | BATTERY_LOW) == "stuck;battery_low"
    assert quality.tidy_text(0) == ""


def test_a_wide_cell_pairs_each_flagged_quantity_with_its_flags() -> None:
    text = quality.wide_text(["temperature", "humidity", "pressure"], [STUCK, 0, SPIKE | BATTERY_LOW])
    assert text == "temperature:stuck pressure:spike+battery_low"
    assert quality.wide_text(["temperature"], [0]) == ""


def test_mask_of_names_is_the_inverse_of_names_and_refuses_an_unknown_flag() -> None:
    assert quality.mask_of(["spike", "backfilled"]) == SPIKE | BACKFILLED
    with pytest.raises(ValueError, match="'stale' is not a quality flag: choose from stuck, spike"):
        quality.mask_of(["spike", "stale"])


# --- stuck ----------------------------------------------------------------------------------------------------

def test_a_run_of_one_value_lasting_stuck_minutes_is_stuck_in_every_reading() -> None:
    assert CATALOG["temperature"].stuck_minutes == 60
    values = varying(10) + [15.0] * 61 + varying(10, start=20)  # 61 readings a minute apart: 60 minutes
    masks = series_masks("temperature", minutes(len(values)), values)
    assert flagged(masks, STUCK) == list(range(10, 71))


def test_a_run_a_minute_short_of_stuck_minutes_is_not_stuck() -> None:
    values = varying(10) + [15.0] * 60 + varying(10, start=20)  # 59 minutes from first to last
    assert not flagged(series_masks("temperature", minutes(len(values)), values), STUCK)


def test_a_gap_breaks_a_run_so_two_short_runs_either_side_are_not_stuck() -> None:
    times = minutes(40) + [T0 + (40 + 10 + i) * MINUTE for i in range(40)]  # 10 minutes without readings
    values: list[float | None] = [15.0] * 80
    assert not flagged(series_masks("temperature", times, values), STUCK)
    # the same readings with no gap are one run of 79 minutes
    assert flagged(series_masks("temperature", minutes(80), values), STUCK) == list(range(80))


def test_missing_values_are_no_readings_and_neither_break_nor_join_a_run() -> None:
    values: list[float | None] = [15.0 if i % 2 == 0 else None for i in range(130)]  # 15.0 every 2 minutes
    masks = series_masks("temperature", minutes(130), values)
    assert flagged(masks, STUCK) == list(range(0, 130, 2))


def test_a_quantity_that_may_rightly_stay_constant_is_never_stuck_nor_spiky() -> None:
    assert CATALOG["rain"].stuck_minutes is None and CATALOG["rain"].max_rate is None
    values: list[float | None] = [*[0.0] * 200, 400.0, *[0.0] * 10]
    assert series_masks("rain", minutes(len(values)), values) == [0] * len(values)


# --- spike ----------------------------------------------------------------------------------------------------

def test_a_one_reading_spike_flags_that_reading_and_not_its_neighbours() -> None:
    values = varying(20)
    values[10] = 40.0  # 39 °C up in a minute and back down
    masks = series_masks("temperature", minutes(20), values)
    assert flagged(masks, SPIKE) == [10]


def test_a_step_flags_the_first_reading_at_the_new_level_only() -> None:
    values = varying(10) + varying(10, start=30)  # +20 °C between readings 9 and 10, then steady
    masks = series_masks("temperature", minutes(20), values)
    assert flagged(masks, SPIKE) == [10]


def test_a_few_readings_up_and_back_flag_the_excursion_and_not_the_return() -> None:
    values = varying(20)
    values[8:11] = [40.0, 40.1, 40.2]
    masks = series_masks("temperature", minutes(20), values)
    assert flagged(masks, SPIKE) == [8, 9, 10]


def test_a_change_back_too_long_after_is_a_second_step() -> None:
    n = 30
    values = varying(n)
    values[5:5 + quality.SPIKE_MAX_READINGS + 1] = [40.0] * (quality.SPIKE_MAX_READINGS + 1)
    masks = series_masks("temperature", minutes(n), values)
    assert flagged(masks, SPIKE) == [5, 5 + quality.SPIKE_MAX_READINGS + 1]


def test_a_fast_change_is_judged_per_minute_so_the_same_change_over_longer_is_no_spike() -> None:
    # +3 °C: too fast over one minute (2 °C a minute), plausible over two
    assert flagged(series_masks("temperature", minutes(3), [10.0, 13.0, 13.0]), SPIKE) == [1]
    assert flagged(series_masks("temperature", minutes(3, every=2), [10.0, 13.0, 13.0]), SPIKE) == []


def test_a_change_across_a_gap_is_no_spike() -> None:
    times = minutes(10) + [T0 + (9 + 60 + i) * MINUTE for i in range(10)]  # an hour offline
    values = varying(10) + varying(10, start=30)
    assert not flagged(series_masks("temperature", times, values), SPIKE)


def test_the_kits_own_interval_decides_what_a_gap_is_when_given() -> None:
    times = [T0, T0 + 10 * MINUTE, T0 + 20 * MINUTE]  # readings every 10 minutes
    values: list[float | None] = [10.0, 30.0, 30.0]
    assert not flagged(series_masks("temperature", times, values), SPIKE)  # 2 °C a minute is not more
    values = [10.0, 40.0, 40.0]  # 3 °C a minute
    assert flagged(series_masks("temperature", times, values), SPIKE) == [1]
    # a kit sending every minute that was away for 10: a gap, no spike
    assert not flagged(series_masks("temperature", times, values, interval_ms=MINUTE), SPIKE)


def test_the_typical_interval_of_a_long_series_is_its_usual_one_despite_gaps_and_a_burst() -> None:
    times = minutes(30_000)
    times[100:200] = [times[99] + 1000 * (i + 1) for i in range(100)]  # a burst of readings a second apart
    times = sorted(set(times[:5000] + [t + 10 * MINUTE for t in times[5000:]]))  # and a 10-minute gap
    assert len(times) > quality.TYPICAL_SAMPLE
    assert quality.typical_interval_ms(times) == MINUTE
    assert quality.typical_interval_ms(times[:3]) == MINUTE and quality.typical_interval_ms(times[:1]) == 0


def test_times_and_values_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="3 times for 2 values"):
        series_masks("temperature", minutes(3), [1.0, 2.0])


def test_an_unknown_quantity_is_refused_with_the_known_ones() -> None:
    with pytest.raises(quality.UnknownQuantity, match=r"'temprature' is not a quantity Lauks knows.*temperature"):
        series_masks("temprature", minutes(3), [1.0, 2.0, 3.0])
    with pytest.raises(quality.UnknownQuantity):
        bucket_mask("temprature", 600, 1, 2, 2, None, None, None)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(-50, 60, allow_nan=False).map(lambda v: round(v, 1))),
                min_size=0, max_size=120),
       st.lists(st.integers(1, 5), min_size=120, max_size=120))
def test_flags_of_a_series_are_only_stuck_and_spike_and_only_on_readings(values: list[float | None],
                                                                          steps: list[int]) -> None:
    times = [T0 + sum(steps[:i]) * MINUTE for i in range(len(values))]
    masks = series_masks("temperature", times, values)
    assert len(masks) == len(values)
    assert all(m & ~(STUCK | SPIKE) == 0 for m in masks)
    assert all(m == 0 for m, v in zip(masks, values, strict=True) if v is None)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-50, 60, allow_nan=False), min_size=2, max_size=60))
def test_a_series_never_faster_than_max_rate_has_no_spike(deltas: list[float]) -> None:
    limit = CATALOG["temperature"].max_rate
    assert limit is not None
    values: list[float | None] = [10.0]
    for d in deltas:
        prev = values[-1]
        assert prev is not None
        values.append(prev + max(-limit, min(limit, d)) * 0.99)
    assert not flagged(series_masks("temperature", minutes(len(values)), values), SPIKE)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 59), st.floats(5, 50))
def test_one_outlier_anywhere_inside_a_calm_series_flags_exactly_that_reading(at: int, height: float) -> None:
    values = varying(60, step=0.01)
    values[at] = (values[at] or 0) + height * 2.1  # faster than 2 °C a minute whatever the height
    expected = [at] if 0 < at else [1]  # the first reading of a run is taken as honest
    if at == 59:
        expected = [59]  # a last reading with no return is a step to it
    assert flagged(series_masks("temperature", minutes(60), values), SPIKE) == expected


# --- a reading's own facts ------------------------------------------------------------------------------------

def test_a_reading_more_than_five_minutes_late_is_backfilled() -> None:
    assert reading_mask(301, None, None) == BACKFILLED
    assert reading_mask(300, None, None) == 0
    assert reading_mask(None, None, None) == 0


def test_a_reading_dated_from_age_has_an_estimated_clock() -> None:
    assert reading_mask(None, 1, None) == CLOCK_ESTIMATED
    assert reading_mask(None, 0, None) == 0


def test_a_reading_under_3_3_volts_has_a_low_battery() -> None:
    assert reading_mask(None, None, 3.29) == BATTERY_LOW
    assert reading_mask(None, None, 3.3) == 0
    assert reading_mask(400, 1, 3.0) == BACKFILLED | CLOCK_ESTIMATED | BATTERY_LOW


# --- buckets --------------------------------------------------------------------------------------------------

def test_a_bucket_of_one_value_is_stuck_only_when_it_is_as_long_as_stuck_minutes() -> None:
    assert bucket_mask("temperature", 3600, 15.0, 15.0, 60, None, None, None) == STUCK
    assert bucket_mask("temperature", 600, 15.0, 15.0, 10, None, None, None) == 0
    assert bucket_mask("temperature", 3600, 15.0, 15.0, 1, None, None, None) == 0  # one reading proves nothing
    assert bucket_mask("temperature", 3600, 15.0, 15.1, 60, None, None, None) == 0


def test_a_bucket_whose_range_exceeds_max_rate_times_its_minutes_has_a_spike() -> None:
    # temperature: 2 °C a minute, a 10-minute bucket: more than 20 °C apart
    assert bucket_mask("temperature", 600, 0.0, 20.5, 10, None, None, None) == SPIKE
    assert bucket_mask("temperature", 600, 0.0, 20.0, 10, None, None, None) == 0


def test_a_bucket_carries_its_readings_facts() -> None:
    assert bucket_mask("temperature", 600, 1.0, 2.0, 10, 3.2, 301, 2) == BATTERY_LOW | BACKFILLED | CLOCK_ESTIMATED
    assert bucket_mask("temperature", 600, 1.0, 2.0, 10, 3.3, 300, 0) == 0
    assert bucket_mask("temperature", 600, None, None, 0, None, None, None) == 0


def test_a_quantity_without_thresholds_gets_only_the_facts_in_a_bucket() -> None:
    assert bucket_mask("rain", 86400, 0.0, 0.0, 1440, 3.0, None, None) == BATTERY_LOW
    assert bucket_mask("light", 60, 0.0, 100_000.0, 2, None, None, None) == 0


@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(-3, 3, allow_nan=False), min_size=1, max_size=30))
def test_a_bucket_with_a_spike_flag_holds_a_change_the_raw_series_calls_too_fast(steps: list[float]) -> None:
    """The bucket rule never flags what no consecutive pair of its readings shows (readings a minute apart, each
    a step of up to 3 °C from the one before, so some are too fast for 2 °C a minute and some are not)."""
    values = [10.0]
    for step in steps:
        values.append(values[-1] + step)
    every_s = 60 * len(values)
    if bucket_mask("temperature", every_s, min(values), max(values), len(values), None, None, None) & SPIKE:
        limit = CATALOG["temperature"].max_rate
        assert limit is not None
        assert any(abs(b - a) > limit for a, b in pairwise(values))


# --- the documentation says what the catalog says ---------------------------------------------------------------

def test_the_thresholds_table_of_docs_schema_is_the_catalogs() -> None:
    text = (Path(__file__).parents[2] / "docs" / "schema.md").read_text()
    section = text[text.index("## Quality flags"):]
    rows = {m.group(1): (m.group(2), m.group(3))
            for m in re.finditer(r"^\| `(\w+)` \| ([^|]+?) \| ([^|]+?) \|$", section, re.MULTILINE)}
    expected = {q.name: (f"{q.stuck_minutes:g} min" if q.stuck_minutes else "–",
                         f"{q.max_rate:g} {q.unit}/min" if q.max_rate else "–")
                for q in CATALOG.values() if q.stuck_minutes or q.max_rate}
    assert {k: v for k, v in rows.items() if k in CATALOG} == expected
