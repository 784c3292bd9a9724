"""What a class dataset's files look like: aggregates rounded to each quantity's resolution, the zip's CSVs with
a decimal comma and a byte order mark when asked, one file name for one window, rolling datasets that stay live,
and the datasets of one teacher."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow.parquet as pq
import pytest
from api_fixtures import Api, point, service

from api import dataset as datasets
from api.routers.datasets import frozen_files
from metastore import registry
from metastore.db import Dataset

__all__ = ["service"]
pytestmark = pytest.mark.both_stores

T0 = datetime(2025, 4, 1, tzinfo=UTC)
# three readings in one hour: their mean is 12.646666666666667, shown as 12.65 (temperature's step is 0.01 °C)
TEMPERATURES = (12.5, 12.67, 12.77)


def has_site(service: Api, name: str) -> bool:
    with service.session() as session:
        return any(site.name == name for site in registry.list_sites(session))


async def publish(service: Api, **overrides: Any) -> dict[str, Any]:
    """A dataset of site school; the site, its kit and readings are made by the first call of a test."""
    if not has_site(service, "school"):
        service.add_site("school", timezone="Europe/Riga")
        service.add_kits("school", "k1")
        await service.write([point("school", "k1", T0 + timedelta(minutes=10 * i), temperature=t, humidity=50.123 + i)
                             for i, t in enumerate(TEMPERATURES)])
    body = {"title": "Spring", "site": "school", "quantities": ["temperature", "humidity"], "start": "2025-04-01",
            "end": "2025-04-01", "every": "1h", **overrides}
    response = await service.post("/v1/datasets", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def disposition(response: Any) -> str:
    return str(response.headers["content-disposition"]).split('filename="')[1].rstrip('"')


async def test_an_aggregated_dataset_is_rounded_to_each_quantitys_resolution_in_every_format(service: Api) -> None:
    code = (await publish(service))["code"]
    tidy = list(csv.DictReader(io.StringIO((await service.client.get(f"/v1/datasets/{code}/data.csv")).text)))
    assert {r["quantity"]: r["value"] for r in tidy} == {"temperature": "12.65", "humidity": "51.1"}
    data = (await service.client.get(f"/v1/datasets/{code}/data.json")).json()["data"]
    assert {r["quantity"]: r["value"] for r in data} == {"temperature": 12.65, "humidity": 51.1}
    table = pq.read_table(io.BytesIO((await service.client.get(f"/v1/datasets/{code}/data.parquet")).content))
    assert sorted(table.column("value").to_pylist()) == [12.65, 51.1]
    archive = zipfile.ZipFile(io.BytesIO((await service.client.get(f"/v1/datasets/{code}/dataset.zip")).content))
    member = next(n for n in archive.namelist() if n.endswith("_k1.csv"))
    assert archive.read(member).decode().splitlines()[1].endswith(",12.65,51.1,")  # and no flags
    preview = (await service.client.get(f"/v1/datasets/{code}")).json()
    assert preview["rows"][0][1:] == [12.65, 51.1, ""]  # no flags


async def test_counts_stay_whole_numbers_and_raw_readings_are_as_stored(service: Api) -> None:
    counted = (await publish(service, agg="count"))["code"]
    rows = list(csv.DictReader(io.StringIO((await service.client.get(f"/v1/datasets/{counted}/data.csv")).text)))
    assert {r["value"] for r in rows} == {"3"}
    raw = (await publish(service, every=None))["code"]
    data = (await service.client.get(f"/v1/datasets/{raw}/data.json")).json()["data"]
    assert [r["value"] for r in data if r["quantity"] == "humidity"] == [50.123, 51.123, 52.123]


async def test_readings_aggregates_are_rounded_too(service: Api) -> None:
    await publish(service)
    response = await service.get("/v1/sites/school/readings", params={
        "start": "2025-04-01", "end": "2025-04-01", "quantities": "temperature", "every": "1h", "format": "json"})
    assert [r["value"] for r in response.json()["data"]] == [12.65]


async def test_the_zip_uses_a_decimal_comma_and_a_byte_order_mark_when_asked(service: Api) -> None:
    code = (await publish(service))["code"]
    response = await service.client.get(f"/v1/datasets/{code}/dataset.zip",
                                        params={"decimal_comma": "true", "bom": "true"})
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    member = next(n for n in archive.namelist() if n.endswith("_k1.csv"))
    raw = archive.read(member)
    assert raw.startswith(datasets.BOM)
    lines = raw.decode("utf-8-sig").splitlines()
    assert lines[0] == "time;temperature;humidity;flags" and lines[1].endswith(";12,65;51,1;")
    package = json.loads(archive.read("datapackage.json"))
    assert package["resources"][0]["dialect"]["delimiter"] == ";"
    assert package["resources"][0]["encoding"] == "utf-8-sig"
    plain = zipfile.ZipFile(io.BytesIO((await service.client.get(f"/v1/datasets/{code}/dataset.zip")).content))
    assert not plain.read(member).startswith(datasets.BOM) and b",12.65," in plain.read(member)


async def test_data_csv_starts_with_a_byte_order_mark_only_when_asked(service: Api) -> None:
    code = (await publish(service))["code"]
    plain = (await service.client.get(f"/v1/datasets/{code}/data.csv")).content
    marked = (await service.client.get(f"/v1/datasets/{code}/data.csv", params={"bom": "true"})).content
    comma = (await service.client.get(f"/v1/datasets/{code}/data.csv", params={"decimal_comma": "true",
                                                                               "bom": "true"})).content
    assert not plain.startswith(datasets.BOM) and marked == datasets.BOM + plain
    assert comma.startswith(datasets.BOM) and b";12,65;" in comma


async def test_every_option_is_its_own_kept_file_and_all_go_with_the_dataset(service: Api) -> None:
    code = (await publish(service))["code"]
    for params in ({}, {"bom": "true"}, {"decimal_comma": "true"}, {"decimal_comma": "true", "bom": "true"}):
        await service.client.get(f"/v1/datasets/{code}/data.csv", params=params)
        await service.client.get(f"/v1/datasets/{code}/dataset.zip", params=params)
    stored = code.replace("-", "")
    kept = sorted(p.name for p in service.settings.datasets_dir.iterdir() if not p.name.startswith("."))
    assert kept == sorted(f"{stored}{s}.{f}" for s in ("", "-bom", "-comma", "-comma-bom") for f in ("csv", "zip"))
    assert {p.name for p in frozen_files(service.settings.datasets_dir, stored)} >= set(kept)
    again = (await service.client.get(f"/v1/datasets/{code}/data.csv", params={"bom": "true"})).content
    assert again.startswith(datasets.BOM)  # served from its own kept file, not the plain one
    assert (await service.client.delete(f"/v1/datasets/{code}", headers=service.staff)).status_code == 204
    assert frozen_files(service.settings.datasets_dir, stored) == []


async def test_data_csv_the_zip_and_the_csvs_inside_share_one_file_name(service: Api) -> None:
    code = (await publish(service))["code"]
    csv_name = disposition(await service.client.get(f"/v1/datasets/{code}/data.csv"))
    zipped = await service.client.get(f"/v1/datasets/{code}/dataset.zip")
    stem = f"lauks_school_{code}_2025-04-01_2025-04-01"
    assert csv_name == f"{stem}.csv" and disposition(zipped) == f"{stem}.zip"
    assert f"{stem}_k1.csv" in zipfile.ZipFile(io.BytesIO(zipped.content)).namelist()


# --- rolling datasets ------------------------------------------------------------------------------


async def rolling(service: Api, days: int, **overrides: Any) -> dict[str, Any]:
    service.add_site("live", timezone="Europe/Riga")
    service.add_kits("live", "k1")
    body = {"title": "This week", "site": "live", "quantities": ["temperature"], "rolling_days": days, **overrides}
    response = await service.post("/v1/datasets", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_a_rolling_dataset_holds_the_last_n_days_and_new_readings_as_they_come(service: Api) -> None:
    now = datetime.now(UTC)
    await service.write([point("live", "k1", now - timedelta(hours=h), temperature=float(h)) for h in (1, 50, 200)])
    made = await rolling(service, 7)
    assert made["rolling_days"] == 7 and made["frozen"] is False and made["created_by"] == "Test Teacher"
    end = datetime.fromisoformat(made["end"])
    assert abs(end - now) < timedelta(minutes=1)
    assert datetime.fromisoformat(made["end"]) - datetime.fromisoformat(made["start"]) == timedelta(days=7)
    code = made["code"]
    data = (await service.client.get(f"/v1/datasets/{code}/data.json")).json()["data"]
    assert sorted(r["value"] for r in data) == [1.0, 50.0]  # 200 hours ago is before the last 7 days
    await service.write([point("live", "k1", datetime.now(UTC) - timedelta(seconds=1), temperature=99.0)])
    data = (await service.client.get(f"/v1/datasets/{code}/data.json")).json()["data"]
    assert sorted(r["value"] for r in data) == [1.0, 50.0, 99.0]  # live: never frozen, nothing kept
    assert list(service.settings.datasets_dir.glob("*.json")) == []


async def test_a_rolling_window_moves_with_time(service: Api) -> None:
    code = (await rolling(service, 2))["code"]
    with service.session() as session:
        row = registry.get_dataset(session, code)
    now = datetime.now(UTC)
    start, end = datasets.window_of(row, now)
    later_start, later_end = datasets.window_of(row, now + timedelta(days=3))
    assert end - start == timedelta(days=2) and later_start - start == timedelta(days=3) == later_end - end
    assert not datasets.is_frozen(row, now + timedelta(days=1000))


@pytest.mark.parametrize(("body", "words"), [
    ({"rolling_days": 0}, "from 1 to 366"),
    ({"rolling_days": 367}, "from 1 to 366"),
    ({"rolling_days": 7, "start": "2025-04-01"}, "not both"),
    ({"rolling_days": 7, "start": "2025-04-01", "end": "2025-04-02"}, "not both"),
    ({}, "give the window"),
    ({"start": "2025-04-01"}, "give the window"),
])
async def test_a_window_given_twice_or_not_at_all_or_of_impossible_days_is_a_400_with_a_sentence(
        service: Api, body: dict[str, Any], words: str) -> None:
    service.add_site("live")
    service.add_kits("live", "k1")
    response = await service.post("/v1/datasets", json={"title": "x", "site": "live", "quantities": ["temperature"],
                                                        **body})
    assert response.status_code == 400, response.text
    assert words in response.json()["message"]


async def test_staff_change_a_rolling_datasets_days_but_not_a_fixed_windows(service: Api) -> None:
    code = (await rolling(service, 7, every="1d"))["code"]
    edited = await service.client.patch(f"/v1/datasets/{code}", json={"rolling_days": 30}, headers=service.staff)
    assert edited.status_code == 200 and edited.json()["rolling_days"] == 30
    start = datetime.fromisoformat(edited.json()["start"])
    assert start.astimezone(datasets.parse_zone("Europe/Riga")).time().hour == 0  # whole daily buckets
    too_long = await service.client.patch(f"/v1/datasets/{code}", json={"rolling_days": 400}, headers=service.staff)
    assert too_long.status_code == 400 and "from 1 to 366" in too_long.json()["message"]
    fixed = (await publish(service))["code"]
    refused = await service.client.patch(f"/v1/datasets/{fixed}", json={"rolling_days": 3}, headers=service.staff)
    assert refused.status_code == 400 and "fixed window" in refused.json()["message"]


async def test_mine_lists_only_the_datasets_of_the_callers_token(service: Api) -> None:
    ours = (await publish(service))["code"]
    with service.session() as session:
        other = registry.create_token(session, "Ms Ozola")
    theirs = await service.post("/v1/datasets", headers={"Authorization": f"Bearer {other}"}, json={
        "title": "Theirs", "site": "school", "quantities": ["temperature"], "rolling_days": 3})
    assert theirs.status_code == 201 and theirs.json()["created_by"] == "Ms Ozola"
    mine = (await service.get("/v1/datasets", params={"mine": "true"})).json()
    assert [d["code"] for d in mine] == [ours] and mine[0]["created_by"] == "Test Teacher"
    everything = (await service.get("/v1/datasets")).json()
    assert {d["code"] for d in everything} == {ours, theirs.json()["code"]}


def test_window_of_a_fixed_dataset_is_its_start_and_end() -> None:
    row = Dataset(code="X", start=T0, end=T0 + timedelta(days=1), rolling_days=None, every=None,
                  timezone="Europe/Riga")
    assert datasets.window_of(row, T0 + timedelta(days=9)) == (T0, T0 + timedelta(days=1))
