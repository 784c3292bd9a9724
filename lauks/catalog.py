"""The quantity catalog: one table, read by the gateway, the API, the dashboards and the firmware tests.

Adding a quantity is adding one row to ``_ROWS``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

Aggregate = Literal["mean", "sum"]


@dataclass(frozen=True, slots=True)
class Quantity:
    name: str
    unit: str  # as a person reads it
    ucum: str  # Unified Code for Units of Measure, for machines (datapackage.json, exports)
    minimum: float
    maximum: float
    description: str
    default_agg: Aggregate = "mean"  # how a time bucket summarises it when nobody says
    # The display step: an aggregate (a mean of 12.6466...) is rounded to it, so exports show 12.65, not the
    # float's 17 digits. A power of ten, so it is a number of decimals (``decimals``).
    resolution: float = field(kw_only=True)
    # Quality thresholds (lauks.quality), applied when data is read, so a change here applies to old data too.
    # stuck_minutes: the same value repeated this long means a stuck sensor (None: the quantity may rightly
    # stay constant, as rain, light at night or a calm wind do). max_rate: the fastest plausible change in
    # units a minute; a faster one is a spike (None: it may rightly jump, as light under a cloud does).
    stuck_minutes: float | None = field(default=None, kw_only=True)
    max_rate: float | None = field(default=None, kw_only=True)

    @property
    def decimals(self) -> int:
        """Decimals of ``resolution``: 0.01 -> 2, 1 -> 0 (``round(value, decimals)`` is the cheap rounding)."""
        return max(0, -math.floor(math.log10(self.resolution) + 1e-9))

    def display(self, value: float) -> str:
        """``140 %``, ``21.5 °C``: a value with its unit, as a sentence for a pupil shows it."""
        text = f"{value:g}"
        return f"{text} {self.unit}" if self.unit else text


# name, unit, UCUM, min, max, description[, default aggregate], resolution.
# Resolutions are the step a typical school kit's sensor can tell apart, rounded to a power of ten, from the
# datasheets: BME280 (temperature 0.01 °C, humidity 0.008 %RH -> 0.1 %, pressure 0.18 Pa -> 0.01 hPa),
# DS18B20 (soil and water, 0.0625 °C at 12 bits -> 0.01), BH1750 (1 lx), VEML6075 / the WHO's UV index
# (given to 0.1), capacitive soil probes (0.1 % after calibration), cup anemometers and vanes (0.1 m/s, 1°),
# tipping buckets (0.2794 mm a tip; WMO reports rain to 0.1 mm), Plantower PMS5003 (1 µg/m³), SCD30/SCD40
# (1 ppm), SGP30 (1 ppb), class-2 sound meters (0.1 dB), the ESP32's ADC (about 1 mV), Wi-Fi RSSI (1 dBm).
#
# Quality thresholds (docs/schema.md, "Quality flags"). stuck_minutes is how long a working sensor cannot stay on
# one value at its resolution, and a whole number of hours, so the dashboards read it from the hourly rollup.
# Only quantities whose sensors always move are given one: air temperature at 0.01 °C (a BME280's noise alone
# moves it within minutes), pressure at 0.01 hPa, humidity at 0.1 % (3 h: fog can hold 100 % for a while,
# longer is a wet sensor), CO2 (an SCD30/SCD40 wanders by +-30 ppm), noise (a room is never silent to 0.1 dB),
# soil moisture (12 h: dry soil drifts slowly). Soil and water temperature come from a DS18B20 in 0.0625 °C
# steps, and deep soil or a pond at night can stay within one step for hours: a day for soil, 12 h for water.
# max_rate is well above the fastest change in nature, so a spike is a fault or a handled kit, not weather: air
# temperature 2 °C a minute (sun on a shield gives about 1), soil 0.5 and water 1 (mass slows them), humidity
# 10 % a minute, pressure 1 hPa a minute (a severe storm's jump is a few hPa over several minutes), CO2 500 ppm a
# minute (a breath on the sensor), battery 0.5 V a minute (a solar charger starting lifts a cell by 0.1-0.2 V;
# more is a swapped battery or a loose contact). Light, UV, wind, rain, particulates and gases may rightly
# jump or stay at 0 for hours, so they have neither.
_ROWS: tuple[Quantity, ...] = (
    Quantity("temperature", "°C", "Cel", -60, 70, "Air temperature", resolution=0.01,
             stuck_minutes=60, max_rate=2),
    Quantity("soil_temperature", "°C", "Cel", -60, 70, "Soil temperature at the probe's depth",
             resolution=0.01, stuck_minutes=1440, max_rate=0.5),
    Quantity("water_temperature", "°C", "Cel", -5, 50, "Water temperature", resolution=0.01,
             stuck_minutes=720, max_rate=1),
    Quantity("humidity", "%", "%", 0, 100, "Relative humidity of the air", resolution=0.1,
             stuck_minutes=180, max_rate=10),
    Quantity("pressure", "hPa", "hPa", 300, 1100, "Air pressure at the kit (not reduced to sea level)",
             resolution=0.01, stuck_minutes=180, max_rate=1),
    Quantity("light", "lx", "lx", 0, 200_000, "Illuminance", resolution=1),
    Quantity("uv_index", "", "1", 0, 20, "UV index", resolution=0.1),
    Quantity("soil_moisture", "%", "%", 0, 100, "Soil moisture, calibrated between dry (0 %) and wet (100 %)",
             resolution=0.1, stuck_minutes=720),
    Quantity("wind_speed", "m/s", "m/s", 0, 75, "Mean wind speed over the sampling interval", resolution=0.1),
    Quantity("wind_gust", "m/s", "m/s", 0, 75, "Strongest gust in the sampling interval", resolution=0.1),
    Quantity("wind_direction", "°", "deg", 0, 360, "Direction the wind blows from, clockwise from north",
             resolution=1),
    Quantity("rain", "mm", "mm", 0, 500, "Rain since the previous sample", "sum", resolution=0.1),
    Quantity("pm1", "µg/m³", "ug/m3", 0, 2000, "Particulate matter up to 1 µm", resolution=1),
    Quantity("pm2_5", "µg/m³", "ug/m3", 0, 2000, "Particulate matter up to 2.5 µm", resolution=1),
    Quantity("pm10", "µg/m³", "ug/m3", 0, 2000, "Particulate matter up to 10 µm", resolution=1),
    Quantity("co2", "ppm", "ppm", 250, 10_000, "Carbon dioxide concentration", resolution=1,
             stuck_minutes=60, max_rate=500),
    Quantity("tvoc", "ppb", "ppb", 0, 60_000, "Total volatile organic compounds", resolution=1),
    Quantity("noise", "dB(A)", "dB", 0, 140, "A-weighted sound level", resolution=0.1, stuck_minutes=60),
    Quantity("battery", "V", "V", 0, 6, "Battery voltage of the kit", resolution=0.001, max_rate=0.5),
    Quantity("rssi", "dBm", "dB[mW]", -120, 0, "Wi-Fi signal strength at the kit", resolution=1),
)

CATALOG: dict[str, Quantity] = {q.name: q for q in _ROWS}
QUANTITY_NAMES: tuple[str, ...] = tuple(CATALOG)


def quantity(name: str) -> Quantity:
    """The catalog row for ``name``; ``KeyError`` names the quantity if it is not in the catalog."""
    return CATALOG[name]
