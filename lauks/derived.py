"""Derived quantities (dew point, sea-level pressure, daily statistics): computed when read, never stored.

Each is selectable like a catalog quantity (``quantities=dew_point``) but is never written to InfluxDB as if
measured: the read path fetches its ``inputs`` and calls ``compute`` per reading (or per bucket, with the bucket's
aggregated inputs), and a daily one is its input's statistic over the school's day. Pure; ``compute`` never
raises: an input that is missing or outside the formula's domain gives None.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from lauks.catalog import CATALOG

Statistic = Literal["min", "max", "mean", "sum"]
Formula = Callable[[Mapping[str, float | None], float | None], float | None]

DAY_S = 86_400  # a daily quantity's bucket: the school's local day, dated at its local midnight

# Magnus formula over water, constants of Alduchov and Eskridge (1996): within 0.4 % of the saturation vapour
# pressure from -40 to 50 °C.
MAGNUS_A = 17.625
MAGNUS_B = 243.04  # °C
# The troposphere of the U.S. Standard Atmosphere, 1976: temperature falls 0.0065 K a metre; g0, the molar mass
# of air and the gas constant are its own values, so the exponent g0 M / (R L) is 5.25588.
LAPSE_RATE = 0.0065  # K/m
G0 = 9.80665  # m/s²
AIR_MOLAR_MASS = 0.0289644  # kg/mol
GAS_CONSTANT = 8.31432  # J/(mol K)
BAROMETRIC_EXPONENT = G0 * AIR_MOLAR_MASS / (GAS_CONSTANT * LAPSE_RATE)
KELVIN = 273.15
ELEVATION_M = (-500.0, 9000.0)  # the shore of the Dead Sea to above Everest: an elevation outside is a mistake


def _finite(value: float | None) -> float | None:
    # bool is an int, and a reading is never one; NaN and infinities are out of every formula's domain
    if value is None or isinstance(value, bool):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def dew_point(temperature: float | None, humidity: float | None) -> float | None:
    """Dew point (°C) of air at ``temperature`` (°C) and relative ``humidity`` (%, in (0, 100]), else None."""
    t = _finite(temperature)
    rh = _finite(humidity)
    if t is None or rh is None or not 0 < rh <= 100 or t <= -MAGNUS_B:
        return None
    gamma = math.log(rh / 100) + MAGNUS_A * t / (MAGNUS_B + t)
    return _finite(MAGNUS_B * gamma / (MAGNUS_A - gamma))  # gamma < MAGNUS_A for every t > -b and rh <= 100


def sea_level_pressure(pressure: float | None, temperature: float | None, elevation_m: float | None) -> float | None:
    """Pressure (hPa) reduced to sea level from the kit's ``pressure`` (hPa) and ``temperature`` (°C) at
    ``elevation_m`` above sea level, assuming the standard lapse rate in the air column below; else None."""
    p = _finite(pressure)
    t = _finite(temperature)
    h = _finite(elevation_m)
    if p is None or t is None or h is None or p <= 0 or not ELEVATION_M[0] <= h <= ELEVATION_M[1]:
        return None
    kelvin = t + KELVIN
    if kelvin <= 0:
        return None
    ratio = 1 + LAPSE_RATE * h / kelvin  # the sea-level air's temperature over the kit's
    return _finite(p * ratio ** BAROMETRIC_EXPONENT) if ratio > 0 else None


def _dew_point(values: Mapping[str, float | None], _elevation_m: float | None) -> float | None:
    return dew_point(values.get("temperature"), values.get("humidity"))


def _sea_level_pressure(values: Mapping[str, float | None], elevation_m: float | None) -> float | None:
    return sea_level_pressure(values.get("pressure"), values.get("temperature"), elevation_m)


@dataclass(frozen=True, slots=True)
class Derived:
    name: str
    unit: str
    ucum: str
    description: str
    inputs: tuple[str, ...]  # stored quantities it is computed from
    formula: str  # as the datapackage.json shows it
    reference: str  # where the formula comes from
    resolution: float = field(kw_only=True)
    # A daily quantity is one value per school day: ``daily`` is (stored quantity, statistic), computed as
    # that statistic of the day's readings in the site's zone, and dated at the local midnight.
    daily: tuple[str, Literal["min", "max", "mean", "sum"]] | None = field(default=None, kw_only=True)
    needs_elevation: bool = field(default=False, kw_only=True)
    # the per-reading formula (None for a daily quantity: the read path asks InfluxDB for the day's statistic)
    function: Formula | None = field(default=None, kw_only=True, repr=False, compare=False)

    @property
    def decimals(self) -> int:
        """Decimals of ``resolution``, as ``Quantity.decimals``: 0.1 -> 1."""
        return max(0, -math.floor(math.log10(self.resolution) + 1e-9))

    def compute(self, values: Mapping[str, float | None], elevation_m: float | None = None) -> float | None:
        """A per-reading derived value from its inputs at one time (None if an input is missing).

        ``values`` maps input names to values (others are ignored). A daily quantity's ``values`` holds its
        input's statistic of the day, which it returns as it is. Never raises.
        """
        if self.function is None:
            return _finite(values.get(self.inputs[0])) if self.inputs else None
        return self.function(values, elevation_m)

    def unavailable(self, elevation_m: float | None) -> str | None:
        """Why this quantity cannot be worked out for a site (a sentence to show), or None if it can."""
        if not self.needs_elevation:
            return None
        height = _finite(elevation_m)
        if height is None:
            return (f"{self.name} needs the site's elevation above sea level: set the site's elevation_m "
                    f"(in metres) to get it")
        low, high = ELEVATION_M
        if not low <= height <= high:
            return (f"{self.name} needs the site's elevation above sea level, and {height:g} m is outside "
                    f"{low:g} to {high:g} m: correct the site's elevation_m")
        return None


_DAY = ("the school's day: from local midnight to the next in the site's time zone, dated at its midnight "
        "(docs/schema.md, 'Derived quantities and gaps')")

_ROWS: tuple[Derived, ...] = (
    Derived("dew_point", "°C", "Cel", "Dew point: the temperature to which the air would have to cool for its water "
            "vapour to condense, from air temperature and relative humidity", ("temperature", "humidity"),
            "Td = b·γ / (a − γ), γ = ln(RH / 100) + a·T / (b + T), a = 17.625, b = 243.04 °C "
            "(T air temperature in °C, RH relative humidity in %)",
            "Magnus formula with the constants of Alduchov, O. A. and Eskridge, R. E. (1996): Improved Magnus "
            "form approximation of saturation vapor pressure. Journal of Applied Meteorology 35 (4), 601–609, "
            "doi:10.1175/1520-0450(1996)035<0601:IMFAOS>2.0.CO;2 (within 0.4 % from −40 to 50 °C)",
            resolution=0.1, function=_dew_point),
    Derived("sea_level_pressure", "hPa", "hPa", "Air pressure reduced to mean sea level from the kit's pressure and "
            "air temperature and the site's elevation, so that sites at different heights compare",
            ("pressure", "temperature"),
            "p0 = p · (1 + L·h / (T + 273.15))^(g·M / (R·L)), L = 0.0065 K/m, g·M / (R·L) = 5.25588 "
            "(p pressure at the kit in hPa, T air temperature at the kit in °C, h the site's elevation in m)",
            "The hypsometric equation for an air column whose temperature rises 0.0065 K a metre downwards, the "
            "lapse rate of the U.S. Standard Atmosphere, 1976 (NOAA-S/T 76-1562), with its g = 9.80665 m/s², "
            "M = 0.0289644 kg/mol, R = 8.31432 J/(mol·K). Weather services also correct for humidity and use a "
            "12-hour mean temperature, so their values may differ by a few tenths of a hPa at school elevations",
            resolution=0.1, needs_elevation=True, function=_sea_level_pressure),
    Derived("temperature_daily_min", "°C", "Cel", "Lowest air temperature of the school's day", ("temperature",),
            "min(T) over the day", f"The lowest temperature reading in {_DAY}", resolution=0.01,
            daily=("temperature", "min")),
    Derived("temperature_daily_max", "°C", "Cel", "Highest air temperature of the school's day", ("temperature",),
            "max(T) over the day", f"The highest temperature reading in {_DAY}", resolution=0.01,
            daily=("temperature", "max")),
    Derived("temperature_daily_mean", "°C", "Cel", "Mean air temperature of the school's day: the mean of all its "
            "readings (not the (max + min) / 2 of some climate records)", ("temperature",),
            "mean(T) over the day", f"The arithmetic mean of the temperature readings in {_DAY}", resolution=0.01,
            daily=("temperature", "mean")),
    Derived("rain_daily_total", "mm", "mm", "Rain of the school's day: the sum of the kit's rain readings",
            ("rain",), "sum(rain) over the day",
            f"The sum of the rain readings (each the rain since the sample before) in {_DAY}", resolution=0.1,
            daily=("rain", "sum")),
)

DERIVED: dict[str, Derived] = {d.name: d for d in _ROWS}
DERIVED_NAMES: tuple[str, ...] = tuple(DERIVED)
assert not set(DERIVED) & set(CATALOG), "a derived quantity's name must not be a catalog quantity's"


def is_derived(name: str) -> bool:
    return name in DERIVED


def stored_inputs(names: Iterable[str]) -> tuple[str, ...]:
    """The stored quantities to read for ``names`` (catalog and derived names): the catalog ones as given, then
    each derived one's inputs not already there, in order, no repeats. Unknown names are left out."""
    names = tuple(names)
    found: dict[str, None] = {}
    for name in names:
        if name in CATALOG:
            found[name] = None
    for name in names:
        derived = DERIVED.get(name)
        if derived is not None:
            found.update(dict.fromkeys(derived.inputs))
    return tuple(found)
