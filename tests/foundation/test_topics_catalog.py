"""Topics of contract v1 and the catalog table."""

from __future__ import annotations

import pytest

from lauks.catalog import CATALOG, QUANTITY_NAMES, quantity
from lauks.topics import Kind, KitTopic, Topics


def test_topics_are_built_and_parsed_back() -> None:
    topics = Topics()
    topic = topics.readings("riga-school-3", "k07")
    assert topic == "lauks/v1/riga-school-3/k07/readings"
    assert topics.parse(topic) == KitTopic("riga-school-3", "k07", Kind.READINGS)


@pytest.mark.parametrize("topic", [
    "lauks/v1/site/kit", "lauks/v2/site/kit/readings", "other/v1/site/kit/readings",
    "lauks/v1/Site/kit/readings", "lauks/v1/site/kit/readings/extra", "lauks/v1/site/kit/unknown",
    "lauks/v1/-site/kit/readings", "lauks/v1/" + "a" * 33 + "/kit/readings",
])
def test_topics_outside_the_contract_parse_to_none(topic: str) -> None:
    assert Topics().parse(topic) is None


def test_bad_names_cannot_build_a_topic() -> None:
    with pytest.raises(ValueError, match="lowercase"):
        Topics().readings("Riga School", "k07")


def test_shared_filter_uses_the_share_prefix() -> None:
    assert Topics("t1").shared_filter("gw", Kind.READINGS) == "$share/gw/t1/v1/+/+/readings"


def test_catalog_rows_are_consistent() -> None:
    for name, q in CATALOG.items():
        assert q.name == name and q.minimum < q.maximum and q.ucum and q.description
    assert quantity("rain").default_agg == "sum"
    assert quantity("water_temperature").maximum == 50
    assert quantity("humidity").display(140) == "140 %"


# The catalog's quantity names in order, as released. Stored data, dashboards, exports and kits in the field
# use these names, so the catalog is only ever appended to: a new quantity goes at the end of the catalog
# and then at the end of this list, in the same change. Never remove, rename or reorder one here.
CATALOG_HISTORY = (
    "temperature", "soil_temperature", "water_temperature", "humidity", "pressure", "light",
    "uv_index", "soil_moisture", "wind_speed", "wind_gust", "wind_direction", "rain",
    "pm1", "pm2_5", "pm10", "co2", "tvoc", "noise", "battery", "rssi",
)
# The firmware's quantities in order, as released: a quantity's place in lauks_kit.core.quantities.NAMES is the
# byte a kit keeps in its flash ring, so a kit updated with samples still in flash reads them back by it.
FIRMWARE_HISTORY = CATALOG_HISTORY  # the same 20 today


def firmware_quantities() -> tuple[str, ...]:
    """The quantities the kit's firmware can send (the device code itself, not a copy)."""
    from firmware.device_path import use_device_code

    use_device_code()
    from lauks_kit.core.quantities import NAMES

    return tuple(NAMES)


def test_the_catalog_is_only_ever_appended_to() -> None:
    assert QUANTITY_NAMES[:len(CATALOG_HISTORY)] == CATALOG_HISTORY, (
        "a catalog quantity was removed, renamed or moved: add new ones at the end only")
    assert QUANTITY_NAMES == CATALOG_HISTORY, "a new quantity: add it to the end of CATALOG_HISTORY as well"


def test_every_quantity_the_firmware_can_send_is_in_the_catalog() -> None:
    unknown = [name for name in firmware_quantities() if name not in CATALOG]
    assert not unknown, f"the firmware sends quantities the gateway would reject: {unknown}"


def test_the_firmware_quantity_list_is_only_ever_appended_to() -> None:
    names = firmware_quantities()
    assert names[:len(FIRMWARE_HISTORY)] == FIRMWARE_HISTORY, (
        "a firmware quantity was removed, renamed or moved: its id in a kit's flash would change meaning")
    assert names == FIRMWARE_HISTORY, "a new firmware quantity: add it to the end of FIRMWARE_HISTORY as well"


def test_every_quantity_has_a_resolution_that_is_a_power_of_ten_with_its_decimals() -> None:
    for q in CATALOG.values():
        assert q.resolution > 0 and round(q.resolution, q.decimals) == q.resolution
        assert abs(10 ** -q.decimals - q.resolution) < 1e-12 or (q.decimals == 0 and q.resolution == 1), q.name
    assert (quantity("temperature").decimals, quantity("humidity").decimals, quantity("light").decimals,
            quantity("battery").decimals) == (2, 1, 0, 3)
