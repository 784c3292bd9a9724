"""The API serves releases to kits (public, only what a manifest lists) and tells staff how each kit's update went."""

from __future__ import annotations

import hashlib
import json
import time

import pytest
from fleet_helpers import Api

from firmware.device_path import DEVICE_DIR
from lauks import fleet, schema
from lauks.contract import decode_status
from lauks.influx import InfluxClient

pytestmark = pytest.mark.services


@pytest.fixture
def release(api: Api) -> dict[str, object]:
    folder = fleet.build_release(DEVICE_DIR, api.settings.state_dir / fleet.RELEASES_DIR, "1.4.0")
    return fleet.read_manifest(folder)


async def test_a_kit_gets_the_manifest_byte_for_byte_and_every_file_it_lists(api: Api, release: dict) -> None:
    response = await api.client.get("/v1/firmware/1.4.0/manifest.json")  # no token: kits have none
    assert response.status_code == 200
    stored = (api.settings.state_dir / "releases/1.4.0/manifest.json").read_bytes()
    assert response.content == stored and response.headers["content-length"] == str(len(stored))
    for entry in release["files"]:
        got = await api.client.get(f"/v1/firmware/1.4.0/files/{entry['path']}")
        assert got.status_code == 200, entry
        assert hashlib.sha256(got.content).hexdigest() == entry["sha256"]
        assert got.headers["content-length"] == str(entry["size"])


@pytest.mark.parametrize("path", ["/v1/firmware/9.9.9/manifest.json", "/v1/firmware/1.4.0/files/lauks_kit/nope.mpy",
                                  "/v1/firmware/1.4.0/files/..%2F..%2Fbroker%2Fusers.json",
                                  "/v1/firmware/1.4.0/files/lauks_kit/app.py",  # the source of an mpy release
                                  "/v1/firmware/..%2Fbroker/manifest.json"])
async def test_an_unknown_version_or_path_is_404_and_nothing_outside_a_release_is_served(
        api: Api, release: dict, path: str) -> None:
    (api.settings.state_dir / "broker").mkdir(exist_ok=True)
    (api.settings.state_dir / "broker/users.json").write_text("{}")
    response = await api.client.get(path)
    assert response.status_code == 404
    assert response.json()["error"].startswith(("unknown_", "http_404"))  # no route, or no such release file


async def test_staff_see_the_releases_and_others_do_not(api: Api, release: dict) -> None:
    assert (await api.client.get("/v1/firmware")).status_code == 401
    listed = (await api.client.get("/v1/firmware", headers=api.staff)).json()
    assert listed == [{"version": "1.4.0", "format": "mpy", "files": len(release["files"]),
                       "bytes": sum(e["size"] for e in release["files"])}]


async def test_staff_see_each_kits_offer_and_how_its_update_ended(api: Api, influx: InfluxClient,
                                                                   database: str) -> None:
    fleet.record_offers(api.settings.state_dir, "school-1", ["kit-01", "kit-02"], "1.4.0")
    status = decode_status(json.dumps({"v": 1, "state": "online", "fw": "1.3.0", "update": {
        "version": "1.4.0", "state": "rolled_back", "reason": "no confirmed reading within 3 boots"}}).encode())
    now_ms = int(time.time() * 1000)
    await influx.write(database, [schema.status_line("school-1", "kit-01", status, now_ms),
                                  schema.seen_line("school-1", "kit-01", now_ms, samples=1, late=0, boot=1,
                                                   fw="1.3.0")])
    assert (await api.client.get("/v1/firmware/kits")).status_code == 401
    got = {k["kit"]: k for k in (await api.client.get("/v1/firmware/kits?site=school-1", headers=api.staff)).json()}
    assert got["kit-01"]["fw"] == "1.3.0" and got["kit-01"]["offered"] == "1.4.0"
    assert (got["kit-01"]["update_state"], got["kit-01"]["update_reason"]) == (
        "rolled_back", "no confirmed reading within 3 boots")
    assert got["kit-02"]["offered"] == "1.4.0" and got["kit-02"]["update_state"] is None


@pytest.mark.parametrize("site", ["nowhere", "", "bad\rname", "x\x00y", "школа"])
async def test_an_unknown_or_unquotable_site_is_a_404_with_the_reason(api: Api, site: str) -> None:
    """Schemathesis found `?site=` with a carriage return reaching the store's query as a 500."""
    response = await api.client.get("/v1/firmware/kits", params={"site": site}, headers=api.staff)
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "unknown_site" and "/v1/sites" in response.json()["message"]
    known = await api.client.get("/v1/firmware/kits", params={"site": "school-1"}, headers=api.staff)
    assert known.status_code == 200
