"""The fleet page's facts carry each kit's last over-the-air update (the alert on a failed update reads them)."""

from __future__ import annotations

from datetime import UTC, datetime

from lauks import schema
from web import fleetdata

UPDATE = next(i for i, item in enumerate(fleetdata.FACTS) if "update_state" in item.columns)


def test_the_update_statement_reads_the_last_update_state_with_its_version_and_reason() -> None:
    parts = fleetdata.statement_list(datetime(2026, 12, 2, tzinfo=UTC))
    assert f'last("{schema.UPDATE_STATE}")' in parts[UPDATE]
    assert f'"{schema.UPDATE_VERSION}"' in parts[UPDATE] and f'"{schema.UPDATE_REASON}"' in parts[UPDATE]


def test_a_rolled_back_update_is_a_failed_one_with_its_reason_and_time() -> None:
    kits: dict[tuple[str, str], fleetdata.KitFacts] = {}
    at = 1_764_633_600_000
    fleetdata.apply(kits, UPDATE, {"site": "north", "kit": "k1"},
                    [[at, "rolled_back", "1.4.0", "no confirmed reading within 3 boots"]])
    fleetdata.apply(kits, UPDATE, {"site": "north", "kit": "k2"}, [[at, "confirmed", "1.4.0", None]])
    k1, k2 = kits[("north", "k1")], kits[("north", "k2")]
    assert (k1.update_state, k1.update_version, k1.update_reason) == (
        "rolled_back", "1.4.0", "no confirmed reading within 3 boots")
    assert k1.update_time == datetime.fromtimestamp(at / 1000, UTC)
    assert k1.update_failed and not k2.update_failed and k2.update_reason is None
