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
    assert preview["columns"] == ["time", "k1.temperature", "k1.rain", "k2.temperature", "k2.rain"]
    assert preview["rows"][0][1:] == [0.5, 1.0, 0.5, 1.0]  # mean of 0 and 1; rain sums two halves


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
    assert sorted(archive.namelist()) == ["README.md", "datapackage.json", "k1.csv", "k2.csv"]
    package = json.loads(archive.read("datapackage.json"))
    assert package["licenses"] == [{"name": "CC-BY-4.0"}] and "Spring rain" in package["citation"]
    fields = {f["name"]: f for f in package["resources"][0]["schema"]["fields"]}
    assert fields["rain"]["unit"] == "mm" and fields["temperature"]["ucum"] == "Cel"
    assert "GROUP BY time(3600s)" in package["resources"][0]["lauks"]["influxql"][0]
    rows = list(csv.DictReader(io.StringIO(archive.read("k1.csv").decode())))
    assert list(rows[0]) == ["time", "temperature", "rain"] and len(rows) == 21  # Riga day: 21:00Z start
    assert rows[0]["time"] == "2025-04-01T03:00:00+03:00"
    assert "rain" in archive.read("README.md").decode()


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
