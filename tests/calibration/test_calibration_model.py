"""The pure core of calibrations: applying one, its checks, its datapackage record, and the least-squares fit."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest

from lauks import derived
from lauks.calibration import (
    MIN_PAIRS,
    Calibration,
    FitRefused,
    bucket_pairs,
    fit,
    in_force,
    quantity_problem,
    values_problem,
    windows_overlap,
)

T0 = datetime(2025, 3, 3, 8, tzinfo=UTC)


def calibration(**overrides: object) -> Calibration:
    fields: dict[str, object] = {"id": 7, "site": "school", "kit": "k1", "quantity": "temperature", "offset": -0.5,
                                 "gain": 1.02, "valid_from": T0, "valid_to": T0 + timedelta(days=10),
                                 "reason": "co-location", "created_by": "Ms Ozola", "created_at": T0, **overrides}
    return Calibration(**fields)  # type: ignore[arg-type]


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def test_a_calibration_covers_its_window_from_its_start_up_to_but_not_including_its_end() -> None:
    c = calibration()
    assert c.covers(ms(T0)) and c.covers(ms(T0 + timedelta(days=10)) - 1)
    assert not c.covers(ms(T0) - 1) and not c.covers(ms(T0 + timedelta(days=10)))
    assert calibration(valid_to=None).covers(ms(T0 + timedelta(days=3650)))


def test_aggregates_of_raw_values_map_to_aggregates_of_calibrated_ones() -> None:
    c = calibration(gain=2.0, offset=1.0)
    raw = [1.0, 2.0, 6.0]
    assert c.apply_aggregate("mean", sum(raw) / 3) == pytest.approx(sum(map(c.apply, raw)) / 3)
    assert c.apply_aggregate("min", 1.0) == c.apply(1.0) and c.apply_aggregate("max", 6.0) == c.apply(6.0)
    assert c.apply_aggregate("sum", sum(raw), 3) == pytest.approx(sum(map(c.apply, raw)))
    assert c.apply_aggregate("count", 3) == 3
    with pytest.raises(ValueError, match="number of values"):
        c.apply_aggregate("sum", 9.0)


def test_the_calibration_in_force_is_the_one_of_that_kit_and_quantity_covering_the_time() -> None:
    first = calibration(id=1, valid_to=T0 + timedelta(days=1))
    second = calibration(id=2, valid_from=T0 + timedelta(days=1), valid_to=None)
    other = calibration(id=3, kit="k2", valid_to=None)
    found = [first, second, other]
    assert in_force(found, "k1", "temperature", ms(T0 + timedelta(hours=1))) is first
    assert in_force(found, "k1", "temperature", ms(T0 + timedelta(days=2))) is second
    assert in_force(found, "k1", "humidity", ms(T0 + timedelta(days=2))) is None
    assert in_force(found, "k1", "temperature", ms(T0) - 1) is None


def test_windows_overlap_when_each_starts_before_the_other_ends() -> None:
    day = timedelta(days=1)
    assert windows_overlap(T0, T0 + day, T0 + day / 2, None)
    assert not windows_overlap(T0, T0 + day, T0 + day, None)  # one ends where the next starts
    assert windows_overlap(T0, None, T0 + 100 * day, T0 + 101 * day)
    assert not windows_overlap(T0 + day, None, T0, T0 + day)


def test_as_json_records_everything_a_reader_of_the_datapackage_needs_in_plain_json() -> None:
    record = calibration().as_json()
    assert json.loads(json.dumps(record)) == record
    assert record == {"id": 7, "site": "school", "kit": "k1", "quantity": "temperature", "gain": 1.02,
                      "offset": -0.5, "offset_unit": "°C", "formula": "calibrated = gain × raw + offset",
                      "valid_from": "2025-03-03T08:00:00Z", "valid_to": "2025-03-13T08:00:00Z",
                      "reason": "co-location", "created_by": "Ms Ozola", "created_at": "2025-03-03T08:00:00Z"}
    assert calibration(valid_to=None).as_json()["valid_to"] is None


@pytest.mark.parametrize(("gain", "code"), [(0.0, "bad_gain"), (-1.0, "bad_gain"), (math.nan, "bad_number"),
                                            (math.inf, "bad_number")])
def test_a_gain_that_is_not_above_zero_or_not_finite_is_refused_with_a_sentence(gain: float, code: str) -> None:
    problem = values_problem(0.0, gain, T0, None)
    assert problem is not None and problem.code == code and "gain" in problem.message


def test_a_window_that_ends_before_it_starts_or_a_time_without_an_offset_is_refused() -> None:
    reversed_ = values_problem(0.0, 1.0, T0, T0)
    assert reversed_ is not None and reversed_.code == "reversed_window" and "swap" in reversed_.message
    naive = values_problem(0.0, 1.0, T0.replace(tzinfo=None), None)
    assert naive is not None and naive.code == "bad_time"
    assert values_problem(math.nan, 1.0, T0, None) is not None
    assert values_problem(-0.4, 1.02, T0, T0 + timedelta(seconds=1)) is None


def test_an_unknown_quantity_is_refused_with_a_hint_and_a_derived_one_points_at_its_inputs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    unknown = quantity_problem("temprature")
    assert unknown is not None and unknown.code == "unknown_quantity" and "temperature" in unknown.message
    assert quantity_problem("humidity") is None
    monkeypatch.setitem(derived.DERIVED, "dew_point", derived.Derived(
        "dew_point", "°C", "Cel", "Dew point", ("temperature", "humidity"), "Magnus", "WMO", resolution=0.01))
    made = quantity_problem("dew_point")
    assert made is not None and made.code == "derived_quantity"
    assert "temperature and humidity" in made.message


def test_a_fit_recovers_the_gain_and_offset_of_exact_pairs() -> None:
    kit = [10 + 8 * math.sin(i / 7) for i in range(60)]
    result = fit([(x, 1.04 * x - 0.7) for x in kit])
    assert result.gain == pytest.approx(1.04, abs=1e-9) and result.offset == pytest.approx(-0.7, abs=1e-9)
    assert result.r_squared == pytest.approx(1.0) and result.residual_max < 1e-9 and result.pairs == 60


def test_a_fit_on_noisy_pairs_reports_r_squared_and_residuals_that_match_the_noise() -> None:
    noise = [0.1 * (-1) ** i for i in range(100)]  # +-0.1, mean zero, no slope of its own
    kit = [5 + 10 * math.sin(i / 9) for i in range(100)]
    result = fit([(x, 0.98 * x + 1.5 + e) for x, e in zip(kit, noise, strict=True)])
    assert result.gain == pytest.approx(0.98, abs=0.01) and result.offset == pytest.approx(1.5, abs=0.05)
    assert result.residual_rms == pytest.approx(0.1, abs=0.01) and result.residual_max == pytest.approx(0.1, abs=0.02)
    assert 0.99 < result.r_squared < 1


def test_a_fit_on_too_few_pairs_says_how_many_it_has_and_needs() -> None:
    with pytest.raises(FitRefused) as refused:
        fit([(float(i), float(i)) for i in range(12)])
    assert refused.value.code == "too_few_pairs"
    assert "only 12 pairs" in refused.value.message and f"at least {MIN_PAIRS}" in refused.value.message


def test_a_fit_with_no_pairs_says_there_is_no_overlapping_data_and_a_flat_kit_says_it_does_not_vary() -> None:
    with pytest.raises(FitRefused) as empty:
        fit([])
    assert empty.value.code == "no_overlap"
    with pytest.raises(FitRefused) as flat:
        fit([(20.0, float(i)) for i in range(40)])
    assert flat.value.code == "no_variation" and "do not vary" in flat.value.message


def test_pairs_are_the_buckets_where_both_have_a_value_in_time_order() -> None:
    assert bucket_pairs({3: 1.0, 1: 2.0, 5: 9.0}, {1: 20.0, 3: 10.0, 4: 0.0}) == [(2.0, 20.0), (1.0, 10.0)]
