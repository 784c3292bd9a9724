"""Calibrations through the API: readers list them, only staff change them, and every refusal is JSON that
says what to do and leaves the store as it was."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from api.settings import ApiSettings
from lauks.services import Influxd
from metastore import registry, sharecode

KITS = "/v1/sites/school/kits/k1/calibrations"
BODY = {"quantity": "temperature", "offset": -0.4, "gain": 1.02, "valid_from": "2025-03-03",
        "reason": "co-location with school/ref, 1-3 March"}


@dataclass
class Api:
    client: httpx.AsyncClient
    app: FastAPI
    staff: dict[str, str]

    def stored(self) -> list[Any]:
        with self.app.state.sessions() as session:
            return registry.list_calibrations(session, "school")


async def running(tmp_path: Path, influxd: Influxd, database: str, store_url: str, **overrides: Any
                  ) -> AsyncIterator[Api]:
    options: dict[str, Any] = {"state_dir": tmp_path, "influx_url": influxd.url, "influx_database": database,
                               "api_rate_limit_per_minute": 1_000_000, "api_rate_burst": 1_000_000,
                               "api_timezone": "UTC", "api_public_read": False, "api_database_url": store_url}
    settings = ApiSettings(**{**options, **overrides})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        with app.state.sessions() as session:
            token = registry.create_token(session, "Ms Ozola")
            registry.add_site(session, "school", timezone="Europe/Riga")
            registry.add_kit(session, "school", "k1")
            registry.add_kit(session, "school", "k2")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://lauks.test") as client:
            yield Api(client, app, {"Authorization": f"Bearer {token}"})


@pytest.fixture
async def api(tmp_path: Path, influxd: Influxd, database: str, store_url: str) -> AsyncIterator[Api]:
    async for made in running(tmp_path, influxd, database, store_url):
        yield made


@pytest.mark.both_stores
async def test_staff_add_end_and_delete_a_calibration_and_the_times_are_the_sites_local_ones(api: Api) -> None:
    made = await api.client.post(KITS, json=BODY, headers=api.staff)
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["gain"], body["offset"], body["created_by"], body["ended"]) == (1.02, -0.4, "Ms Ozola", None)
    assert body["valid_from"].startswith("2025-03-02T22:00:00")  # midnight in Riga
    assert body["formula"] == "calibrated = gain × raw + offset"
    again = await api.client.post(KITS, json={**BODY, "valid_from": "2025-04-01T12:00", "gain": 1.0},
                                  headers=api.staff)
    assert again.status_code == 201 and again.json()["ended"]["id"] == body["id"]
    assert again.json()["ended"]["valid_to"].startswith("2025-04-01T09:00:00")
    listed = (await api.client.get(KITS, headers=api.staff)).json()
    assert [c["id"] for c in listed] == [body["id"], again.json()["id"]]
    ended = await api.client.patch(f"{KITS}/{again.json()['id']}", json={"valid_to": "2025-04-30"},
                                   headers=api.staff)
    assert ended.status_code == 200 and ended.json()["valid_to"].startswith("2025-04-30T21:00:00")  # day included
    fixed = await api.client.patch(f"{KITS}/{body['id']}", json={"reason": "co-location, corrected"},
                                   headers=api.staff)
    assert fixed.json()["reason"] == "co-location, corrected" and fixed.json()["valid_to"] is not None
    gone = await api.client.delete(f"{KITS}/{body['id']}", headers=api.staff)
    assert gone.status_code == 204
    assert [c.id for c in api.stored()] == [again.json()["id"]]


async def test_without_a_staff_token_nobody_changes_a_calibration_and_a_class_code_is_no_token(api: Api) -> None:
    made = (await api.client.post(KITS, json=BODY, headers=api.staff)).json()
    before = api.stored()
    with api.app.state.sessions() as session:
        dataset = registry.add_dataset(session, title="Spring", site="school", kits=["k1"], quantities=["temperature"],
                                       start=before[0].valid_from, end=before[0].created_at, timezone="Europe/Riga")
    code = {"Authorization": f"Bearer {sharecode.display(dataset.code)}"}
    for headers in ({}, code, {"Authorization": "Bearer lauks_made_up"}):
        answers = [await api.client.post(KITS, json={**BODY, "valid_from": "2026-01-01"}, headers=headers),
                   await api.client.patch(f"{KITS}/{made['id']}", json={"reason": "mine"}, headers=headers),
                   await api.client.delete(f"{KITS}/{made['id']}", headers=headers),
                   await api.client.get(KITS, headers=headers)]  # reading too, unless public read is on
        assert [a.status_code for a in answers] == [401, 401, 401, 401], headers
        assert answers[0].json()["error"] in ("staff_only", "bad_token") and answers[0].json()["message"]
    assert api.stored() == before


async def test_with_public_read_anybody_lists_calibrations_but_only_staff_add_them(
        tmp_path: Path, influxd: Influxd, database: str, store_url: str) -> None:
    async for api in running(tmp_path, influxd, database, store_url, api_public_read=True):
        await api.client.post(KITS, json=BODY, headers=api.staff)
        listed = await api.client.get(KITS)
        assert listed.status_code == 200 and listed.json()[0]["reason"] == BODY["reason"]
        assert (await api.client.post(KITS, json={**BODY, "valid_from": "2026-01-01"})).status_code == 401
        assert len(api.stored()) == 1


BAD: list[tuple[dict[str, Any], int, str]] = [
    ({**BODY, "gain": 0}, 400, "bad_gain"),
    ({**BODY, "gain": -1.5}, 400, "bad_gain"),
    ({**BODY, "quantity": "temprature"}, 404, "unknown_quantity"),
    ({**BODY, "valid_from": "2025-02-20", "valid_to": "2025-03-05"}, 409, "calibration_overlap"),
    ({**BODY, "valid_from": "2025-03-10", "valid_to": "2025-03-05"}, 400, "reversed_window"),
    ({**BODY, "valid_from": "3 March"}, 400, "bad_time"),
    ({**BODY, "valid_from": "1999-12-31"}, 400, "time_out_of_range"),
    ({**BODY, "gain": "1.02"}, 422, "invalid_request"),
    ({**BODY, "reason": ""}, 422, "invalid_request"),
    ({**BODY, "site": "other"}, 422, "invalid_request"),
]


async def test_a_bad_calibration_gets_a_clear_json_error_and_changes_nothing(api: Api) -> None:
    there = (await api.client.post(KITS, json={**BODY, "valid_to": "2025-03-31"}, headers=api.staff)).json()
    before = api.stored()
    for body, status, code in BAD:
        answer = await api.client.post(KITS, json=body, headers=api.staff)
        assert (answer.status_code, answer.json()["error"]) == (status, code), answer.text
        assert answer.json()["message"]
        if code == "calibration_overlap":
            assert f"calibration {there['id']} " in answer.json()["message"]
        assert api.stored() == before, body
    unknown_kit = await api.client.post("/v1/sites/school/kits/k9/calibrations", json=BODY, headers=api.staff)
    assert (unknown_kit.status_code, unknown_kit.json()["error"]) == (404, "unknown_kit")


async def test_a_calibration_is_reached_only_through_its_own_kit_and_its_gain_cannot_be_edited(api: Api) -> None:
    made = (await api.client.post(KITS, json=BODY, headers=api.staff)).json()
    before = api.stored()
    other_kit = await api.client.patch(f"/v1/sites/school/kits/k2/calibrations/{made['id']}",
                                       json={"reason": "x"}, headers=api.staff)
    assert (other_kit.status_code, other_kit.json()["error"]) == (404, "unknown_calibration")
    unknown_kit = await api.client.get("/v1/sites/school/kits/k9/calibrations", headers=api.staff)
    assert (unknown_kit.status_code, unknown_kit.json()["error"]) == (404, "unknown_kit")
    for edit in ({"gain": 2.0}, {"reason": None}):
        refused = await api.client.patch(f"{KITS}/{made['id']}", json=edit, headers=api.staff)
        assert refused.status_code == 422, edit
    reversed_ = await api.client.patch(f"{KITS}/{made['id']}", json={"valid_to": "2025-03-01"}, headers=api.staff)
    assert (reversed_.status_code, reversed_.json()["error"]) == (400, "reversed_window")
    assert api.stored() == before


async def test_the_openapi_document_describes_each_calibration_operation(api: Api) -> None:
    paths = (await api.client.get("/openapi.json")).json()["paths"]
    listing, one = paths["/v1/sites/{site}/kits/{kit}/calibrations"], paths[
        "/v1/sites/{site}/kits/{kit}/calibrations/{calibration_id}"]
    assert set(listing) == {"get", "post"} and set(one) == {"patch", "delete"}
    assert "(staff)" in listing["post"]["summary"] and {"400", "401", "404", "409"} <= set(listing["post"]["responses"])
    assert all(operation.get("summary") for operation in (*listing.values(), *one.values()))
