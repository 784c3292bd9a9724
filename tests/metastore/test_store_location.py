"""A kit's place as readers without a staff token see it: exact as stored, or blurred to about 1 km, the same
answer on every read (noise would average out over many reads; a fixed grid cell does not)."""

from __future__ import annotations

import math

import pytest

from metastore.location import LATITUDE_STEP, longitude_step, shown_location


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine), enough for a check to a few metres."""
    (lat1, lon1), (lat2, lon2) = (tuple(math.radians(v) for v in p) for p in (a, b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


GARDENS = [(56.9496, 24.1052), (54.6872, 25.2797), (57.39117, 21.56104), (55.0, 26.0), (-33.86, 151.2),
           (0.0, 0.0), (89.999, 179.999), (-89.999, -180.0), (90.0, 180.0), (56.94999999, 24.10999999)]


def test_an_exact_kit_is_shown_where_it_is() -> None:
    assert shown_location(56.949612, 24.105187, "exact") == (56.949612, 24.105187)
    assert shown_location(None, None, "exact") == (None, None)


@pytest.mark.parametrize("garden", GARDENS)
def test_a_blurred_kit_is_shown_within_a_kilometre_and_a_half_but_not_where_it_is(garden: tuple[float, float]
                                                                                    ) -> None:
    lat, lon = shown_location(*garden, "blurred")
    assert lat is not None and lon is not None
    assert -90 <= lat <= 90 and -180 <= lon <= 180
    assert distance_km(garden, (lat, lon)) < 1.5
    assert (lat, lon) != garden


def test_a_blurred_kit_is_shown_at_the_same_place_on_every_read() -> None:
    first = shown_location(56.9496, 24.1052, "blurred")
    assert all(shown_location(56.9496, 24.1052, "blurred") == first for _ in range(100))


def test_kits_in_one_cell_are_shown_at_one_place_so_moving_a_little_tells_nothing() -> None:
    # two gardens 200 m apart inside one cell, and a third across the cell's edge
    a = shown_location(56.9412, 24.1010, "blurred")
    b = shown_location(56.9421, 24.1030, "blurred")
    assert a == b
    assert shown_location(56.9512, 24.1010, "blurred") != a


def test_the_longitude_step_is_about_as_wide_as_the_latitude_step_at_riga() -> None:
    east_west = distance_km((57.0, 24.0), (57.0, 24.0 + longitude_step(57.0)))
    north_south = distance_km((57.0, 24.0), (57.0 + LATITUDE_STEP, 24.0))
    assert abs(east_west - north_south) < 0.01 and 1.0 < north_south < 1.2


def test_an_unknown_precision_is_blurred_and_half_a_location_is_not_shown() -> None:
    assert shown_location(56.9496, 24.1052, "fuzzy") == shown_location(56.9496, 24.1052, "blurred")
    assert shown_location(56.9496, None, "blurred") == (None, None)
    assert shown_location(None, 24.1052, "blurred") == (None, None)
