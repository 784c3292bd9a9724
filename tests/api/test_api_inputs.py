"""Input a teacher or a script may send by mistake: windows InfluxDB cannot hold, zones that are not
a school's, nulls in an edit, wrong types. Each is a 4xx with a sentence, never a 500 or a 502."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from api_fixtures import Api, service

from metastore.db import make_engine

__all__ = ["service"]

WINDOWS = [
    {"start": "0001-01-01", "end": "0001-01-02"},
    {"start": "1000-01-01", "end": "1000-01-02"},
    {"start": "1677-09-20", "end": "1677-09-22"},
    {"start": "1999-12-31", "end": "2000-01-01"},
    {"start": "2262-04-11", "end": "2262-04-12"},
    {"start": "2025-01-01", "end": "9999-12-31"},
    {"start": "0001-01-01T00:00:00+05:00", "end": "2025-01-01"},
    {"start": "2025-01-01", "end": "9999-12-31T23:59:59-05:00"},
]


def setup_site(service: Api) -> None:
    service.add_site("s", timezone="Europe/Riga")
    service.add_kits("s", "k1")


@pytest.mark.parametrize("window", WINDOWS)
async def test_a_window_influxdb_cannot_hold_is_a_400_with_a_sentence(service: Api, window: dict[str, str]) -> None:
    setup_site(service)
    response = await service.get("/v1/sites/s/readings", params={**window, "quantities": "temperature",
                                                                  "every": "1d"})
    assert response.status_code == 400, response.text
    assert response.json()["error"] in ("time_out_of_range", "bad_time") and "year" in response.json()["message"]


@pytest.mark.parametrize("window", WINDOWS[:3])
async def test_a_dataset_with_a_window_influxdb_cannot_hold_is_refused_not_stored(service: Api,
                                                                                 window: dict[str, str]) -> None:
    setup_site(service)
    response = await service.post("/v1/datasets", json={"title": "Old", "site": "s", "quantities": ["rain"],
                                                        "every": "1d", **window})
    assert response.status_code == 400 and "year" in response.json()["message"], response.text
    assert (await service.get("/v1/datasets")).json() == []


@pytest.mark.parametrize("zone", ["right/Europe/Riga", "posix/Europe/Riga", "localtime", "Factory", "posixrules",
                                  "Europe/Atlantis", "../etc/passwd", "/usr/share/zoneinfo/UTC", "europe/riga"])
async def test_only_real_iana_zones_are_accepted(service: Api, zone: str) -> None:
    setup_site(service)
    response = await service.get("/v1/sites/s/readings", params={"start": "2025-03-01", "end": "2025-03-02",
                                                                  "quantities": "rain", "every": "1d", "tz": zone})
    assert response.status_code == 400 and response.json()["error"] == "bad_timezone", response.text
    assert "Europe/Riga" in response.json()["message"]
    edit = await service.client.patch("/v1/sites/s", json={"timezone": zone}, headers=service.staff)
    assert edit.status_code == 400 and edit.json()["error"] == "bad_timezone"


async def test_a_real_zone_and_utc_are_accepted(service: Api) -> None:
    setup_site(service)
    for zone in ("Europe/Vilnius", "UTC", "America/Argentina/Buenos_Aires"):
        response = await service.get("/v1/sites/s/readings", params={"start": "2025-03-01", "end": "2025-03-02",
                                                                      "quantities": "rain", "tz": zone})
        assert response.status_code == 200, response.text


@pytest.mark.both_stores
async def test_null_clears_a_description_and_a_coordinate_of_a_site_and_a_kit(service: Api) -> None:
    setup_site(service)
    patch = service.client.patch
    assert (await patch("/v1/sites/s", json={"description": "roof", "latitude": 56.9},
                        headers=service.staff)).status_code == 200
    site = await patch("/v1/sites/s", json={"description": None, "latitude": None}, headers=service.staff)
    assert site.status_code == 200 and site.json()["description"] == "" and site.json()["latitude"] is None
    kit = await patch("/v1/sites/s/kits/k1", json={"description": None, "deployed_since": None},
                      headers=service.staff)
    assert kit.status_code == 200 and kit.json()["description"] == "", kit.text


@pytest.mark.parametrize(("path", "field"), [("/v1/sites/s", "title"), ("/v1/sites/s/kits/k1", "kit_type")])
async def test_null_for_a_title_or_kit_type_is_a_422_saying_to_send_one(service: Api, path: str, field: str) -> None:
    setup_site(service)
    response = await service.client.patch(path, json={field: None}, headers=service.staff)
    assert response.status_code == 422 and field in response.json()["message"], response.text


@pytest.mark.parametrize("body", [{"latitude": False}, {"longitude": True}, {"elevation_m": "12"}])
async def test_a_boolean_or_a_string_is_not_a_number(service: Api, body: dict[str, object]) -> None:
    setup_site(service)
    response = await service.client.patch("/v1/sites/s", json=body, headers=service.staff)
    assert response.status_code == 422, response.text
    assert (await service.get("/v1/sites/s")).json()["latitude"] is None


def test_the_metadata_store_is_created_0600_in_a_folder_others_cannot_enter(tmp_path: Path) -> None:
    os.umask(0o022)  # the usual one, under which SQLite would create the file 0644
    database = tmp_path / "state" / "lauks.db"
    engine = make_engine(f"sqlite:///{database}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (x)")
    engine.dispose()
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    assert stat.S_IMODE(database.parent.stat().st_mode) & 0o077 == 0
    for extra in database.parent.glob("lauks.db-*"):
        assert stat.S_IMODE(extra.stat().st_mode) == 0o600, extra.name


def test_an_existing_world_readable_store_is_made_private(tmp_path: Path) -> None:
    database = tmp_path / "lauks.db"
    database.touch(mode=0o644)
    database.chmod(0o644)
    tmp_path.chmod(0o755)
    make_engine(f"sqlite:///{database}").dispose()
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    assert stat.S_IMODE(tmp_path.stat().st_mode) & 0o007 == 0


async def test_a_method_the_path_does_not_have_is_a_405_naming_every_method_it_has(service: Api) -> None:
    setup_site(service)
    response = await service.client.put("/v1/sites/s", headers=service.staff)
    assert response.status_code == 405 and response.headers["allow"] == "GET, HEAD, PATCH, DELETE"
    assert "PATCH" in response.json()["message"]


@pytest.mark.parametrize("kits", [[""], ["K1"], ["k1", "no such"]])
async def test_a_dataset_naming_an_empty_or_malformed_kit_is_a_422_not_every_kit(service: Api,
                                                                               kits: list[str]) -> None:
    setup_site(service)
    response = await service.post("/v1/datasets", json={"title": "Rain", "site": "s", "quantities": ["rain"],
                                                        "start": "2025-04-01", "end": "2025-04-02", "kits": kits})
    assert response.status_code == 422 and "not allowed" in response.json()["message"], response.text


async def test_an_empty_kits_parameter_is_a_422_not_every_kit(service: Api) -> None:
    setup_site(service)
    response = await service.get("/v1/sites/s/readings", params={"start": "2025-03-01", "end": "2025-03-02",
                                                                  "quantities": "rain", "kits": ""})
    assert response.status_code == 422 and "kits" in response.json()["message"], response.text


@pytest.mark.both_stores
async def test_a_nul_in_a_title_or_description_is_a_400_on_every_store_and_nothing_is_kept(service: Api) -> None:
    setup_site(service)
    site = await service.client.patch("/v1/sites/s", json={"description": "roof\x00"}, headers=service.staff)
    kit = await service.post("/v1/sites/s/kits", json={"name": "k2", "description": "\x00"})
    dataset = await service.post("/v1/datasets", json={"title": "Rain\x00", "site": "s", "quantities": ["rain"],
                                                       "start": "2025-04-01", "end": "2025-04-02"})
    for response in (site, kit, dataset):
        assert response.status_code == 400 and response.json()["error"] == "bad_text", response.text
    assert (await service.get("/v1/sites/s")).json()["description"] == ""
    assert [k["name"] for k in (await service.get("/v1/sites/s/kits")).json()] == ["k1"]
    assert (await service.get("/v1/datasets")).json() == []


async def test_a_deployment_time_without_an_offset_is_a_400_saying_how_to_write_it(service: Api) -> None:
    setup_site(service)
    response = await service.client.patch("/v1/sites/s/kits/k1", json={"deployed_since": "2025-03-01T09:00:00"},
                                          headers=service.staff)
    assert response.status_code == 400 and "+02:00" in response.json()["message"], response.text


async def test_an_expiry_without_an_offset_is_the_datasets_local_time(service: Api) -> None:
    setup_site(service)  # the site is in Europe/Riga: UTC+3 in summer
    response = await service.post("/v1/datasets", json={"title": "Rain", "site": "s", "quantities": ["rain"],
                                                        "start": "2025-04-01", "end": "2025-04-02",
                                                        "expires_at": "2035-06-01T00:00:00"})
    assert response.status_code == 201, response.text
    listed = (await service.get("/v1/datasets")).json()
    assert response.json()["expires_at"] == listed[0]["expires_at"] == "2035-05-31T21:00:00Z"
