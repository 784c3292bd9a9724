"""A class dataset a pupil can trust and see where not to: its zip carries quality flags, the calibrations its
values used, derived quantities marked as derived, and the gaps where there is no data; every datapackage.json
it makes passes Frictionless validation."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from api_fixtures import Api, point, service
from frictionless import validate

from lauks import lineprotocol, schema
from lauks.catalog import CATALOG
from lauks.derived import DERIVED
from metastore import registry

__all__ = ["service"]

START = datetime(2025, 3, 31, 21, tzinfo=UTC)  # 2025-04-01 00:00 in Riga (UTC+3)
STEP = timedelta(minutes=10)
GAP = range(60, 72)  # k1 sends nothing from 10:00 to 11:50 Riga time: 2 h 10 min from its last reading to the next
LATE = 100  # k2's reading at 16:40 Riga time arrived 10 minutes late (backfilled)


def status(kit: str, interval_s: int) -> str:
    return lineprotocol.line(schema.KIT_STATUS, {schema.SITE: "school", schema.KIT: kit},
                             {schema.INTERVAL_S: interval_s}, int(START.timestamp() * 1000) - 60_000)


async def seed(service: Api) -> None:
    """Site school (Riga, 12 m above sea level), kits k1 and k2 reporting every 10 minutes for 2025-04-01."""
    service.add_site("school", timezone="Europe/Riga", elevation_m=12.0)
    service.add_kits("school", "k1", "k2")
    lines = [status("k1", 600), status("k2", 600)]
    for i in range(144):
        values = {"temperature": 10 + (i % 7) * 0.1, "humidity": 50.0 + i % 5, "pressure": 1000 + (i % 3) * 0.1}
        if i not in GAP:
            lines.append(point("school", "k1", START + i * STEP, **values))
        line = point("school", "k2", START + i * STEP, **values)
        lines.append(lineprotocol.with_fields(line, {schema.LATE_S: 600}) if i == LATE else line)
    await service.write(lines)


async def publish(service: Api, **overrides: Any) -> str:
    body = {"title": "Weather, 1 April", "site": "school", "quantities": ["temperature", "humidity"],
            "start": "2025-04-01", "end": "2025-04-01", **overrides}
    response = await service.post("/v1/datasets", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["code"])


async def unzip(service: Api, code: str, **params: Any) -> zipfile.ZipFile:
    response = await service.client.get(f"/v1/datasets/{code}/dataset.zip", params=params)
    assert response.status_code == 200, response.text
    return zipfile.ZipFile(io.BytesIO(response.content))


def rows(archive: zipfile.ZipFile, kit: str) -> list[dict[str, str]]:
    name = next(n for n in archive.namelist() if n.endswith(f"_{kit}.csv"))
    text = archive.read(name).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text), delimiter=";" if text.startswith("time;") else ","))


def fields_of(package: dict[str, Any], kit: str) -> dict[str, dict[str, Any]]:
    resource = next(r for r in package["resources"] if r["name"] == kit)
    return {f["name"]: f for f in resource["schema"]["fields"]}


def calibrate(service: Api, **values: Any) -> None:
    with service.session() as session:
        registry.add_calibration(session, "school", "k1", "temperature", valid_from=START, reason="co-location",
                                 created_by="Ms Ozola", **values)


def valid(archive: zipfile.ZipFile, folder: Path) -> list[str]:
    """The Frictionless errors of the unpacked zip's datapackage.json (none when it is valid)."""
    archive.extractall(folder)
    report = validate(str(folder / "datapackage.json"))
    return [f"{error.type}: {error.message}" for task in report.tasks for error in task.errors] + [
        f"{error.type}: {error.message}" for error in report.errors]


