"""Class datasets: a teacher publishes a selection, pupils read it with a short code and no account."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from api_fixtures import Api, point, service

from metastore import sharecode
from metastore.db import Dataset

__all__ = ["service"]
pytestmark = pytest.mark.both_stores  # every test here writes or reads the store

T0 = datetime(2025, 4, 1, tzinfo=UTC)


async def publish(service: Api, **overrides: object) -> dict[str, object]:
    service.add_site("school", timezone="Europe/Riga")
    service.add_kits("school", "k1", "k2")
    await service.write([point("school", kit, T0 + timedelta(minutes=30 * i), temperature=float(i), rain=0.5)
                         for i in range(48) for kit in ("k1", "k2")])
    body = {"title": "Spring rain", "description": "Our garden, April", "site": "school",
            "quantities": ["temperature", "rain"], "start": "2025-04-01", "end": "2025-04-01", "every": "1h",
            **overrides}
    response = await service.post("/v1/datasets", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_a_teacher_gets_a_short_code_that_is_easy_to_type(service: Api) -> None:
    made = await publish(service)
    code = str(made["code"])
    assert len(code) == 9 and code[4] == "-"
    assert set(code.replace("-", "")) <= set(sharecode.ALPHABET)
    assert made["frozen"] is True and made["kits"] == ["k1", "k2"]


async def test_pupils_read_the_preview_with_the_code_in_any_case_and_no_token(service: Api) -> None:
    code = str((await publish(service))["code"])
    typed = code.lower().replace("-", " ")
    response = await service.client.get(f"/v1/datasets/{typed}")
    assert response.status_code == 200, response.text
    preview = response.json()
    assert preview["columns"] == ["time", "k1.temperature", "k1.rain", "k2.temperature", "k2.rain", "flags"]
    assert preview["rows"][0][1:] == [0.5, 1.0, 0.5, 1.0, ""]  # mean of 0 and 1; rain sums two halves; no flags


async def test_a_mistyped_code_says_to_check_for_typos(service: Api) -> None:
    await publish(service)
    response = await service.client.get("/v1/datasets/AAAA-AAAA")
    assert response.status_code == 404 and "typos" in response.json()["message"]


async def test_an_expired_code_is_gone_and_says_to_ask_for_a_new_one(service: Api) -> None:
    made = await publish(service, expires_at=(datetime.now(UTC) + timedelta(days=1)).isoformat())
    with service.session() as session:
        row = session.get(Dataset, str(made["code"]).replace("-", ""))
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        session.commit()
    response = await service.client.get(f"/v1/datasets/{made['code']}/data.csv")
    assert response.status_code == 410 and "new one" in response.json()["message"]


async def test_the_zip_holds_a_csv_per_kit_a_datapackage_and_a_readme(service: Api) -> None:
    code = str((await publish(service))["code"])
    response = await service.client.get(f"/v1/datasets/{code}/dataset.zip")
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    stem = f"lauks_school_{code}_2025-04-01_2025-04-01"
    assert sorted(archive.namelist()) == ["README.md", "datapackage.json", "gaps.csv", f"{stem}_k1.csv",
                                          f"{stem}_k2.csv"]
    package = json.loads(archive.read("datapackage.json"))
    assert package["licenses"] == [{"name": "CC-BY-4.0"}] and "Spring rain" in package["citation"]
    fields = {f["name"]: f for f in package["resources"][0]["schema"]["fields"]}
    assert fields["rain"]["unit"] == "mm" and fields["temperature"]["ucum"] == "Cel"
    assert "GROUP BY time(3600s)" in package["resources"][0]["lauks"]["influxql"][0]
    rows = list(csv.DictReader(io.StringIO(archive.read(f"{stem}_k1.csv").decode())))
    assert list(rows[0]) == ["time", "temperature", "rain", "flags"] and len(rows) == 21  # Riga day: 21:00Z start
    assert rows[0]["time"] == "2025-04-01T03:00:00+03:00"
    assert "rain" in archive.read("README.md").decode()


@pytest.mark.parametrize(("lang", "sentence"), [
    ("lv", "Izmērījuši Lauks sensoru komplekti k1, k2 vietā school"),
    ("lt", "Išmatavo Lauks jutiklių rinkiniai k1, k2 vietoje school"),
    ("ru", "Измерено комплектами датчиков Lauks k1, k2 на площадке school"),
    ("en", "Measured by the Lauks sensor kits k1, k2 at site school"),
])
async def test_the_zips_readme_is_in_the_language_asked_for_and_the_data_is_the_same(
        service: Api, lang: str, sentence: str) -> None:
    code = str((await publish(service))["code"])
    english = zipfile.ZipFile(io.BytesIO((await service.client.get(f"/v1/datasets/{code}/dataset.zip")).content))
    answer = await service.client.get(f"/v1/datasets/{code}/dataset.zip", params={"lang": lang})
    assert answer.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    assert sentence in archive.read("README.md").decode()
    assert archive.namelist() == english.namelist()
    for name in archive.namelist():
        if name != "README.md":
            assert archive.read(name) == english.read(name)
    refused = await service.client.get(f"/v1/datasets/{code}/dataset.zip", params={"lang": "de"})
    assert refused.status_code == 422


async def test_a_frozen_dataset_gives_the_same_bytes_even_if_data_arrives_later(service: Api) -> None:
    code = str((await publish(service))["code"])
    first_zip = (await service.client.get(f"/v1/datasets/{code}/dataset.zip")).content
    first_csv = (await service.client.get(f"/v1/datasets/{code}/data.csv")).content
    await service.write([point("school", "k1", T0 + timedelta(hours=5, minutes=1), temperature=99.0)])
    assert (await service.client.get(f"/v1/datasets/{code}/dataset.zip")).content == first_zip
    assert (await service.client.get(f"/v1/datasets/{code}/data.csv")).content == first_csv
    assert b"99" not in first_csv


async def test_publishing_needs_a_staff_token(service: Api) -> None:
    response = await service.client.post("/v1/datasets", json={"title": "x"})
    assert response.status_code in (401, 422)
    response = await service.client.post("/v1/datasets", json={
        "title": "x", "site": "s", "quantities": ["rain"], "start": "2025-01-01", "end": "2025-01-02"})
    assert response.status_code == 401


# --- staff edit and delete ------------------------------------------------------------------------


def moment(text: object) -> datetime:
    return datetime.fromisoformat(str(text))


async def test_staff_edit_a_datasets_title_description_and_expiry_and_the_list_shows_it(service: Api) -> None:
    made = await publish(service)
    url = f"/v1/datasets/{made['code']}"
    edited = await service.client.patch(url, headers=service.staff, json={"title": "Spring rain, corrected"})
    assert edited.status_code == 200, edited.text
    assert (edited.json()["title"], edited.json()["description"]) == ("Spring rain, corrected", "Our garden, April")
    cleared = (await service.client.patch(url, headers=service.staff, json={"description": None})).json()
    assert cleared["description"] == "" and cleared["title"] == "Spring rain, corrected"
    # without an offset an expiry is the dataset's local time (Riga, UTC+3 in summer), as on publishing
    local = (await service.client.patch(url, headers=service.staff, json={"expires_at": "2035-06-01T00:00:00"}))
    assert local.json()["expires_at"] == "2035-05-31T21:00:00Z"
    never = (await service.client.patch(url, headers=service.staff, json={"expires_at": None})).json()
    assert never["expires_at"] is None and never["kits"] == ["k1", "k2"]
    assert moment(never["start"]) == moment(made["start"]) and moment(never["end"]) == moment(made["end"])
    listed = (await service.get("/v1/datasets")).json()
    assert [(d["code"], d["title"], d["expires_at"], moment(d["created_at"])) for d in listed] == [
        (made["code"], "Spring rain, corrected", None, moment(made["created_at"]))]
    assert (await service.client.get(url)).json()["title"] == "Spring rain, corrected"  # pupils see it too


async def test_an_expiry_in_the_past_a_null_title_and_an_unknown_field_are_refused_with_a_sentence(
        service: Api) -> None:
    made = await publish(service)
    url = f"/v1/datasets/{made['code']}"
    past = await service.client.patch(url, headers=service.staff, json={"expires_at": "2025-01-01T00:00:00Z"})
    assert past.status_code == 400 and past.json()["error"] == "expiry_in_past"
    assert "in the past" in past.json()["message"] and "null for a code that never expires" in past.json()["message"]
    for body in ({"title": None}, {"title": 7}, {"site": "other"}, {"expires_at": 0}):
        refused = await service.client.patch(url, headers=service.staff, json=body)
        assert refused.status_code == 422, (body, refused.text)
    assert (await service.client.get(url)).json()["title"] == "Spring rain"  # nothing of that was kept
    unknown = await service.client.patch("/v1/datasets/AAAA-AAAA", headers=service.staff, json={"title": "x"})
    assert unknown.status_code == 404 and "typos" in unknown.json()["message"]
    # publishing a code that has expired already was accepted before: it is the same mistake
    response = await service.post("/v1/datasets", json={"title": "Late", "site": "school", "quantities": ["rain"],
                                                        "start": "2025-04-01", "end": "2025-04-01",
                                                        "expires_at": "2025-01-01T00:00:00Z"})
    assert response.status_code == 400 and response.json()["error"] == "expiry_in_past"


async def test_extending_an_expired_dataset_brings_its_code_back(service: Api) -> None:
    made = await publish(service, expires_at=(datetime.now(UTC) + timedelta(days=1)).isoformat())
    with service.session() as session:
        session.get(Dataset, str(made["code"]).replace("-", "")).expires_at = datetime.now(UTC) - timedelta(seconds=1)
        session.commit()
    url = f"/v1/datasets/{made['code']}"
    assert (await service.client.get(url)).status_code == 410
    later = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    assert (await service.client.patch(url, headers=service.staff, json={"expires_at": later})).status_code == 200
    assert (await service.client.get(f"{url}/data.csv")).status_code == 200


async def test_a_deleted_dataset_and_its_kept_files_are_gone_for_everybody(service: Api) -> None:
    code = str((await publish(service))["code"])
    url = f"/v1/datasets/{code}"
    assert (await service.client.get(f"{url}/data.csv", params={"decimal": "comma"})).status_code == 200
    assert (await service.client.get(f"{url}/dataset.zip")).status_code == 200
    folder = service.settings.datasets_dir
    kept = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    assert kept == [f"{code.replace('-', '')}-comma.csv", f"{code.replace('-', '')}.zip"]
    deleted = await service.client.delete(url, headers=service.staff)
    assert deleted.status_code == 204 and deleted.content == b""
    assert list(folder.iterdir()) == []  # the files, their locks and any temporary file
    for path in ("", "/data.csv", "/dataset.zip"):
        gone = await service.client.get(f"{url}{path}")
        assert gone.status_code == 404 and "typos" in gone.json()["message"], path
    assert (await service.get("/v1/datasets")).json() == []
    assert (await service.client.delete(url, headers=service.staff)).status_code == 404


async def test_a_pupil_or_a_wrong_token_can_neither_edit_nor_delete_a_dataset(service: Api) -> None:
    made = await publish(service)
    url = f"/v1/datasets/{made['code']}"
    for headers in ({}, {"Authorization": "Bearer lauks_wrong"}):
        edit = await service.client.patch(url, headers=headers, json={"title": "Hacked"})
        delete = await service.client.delete(url, headers=headers)
        assert (edit.status_code, delete.status_code) == (401, 401), headers
        assert edit.headers["WWW-Authenticate"] == "Bearer"
    assert (await service.client.get(url)).json()["title"] == "Spring rain"
