"""The quantity catalog: one table, read by the gateway, the API, the dashboards and the firmware tests.

Adding a quantity is adding one row to ``_ROWS``.
"""

from __future__ import annotations

from dataclasses import dataclass
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

    def display(self, value: float) -> str:
        """``140 %``, ``21.5 °C``: a value with its unit, as a sentence for a pupil shows it."""
        text = f"{value:g}"
        return f"{text} {self.unit}" if self.unit else text


# name, unit, UCUM, min, max, description[, default aggregate]
_ROWS: tuple[Quantity, ...] = (
    Quantity("temperature", "°C", "Cel", -60, 70, "Air temperature"),
    Quantity("soil_temperature", "°C", "Cel", -60, 70, "Soil temperature at the probe's depth"),
    Quantity("water_temperature", "°C", "Cel", -5, 50, "Water temperature"),
    Quantity("humidity", "%", "%", 0, 100, "Relative humidity of the air"),
    Quantity("pressure", "hPa", "hPa", 300, 1100, "Air pressure at the kit (not reduced to sea level)"),
    Quantity("light", "lx", "lx", 0, 200_000, "Illuminance"),
    Quantity("uv_index", "", "1", 0, 20, "UV index"),
    Quantity("soil_moisture", "%", "%", 0, 100, "Soil moisture, calibrated between dry (0 %) and wet (100 %)"),
    Quantity("wind_speed", "m/s", "m/s", 0, 75, "Mean wind speed over the sampling interval"),
    Quantity("wind_gust", "m/s", "m/s", 0, 75, "Strongest gust in the sampling interval"),
    Quantity("wind_direction", "°", "deg", 0, 360, "Direction the wind blows from, clockwise from north"),
    Quantity("rain", "mm", "mm", 0, 500, "Rain since the previous sample", "sum"),
    Quantity("pm1", "µg/m³", "ug/m3", 0, 2000, "Particulate matter up to 1 µm"),
    Quantity("pm2_5", "µg/m³", "ug/m3", 0, 2000, "Particulate matter up to 2.5 µm"),
    Quantity("pm10", "µg/m³", "ug/m3", 0, 2000, "Particulate matter up to 10 µm"),
    Quantity("co2", "ppm", "ppm", 250, 10_000, "Carbon dioxide concentration"),
    Quantity("tvoc", "ppb", "ppb", 0, 60_000, "Total volatile organic compounds"),
    Quantity("noise", "dB(A)", "dB", 0, 140, "A-weighted sound level"),
    Quantity("battery", "V", "V", 0, 6, "Battery voltage of the kit"),
    Quantity("rssi", "dBm", "dB[mW]", -120, 0, "Wi-Fi signal strength at the kit"),
)

CATALOG: dict[str, Quantity] = {q.name: q for q in _ROWS}
QUANTITY_NAMES: tuple[str, ...] = tuple(CATALOG)


def quantity(name: str) -> Quantity:
    """The catalog row for ``name``; ``KeyError`` names the quantity if it is not in the catalog."""
    return CATALOG[name]