async def test_the_zip_has_gaps_csv_with_the_seeded_gap_in_the_datasets_zone(service: Api) -> None:
    await seed(service)
    archive = await unzip(service, await publish(service))
    gaps = list(csv.DictReader(io.StringIO(archive.read("gaps.csv").decode())))
    assert gaps == [{"kit": "k1", "start": "2025-04-01T09:50:00+03:00", "end": "2025-04-01T12:00:00+03:00",
                     "duration_s": "7800"}]  # k2 has none: its late reading was stored all the same
    package = json.loads(archive.read("datapackage.json"))
    resource = next(r for r in package["resources"] if r["path"] == "gaps.csv")
    assert [f["name"] for f in resource["schema"]["fields"]] == ["kit", "start", "end", "duration_s"]
    assert "3 times the kit's interval" in resource["description"]


@pytest.mark.both_stores  # the calibrations are read from the metastore: SQLite and PostgreSQL
async def test_the_calibrations_a_dataset_used_are_recorded_and_each_field_says_whether_it_is_calibrated(
        service: Api) -> None:
    await seed(service)
    calibrate(service, offset=1.0, gain=1.0)
    code = await publish(service)
    archive = await unzip(service, code)
    package = json.loads(archive.read("datapackage.json"))
    with service.session() as session:
        used = registry.calibrations_for(session, "school", ["k1", "k2"], ["temperature"], START, START + 144 * STEP)
    assert package["lauks"]["calibrations"] == [c.as_json() for c in used] and len(used) == 1
    assert package["lauks"]["calibration"] == "applied"
    k1, k2 = fields_of(package, "k1"), fields_of(package, "k2")
    assert (k1["temperature"]["calibrated"], k1["humidity"]["calibrated"]) == (True, False)
    assert k2["temperature"]["calibrated"] is False  # the calibration is k1's
    assert f"#{used[0].id}" in k1["temperature"]["description"]
    first = rows(archive, "k1")[0]
    assert (first["temperature"], first["flags"]) == ("11", "temperature:calibrated")  # 10 °C stored
    assert "co-location" in archive.read("README.md").decode()
    raw = await unzip(service, code, calibration="raw")
    package = json.loads(raw.read("datapackage.json"))
    assert package["lauks"]["calibration"] == "raw" and len(package["lauks"]["calibrations"]) == 1
    assert fields_of(package, "k1")["temperature"]["calibrated"] is False
    assert (rows(raw, "k1")[0]["temperature"], rows(raw, "k1")[0]["flags"]) == ("10", "")
    assert "not applied" in raw.read("README.md").decode()


async def test_derived_quantities_say_they_are_derived_with_their_formula_and_reference(service: Api) -> None:
    await seed(service)
    archive = await unzip(service, await publish(service, quantities=["temperature", "humidity", "dew_point"]))
    package = json.loads(archive.read("datapackage.json"))
    dew = fields_of(package, "k1")["dew_point"]
    assert dew["derived"] is True and dew["inputs"] == ["temperature", "humidity"]
    assert "derived, not measured" in dew["description"]
    assert dew["formula"] == DERIVED["dew_point"].formula and dew["reference"] == DERIVED["dew_point"].reference
    assert "derived" not in fields_of(package, "k1")["temperature"]
    first = rows(archive, "k1")[0]
    expected = DERIVED["dew_point"].compute({"temperature": 10.0, "humidity": 50.0})
    assert float(first["dew_point"]) == pytest.approx(expected, abs=DERIVED["dew_point"].resolution)  # rounded
    assert "dew_point" in archive.read("README.md").decode()


