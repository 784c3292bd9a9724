"""Keys, offers and the staged rollout's choice of kits: pure logic, no broker."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from firmware.device_path import DEVICE_DIR
from lauks import fleet
from lauks.fleet import FleetError

MASTER = bytes(range(32))


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fleet.build_release(DEVICE_DIR, tmp_path_factory.mktemp("releases"), "1.4.0", "py")


def test_a_kits_update_key_is_hmac_sha256_of_its_name_under_the_master_key() -> None:
    # the value `openssl dgst -sha256 -mac HMAC -macopt hexkey:0001..1f` gives for "lauks-update-key:school-1/kit-01"
    assert fleet.kit_update_key(MASTER, "school-1", "kit-01").hex() == (
        "afd1837b8d246e012d62cd5b2d1ef013d584f553567cabb035e6fce02c1e3f6d")
    assert fleet.kit_update_key(MASTER, "school-1", "kit-02") != fleet.kit_update_key(MASTER, "school-1", "kit-01")


def test_an_offer_carries_the_manifests_sha256_and_an_hmac_under_the_kits_key(release: Path) -> None:
    key = fleet.kit_update_key(MASTER, "school-1", "kit-01")
    payload = fleet.offer_payload(release, "1.4.0", "http://10.0.0.5:8000/v1/firmware/1.4.0/", key)
    assert len(payload) <= fleet.MAX_OFFER_BYTES
    offer = json.loads(payload)
    assert set(offer) == {"v", "version", "url", "manifest_sha256", "hmac"}
    assert offer["manifest_sha256"] == hashlib.sha256((release / fleet.MANIFEST).read_bytes()).hexdigest()
    assert fleet.check_offer(payload, key)["version"] == "1.4.0"


def test_an_offer_does_not_verify_under_another_kits_key_or_once_altered(release: Path) -> None:
    key = fleet.kit_update_key(MASTER, "school-1", "kit-01")
    payload = fleet.offer_payload(release, "1.4.0", "http://10.0.0.5:8000/v1/firmware/1.4.0/", key)
    with pytest.raises(FleetError, match="signature does not match"):
        fleet.check_offer(payload, fleet.kit_update_key(MASTER, "school-1", "kit-02"))
    altered = payload.replace(b"10.0.0.5", b"10.0.0.6")
    with pytest.raises(FleetError, match="signature does not match"):
        fleet.check_offer(altered, key)


def test_a_tampered_release_is_never_offered(tmp_path: Path) -> None:
    release = fleet.build_release(DEVICE_DIR, tmp_path, "1.5.0", "py")
    (release / fleet.FILES / "lauks_kit/app.py").write_text("import os\nos.remove('/config.json')\n")
    with pytest.raises(FleetError, match="does not match its SHA-256"):
        fleet.offer_payload(release, "1.5.0", "http://h/v1/firmware/1.5.0/", b"k" * 32)


def test_an_offer_too_long_for_a_kit_is_refused(release: Path) -> None:
    with pytest.raises(FleetError, match="more than a kit takes"):
        fleet.offer_payload(release, "1.4.0", "http://" + "h" * 400 + "/v1/firmware/1.4.0/", b"k" * 32)


KITS = [f"kit-{i:02d}" for i in range(20)]


def test_ten_percent_of_twenty_kits_is_two_and_the_same_two_every_time() -> None:
    chosen = fleet.choose_kits("school-1", KITS, "1.4.0", 10)
    assert len(chosen) == 2
    assert fleet.choose_kits("school-1", list(reversed(KITS)), "1.4.0", 10) == chosen
    ranked = sorted(KITS, key=lambda kit: hashlib.sha256(f"school-1/{kit}/1.4.0".encode()).hexdigest())
    assert chosen == sorted(ranked[:2])


def test_a_part_of_a_kit_rounds_up_and_a_hundred_percent_is_everyone() -> None:
    assert len(fleet.choose_kits("school-1", KITS, "1.4.0", 1)) == 1
    assert len(fleet.choose_kits("school-1", KITS, "1.4.0", 11)) == 3
    assert fleet.choose_kits("school-1", KITS, "1.4.0", 100) == KITS


def test_a_wider_rollout_keeps_the_kits_of_the_narrower_one() -> None:
    narrow = fleet.choose_kits("school-1", KITS, "1.4.0", 10)
    assert set(narrow) < set(fleet.choose_kits("school-1", KITS, "1.4.0", 50))


@pytest.mark.parametrize("percent", [0, 150, -5, 101])
def test_a_percent_outside_one_to_a_hundred_is_refused(percent: int) -> None:
    with pytest.raises(FleetError, match=f"--percent {percent} is not allowed"):
        fleet.choose_kits("school-1", KITS, "1.4.0", percent)


def test_the_master_key_is_made_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    key = fleet.master_key(tmp_path, create=True)
    assert len(key) == 32
    assert fleet.master_key(tmp_path, create=False) == key
    path = fleet.master_key_path(tmp_path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700


def test_a_missing_master_key_is_not_made_where_creating_is_not_allowed(tmp_path: Path) -> None:
    with pytest.raises(FleetError, match="no update master key"):
        fleet.master_key(tmp_path, create=False)
    assert not fleet.master_key_path(tmp_path).exists()


def test_a_master_key_that_is_not_64_hex_digits_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FleetError, match="64 hex digits"):
        fleet.master_key(tmp_path, create=True, given="lauks-dev")
    fleet.master_key_path(tmp_path).parent.mkdir(parents=True)
    fleet.master_key_path(tmp_path).write_text("abc\n")
    with pytest.raises(FleetError, match="64 hex digits"):
        fleet.master_key(tmp_path, create=True)
    assert fleet.master_key(tmp_path, create=False, given="ab" * 32) == bytes([0xAB]) * 32


def test_offers_are_recorded_and_the_last_one_per_kit_wins(tmp_path: Path) -> None:
    fleet.record_offers(tmp_path, "school-1", ["kit-01", "kit-02"], "1.4.0")
    fleet.record_offers(tmp_path, "school-1", ["kit-01"], "1.5.0")
    last = fleet.last_offers(tmp_path)
    assert last[("school-1", "kit-01")]["version"] == "1.5.0"
    assert last[("school-1", "kit-02")]["version"] == "1.4.0"
    assert len(fleet.read_offers(tmp_path)) == 3
