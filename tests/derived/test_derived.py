"""Derived quantities: the formulas against published worked examples, and never an exception for bad input."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lauks.catalog import CATALOG
from lauks.derived import BAROMETRIC_EXPONENT, DERIVED, dew_point, sea_level_pressure, stored_inputs

DEW = DERIVED["dew_point"]
SLP = DERIVED["sea_level_pressure"]


@pytest.mark.parametrize(("temperature", "humidity", "expected"), [
    (20.0, 50.0, 9.26),  # the usual textbook check: 20 °C at 50 % has its dew point at about 9.3 °C
    (25.0, 60.0, 16.70),
    (30.0, 80.0, 26.17),
    (0.0, 100.0, 0.0),
    (-10.0, 80.0, -12.80),
])
def test_dew_point_matches_the_magnus_formula_s_worked_values(temperature: float, humidity: float,
                                                              expected: float) -> None:
    value = DEW.compute({"temperature": temperature, "humidity": humidity})
    assert value is not None and value == pytest.approx(expected, abs=0.01)


def test_dew_point_equals_the_temperature_in_saturated_air() -> None:
    for temperature in (-30.0, -5.5, 0.0, 12.3, 35.0):
        assert dew_point(temperature, 100.0) == pytest.approx(temperature, abs=1e-9)


def test_dew_point_falls_as_the_air_gets_drier() -> None:
    values = [dew_point(20.0, rh) for rh in (90.0, 70.0, 50.0, 30.0, 10.0)]
    numbers = [v for v in values if v is not None]
    assert len(numbers) == 5 and all(a > b for a, b in itertools.pairwise(numbers))


def test_dew_point_uses_the_alduchov_eskridge_constants() -> None:
    # e_s(T) = 6.1094 exp(a T / (b + T)); at the dew point e_s(Td) = RH/100 e_s(T)
    temperature, humidity = 18.0, 64.0
    found = dew_point(temperature, humidity)
    assert found is not None

    def saturation(t: float) -> float:
        return 6.1094 * math.exp(17.625 * t / (243.04 + t))

    assert saturation(found) == pytest.approx(humidity / 100 * saturation(temperature), rel=1e-12)


@pytest.mark.parametrize("humidity", [0.0, -3.0, 100.1, 250.0, math.nan, math.inf, None])
def test_dew_point_of_humidity_outside_0_to_100_is_none(humidity: float | None) -> None:
    assert DEW.compute({"temperature": 20.0, "humidity": humidity}) is None


def test_dew_point_without_an_input_is_none() -> None:
    assert DEW.compute({"temperature": 20.0}) is None
    assert DEW.compute({"humidity": 50.0}) is None
    assert DEW.compute({}) is None


# The U.S. Standard Atmosphere, 1976, table of geopotential heights: (m, hPa, °C); each reduces to 1013.25 hPa.
STANDARD_ATMOSPHERE = [(0, 1013.25, 15.0), (100, 1001.29, 14.35), (500, 954.61, 11.75), (1000, 898.76, 8.5),
                       (2000, 794.95, 2.0)]


@pytest.mark.parametrize(("elevation", "pressure", "temperature"), STANDARD_ATMOSPHERE)
def test_the_standard_atmosphere_s_pressures_reduce_to_1013_25_hpa(elevation: float, pressure: float,
                                                                   temperature: float) -> None:
    value = SLP.compute({"pressure": pressure, "temperature": temperature}, elevation_m=elevation)
    assert value is not None and value == pytest.approx(1013.25, abs=0.02)


def test_a_station_150_m_up_at_15_c_adds_about_18_hpa() -> None:
    # 1003 hPa at 150 m and 15 °C: 1020.97 hPa with the rounded exponent 5.257 of many calculators
    value = sea_level_pressure(1003.0, 15.0, 150.0)
    assert value is not None and value == pytest.approx(1020.97, abs=0.01)


def test_the_exponent_is_the_standard_atmosphere_s() -> None:
    assert BAROMETRIC_EXPONENT == pytest.approx(5.25588, abs=1e-5)


def test_colder_air_below_the_kit_weighs_more() -> None:
    cold = sea_level_pressure(990.0, -10.0, 200.0)
    warm = sea_level_pressure(990.0, 25.0, 200.0)
    assert cold is not None and warm is not None and cold > warm > 990.0


def test_sea_level_pressure_without_an_elevation_is_none_and_says_why() -> None:
    assert SLP.compute({"pressure": 1000.0, "temperature": 10.0}) is None
    reason = SLP.unavailable(None)
    assert reason is not None and "elevation_m" in reason
    assert SLP.unavailable(120.0) is None
    assert DEW.unavailable(None) is None  # the dew point needs no elevation


@pytest.mark.parametrize("elevation", [-1000.0, 20_000.0, 1e300, math.nan])
def test_an_impossible_elevation_gives_none_and_a_reason(elevation: float) -> None:
    assert sea_level_pressure(1000.0, 10.0, elevation) is None
    assert SLP.unavailable(elevation) is not None


@pytest.mark.parametrize("pressure", [0.0, -5.0, None, math.inf])
def test_sea_level_pressure_of_an_impossible_pressure_is_none(pressure: float | None) -> None:
    assert SLP.compute({"pressure": pressure, "temperature": 10.0}, elevation_m=50.0) is None


def test_a_daily_quantity_gives_back_its_statistic_of_the_day() -> None:
    daily = DERIVED["rain_daily_total"]
    assert daily.daily == ("rain", "sum")
    assert daily.compute({"rain": 4.2}) == 4.2
    assert daily.compute({"rain": None}) is None
    assert daily.compute({}) is None
    assert DERIVED["temperature_daily_min"].daily == ("temperature", "min")
    assert DERIVED["temperature_daily_max"].daily == ("temperature", "max")
    assert DERIVED["temperature_daily_mean"].daily == ("temperature", "mean")


def test_every_derived_quantity_is_described_and_none_takes_a_catalog_name() -> None:
    assert {"dew_point", "sea_level_pressure", "temperature_daily_min", "temperature_daily_max",
            "temperature_daily_mean", "rain_daily_total"} <= set(DERIVED)
    for name, derived in DERIVED.items():
        assert name == derived.name and name not in CATALOG
        assert derived.inputs and all(q in CATALOG for q in derived.inputs)
        assert derived.unit and derived.ucum and derived.description and derived.formula and derived.reference
        assert math.log10(derived.resolution) == round(math.log10(derived.resolution))  # a power of ten
        if derived.daily is not None:
            assert derived.daily[0] in derived.inputs and derived.function is None
        else:
            assert derived.function is not None


def test_the_inputs_to_read_are_the_stored_quantities_then_each_derived_one_s() -> None:
    assert stored_inputs(["dew_point"]) == ("temperature", "humidity")
    assert stored_inputs(["humidity", "sea_level_pressure", "dew_point"]) == ("humidity", "pressure", "temperature")
    assert stored_inputs(iter(["rain_daily_total", "rain"])) == ("rain",)
    assert stored_inputs(["no_such"]) == ()


finite_or_not = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.booleans())


@given(finite_or_not, finite_or_not, finite_or_not, finite_or_not)
def test_compute_never_raises_and_gives_a_finite_number_or_none(t: float | None, rh: float | None,
                                                                p: float | None, h: float | None) -> None:
    values = {"temperature": t, "humidity": rh, "pressure": p, "rain": t}
    for derived in DERIVED.values():
        value = derived.compute(values, elevation_m=h)
        assert value is None or (isinstance(value, float) and math.isfinite(value))