async def test_the_flags_column_is_described_and_flags_include_exclude_and_only_filter(service: Api) -> None:
    await seed(service)
    code = await publish(service)
    late = "2025-04-01T16:40:00+03:00"
    every = await unzip(service, code)
    flags = fields_of(json.loads(every.read("datapackage.json")), "k2")["flags"]
    assert flags["type"] == "string" and "quantity:flag pairs" in flags["description"]
    for name in ("stuck", "spike", "battery_low", "backfilled", "clock_estimated", "calibrated"):
        assert f"{name}: " in flags["description"], name
    row = CATALOG["temperature"]  # the threshold's source: the catalog, whatever it says today
    assert f"temperature: stuck_minutes {row.stuck_minutes:g}, max_rate {row.max_rate:g} °C/min" in flags["description"]
    assert "'temperature:stuck humidity:spike+backfilled'" in flags["description"]
    k2 = {r["time"]: r for r in rows(every, "k2")}
    assert len(k2) == 144 and k2[late]["flags"] == "temperature:backfilled humidity:backfilled"
    assert {r["flags"] for t, r in k2.items() if t != late} == {""}
    only = rows(await unzip(service, code, flags="only"), "k2")
    assert [r["time"] for r in only] == [late]
    excluded = {r["time"] for r in rows(await unzip(service, code, flags="exclude"), "k2")}
    assert late not in excluded and len(excluded) == 143
    tidy = list(csv.DictReader(io.StringIO((await service.client.get(
        f"/v1/datasets/{code}/data.csv", params={"flags": "only"})).text)))
    assert [(r["kit"], r["time"], r["flags"]) for r in tidy] == [("k2", late, "backfilled")] * 2
    data = (await service.client.get(f"/v1/datasets/{code}/data.json", params={"flags": "only"})).json()["data"]
    assert [(r["kit"], r["time"], r["flags"]) for r in data] == [("k2", late, "backfilled")] * 2
    table = pq.read_table(io.BytesIO((await service.client.get(
        f"/v1/datasets/{code}/data.parquet", params={"flags": "exclude"})).content))
    assert table.num_rows == 2 * (144 + 144 - len(GAP) - 1) and set(table.column("flags").to_pylist()) == {""}


async def test_bad_flags_or_calibration_choices_are_refused_with_a_sentence_and_nothing_is_kept(
        service: Api) -> None:
    await seed(service)
    code = await publish(service)
    for path in ("dataset.zip", "data.csv", "data.json", "data.parquet"):
        for params, word in (({"flags": "maybe"}, "flags"), ({"calibration": "cooked"}, "calibration")):
            refused = await service.client.get(f"/v1/datasets/{code}/{path}", params=params)
            message = refused.json()["message"]
            assert refused.status_code == 422 and message.startswith(f"{word}: "), (path, params, refused.text)
            assert ("'exclude' or 'only'" if word == "flags" else "'applied' or 'raw'") in message, message
    assert list(service.settings.datasets_dir.glob("*")) == []


async def test_a_frozen_dataset_keeps_a_file_per_choice_with_the_same_bytes_every_time(service: Api) -> None:
    await seed(service)
    calibrate(service, offset=0.5, gain=1.02)
    code = await publish(service)
    choices = [{}, {"flags": "only", "calibration": "raw"}, {"flags": "exclude"}]
    first = [(await service.client.get(f"/v1/datasets/{code}/dataset.zip", params=c)).content for c in choices]
    await service.write([point("school", "k1", START + 65 * STEP + timedelta(minutes=1), temperature=99.0)])
    again = [(await service.client.get(f"/v1/datasets/{code}/dataset.zip", params=c)).content for c in choices]
    assert again == first and len(set(first)) == 3
    stored = code.replace("-", "")
    kept = sorted(p.name for p in service.settings.datasets_dir.iterdir() if not p.name.startswith("."))
    assert kept == [f"{stored}-exclude.zip", f"{stored}-only-raw.zip", f"{stored}.zip"]
    gaps = zipfile.ZipFile(io.BytesIO(again[0])).read("gaps.csv").decode()
    assert "k1," in gaps  # the reading that came later is not in the kept file: its gap stays
    deleted = await service.client.delete(f"/v1/datasets/{code}", headers=service.staff)
    assert deleted.status_code == 204 and list(service.settings.datasets_dir.iterdir()) == []


