"""Where a kit is shown: exactly, or blurred to about 1 km so a kit in a pupil's garden keeps their home private.

Pure: the API calls it for readers without a staff token. The blur snaps to the centre of a fixed grid cell
(0.01° of latitude, and the longitude step that is as wide at that latitude), never adds noise: noise that
changes per read averages out over many reads, and a fixed cell gives the same answer every time.
"""

from __future__ import annotations

import math
from typing import Literal

Precision = Literal["exact", "blurred"]
PRECISIONS: tuple[Precision, ...] = ("exact", "blurred")
LATITUDE_STEP = 0.01  # degrees: 1.11 km north-south everywhere
_NARROWEST = math.cos(math.radians(89.0))  # near the poles a cell stays a few degrees wide, not unbounded


def _cell_centre(value: float, step: float, low: float, high: float) -> float:
    cells = math.floor((value - low) / step)
    cells = min(cells, math.ceil((high - low) / step) - 1)  # the top edge (90°, 180°) is in the last cell
    return min(high, low + (cells + 0.5) * step)


def longitude_step(latitude: float) -> float:
    """Degrees of longitude as wide as ``LATITUDE_STEP`` of latitude at ``latitude`` (0.0185° at Riga's 57°)."""
    return LATITUDE_STEP / max(math.cos(math.radians(latitude)), _NARROWEST)


def shown_location(latitude: float | None, longitude: float | None,
                   precision: str) -> tuple[float | None, float | None]:
    """The coordinates to show a reader who is not staff.

    ``exact``: as stored. Anything else is blurred (an unknown precision is treated as the safe one): each point
    becomes the centre of its grid cell, at most about 0.8 km from where the kit is. A location with only one
    coordinate is not shown at all when blurred: it could not be drawn on a map, and half of it is no blur.
    """
    if precision == "exact":
        return latitude, longitude
    if latitude is None or longitude is None:
        return None, None
    lat = _cell_centre(latitude, LATITUDE_STEP, -90.0, 90.0)
    lon = _cell_centre(longitude, longitude_step(lat), -180.0, 180.0)
    return round(lat, 6), round(lon, 6)