VARIANTS = [
    pytest.param({}, {}, id="raw-plain"),
    pytest.param({"every": "1h"}, {"decimal_comma": "true"}, id="hourly-comma"),
    pytest.param({}, {"bom": "true", "flags": "exclude"}, id="raw-bom-exclude"),
    pytest.param({"every": "1h", "agg": "max"}, {"decimal_comma": "true", "bom": "true", "calibration": "raw"},
                 id="hourly-comma-bom-raw"),
    pytest.param({"every": "1d"}, {"flags": "only", "lang": "lv"}, id="daily-only-lv"),
    pytest.param({}, {"layout": "tidy"}, id="raw-tidy"),
    pytest.param({}, {"layout": "tidy", "decimal_comma": "true", "bom": "true"}, id="raw-tidy-comma-bom"),
    pytest.param({"every": "1h"}, {"layout": "tidy", "flags": "only"}, id="hourly-tidy-only"),
]


@pytest.mark.parametrize(("dataset", "params"), VARIANTS)
async def test_every_datapackage_a_dataset_makes_passes_frictionless_validation(
        service: Api, tmp_path: Path, dataset: dict[str, Any], params: dict[str, str]) -> None:
    await seed(service)
    calibrate(service, offset=-0.3, gain=1.01)
    # a calibrated reading that came late too: two flags, joined by ';' in a tidy row (quoted in a ';' file)
    late = point("school", "k1", START + 5 * STEP, temperature=10.5, humidity=50.0, pressure=1000.2)
    await service.write([lineprotocol.with_fields(late, {schema.LATE_S: 900})])
    quantities = ["temperature", "humidity", "dew_point", "sea_level_pressure", "temperature_daily_max",
                  "rain_daily_total"]
    archive = await unzip(service, await publish(service, quantities=quantities, **dataset), **params)
    package = json.loads(archive.read("datapackage.json"))
    assert [r["name"] for r in package["resources"]] == ["k1", "k2", "kit_gaps"]
    assert package["lauks"]["calibrations"] and package["lauks"]["derived"] == quantities[2:]
    assert valid(archive, tmp_path / "unpacked") == []
    if params.get("flags") != "exclude" and not dataset:
        texts = {r["flags"] for r in rows(archive, "k1")}
        wanted = "backfilled;calibrated" if params.get("layout") == "tidy" else \
            "temperature:backfilled+calibrated humidity:backfilled "
        assert any(text.startswith(wanted) for text in texts), texts


async def test_a_tidy_zip_has_a_row_per_value_and_describes_each_quantity_of_its_value_column(service: Api) -> None:
    await seed(service)
    calibrate(service, offset=1.0, gain=1.0)
    code = await publish(service, quantities=["temperature", "dew_point"], every="1h")
    archive = await unzip(service, code, layout="tidy")
    package = json.loads(archive.read("datapackage.json"))
    fields = fields_of(package, "k1")
    assert list(fields) == ["time", "kit", "quantity", "value", "unit", "flags"]
    assert fields["quantity"]["constraints"] == {"enum": ["temperature", "dew_point"]}
    described = fields["value"]["quantities"]
    assert described["temperature"]["calibrated"] is True and described["dew_point"]["derived"] is True
    assert "stuck;battery_low" in fields["flags"]["description"]
    first = rows(archive, "k1")[:2]
    assert [(r["kit"], r["quantity"], r["flags"]) for r in first] == [("k1", "temperature", "calibrated"),
                                                                     ("k1", "dew_point", "calibrated")]
    assert "one row per value" in archive.read("README.md").decode()
    assert (await unzip(service, code)).read("datapackage.json") != archive.read("datapackage.json")


async def test_sea_level_pressure_at_a_site_without_an_elevation_is_refused_on_publishing_and_nothing_is_kept(
        service: Api) -> None:
    service.add_site("hill", timezone="Europe/Riga")
    service.add_kits("hill", "k1")
    refused = await service.post("/v1/datasets", json={
        "title": "Pressure", "site": "hill", "quantities": ["sea_level_pressure"], "start": "2025-04-01",
        "end": "2025-04-01"})
    assert refused.status_code == 400 and refused.json()["error"] == "no_elevation", refused.text
    assert "elevation_m" in refused.json()["message"]
    assert (await service.get("/v1/datasets")).json() == []
