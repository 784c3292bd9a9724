"""Readings over a window: values, units, layouts and formats, from data written the gateway's way."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow.parquet as pq
import pytest
from api_fixtures import Api, point, service
from golden_set import Golden

from lauks.contract import decode_readings
from lauks.schema import readings_lines

__all__ = ["service"]

T0 = datetime(2025, 3, 1, 0, 0, tzinfo=UTC)


async def seed_golden(service: Api, golden: Golden) -> None:
    service.add_site(golden.site)
    service.add_kits(golden.site, golden.kit)
    for message in golden.valid:
        readings = decode_readings(message.payload, golden.site, golden.kit, golden.received_at)
        await service.write(readings_lines(golden.site, golden.kit, readings.samples))


async def seed_grid(service: Api) -> None:
    """Two kits at site s1, a sample every 10 minutes for 2 hours; a third site holds other data."""
    service.add_site("s1")
    service.add_kits("s1", "k1", "k2")
    service.add_site("other")
    service.add_kits("other", "k1")
    lines = []
    for i in range(12):
        moment = T0 + timedelta(minutes=10 * i)
        lines.append(point("s1", "k1", moment, temperature=float(i), rain=0.5))
        lines.append(point("s1", "k2", moment, temperature=100.0 - i))
        lines.append(point("other", "k1", moment, temperature=-50.0))
    await service.write(lines)


def csv_rows(text: str, delimiter: str = ",") -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text), delimiter=delimiter))


async def test_raw_tidy_csv_holds_every_golden_value_with_its_unit(service: Api, golden: Golden) -> None:
    await seed_golden(service, golden)
    response = await service.get(f"/v1/sites/{golden.site}/readings", params={
        "start": "2026-11-01", "end": "2026-11-30", "quantities": "temperature,rain,humidity"})
    assert response.status_code == 200, response.text
    rows = csv_rows(response.text)
    temperatures = [float(r["value"]) for r in rows if r["quantity"] == "temperature"]
    assert 21.5 in temperatures and -60.0 in temperatures and 70.0 in temperatures
    assert {r["unit"] for r in rows if r["quantity"] == "temperature"} == {"°C"}
    assert {r["unit"] for r in rows if r["quantity"] == "rain"} == {"mm"}
    assert {r["kit"] for r in rows} == {golden.kit}
    times = [r["time"] for r in rows]
    assert times == sorted(times) and times[0].endswith("Z")


async def test_the_csv_opens_in_pandas_with_the_same_values(service: Api) -> None:
    await seed_grid(service)
    response = await service.get("/v1/sites/s1/readings", params={
        "start": "2025-03-01", "end": "2025-03-01", "quantities": "temperature", "kits": "k1"})
    frame = pd.read_csv(io.StringIO(response.text), parse_dates=["time"])
    assert list(frame.columns) == ["time", "kit", "quantity", "value", "unit", "flags"]
    assert frame["value"].tolist() == [float(i) for i in range(12)]
    assert frame["time"].iloc[1] - frame["time"].iloc[0] == pd.Timedelta(minutes=10)


async def test_decimal_comma_csv_uses_semicolons_and_reads_back_in_pandas(service: Api) -> None:
    await seed_grid(service)
    response = await service.get("/v1/sites/s1/readings", params={
        "start": "2025-03-01", "end": "2025-03-01", "quantities": "rain", "kits": "k1", "decimal": "comma"})
    assert "0,5" in response.text and ";" in response.text.splitlines()[0]
    frame = pd.read_csv(io.StringIO(response.text), sep=";", decimal=",")
    assert frame["value"].tolist() == [0.5] * 12


async def test_another_sites_data_never_appears(service: Api) -> None:
    await seed_grid(service)
    response = await service.get("/v1/sites/s1/readings", params={
        "start": "2025-03-01", "end": "2025-03-02", "quantities": "temperature"})
    values = [float(r["value"]) for r in csv_rows(response.text)]
    assert len(values) == 24 and -50.0 not in values


async def test_wide_layout_has_a_column_per_kit_and_quantity(service: Api) -> None:
    await seed_grid(service)
    response = await service.get("/v1/sites/s1/readings", params={
        "start": "2025-03-01", "end": "2025-03-01", "quantities": "temperature,rain", "layout": "wide"})
    rows = csv_rows(response.text)
    assert list(rows[0]) == ["time", "k1.temperature", "k1.rain", "k2.temperature", "k2.rain", "flags"]
    assert len(rows) == 12
    assert rows[3]["k1.temperature"] == "3" and rows[3]["k2.temperature"] == "97" and rows[3]["k2.rain"] == ""


async def test_parquet_reads_back_with_the_same_rows_as_the_csv(service: Api) -> None:
    await seed_grid(service)
    params = {"start": "2025-03-01", "end": "2025-03-01", "quantities": "temperature,rain"}
    as_csv = pd.read_csv(io.StringIO((await service.get("/v1/sites/s1/readings", params=params)).text))
    response = await service.get("/v1/sites/s1/readings", params={**params, "format": "parquet"})
    table = pq.read_table(io.BytesIO(response.content)).to_pandas()
    assert len(table) == len(as_csv) == 36
    assert table["value"].tolist() == as_csv["value"].tolist()
    assert table["kit"].tolist() == as_csv["kit"].tolist()
    assert str(table["time"].dt.tz) == "UTC"


async def test_wide_parquet_has_nulls_where_a_kit_measured_nothing(service: Api) -> None:
    await seed_grid(service)
    response = await service.get("/v1/sites/s1/readings", params={
        "start": "2025-03-01", "end": "2025-03-01", "quantities": "temperature,rain", "layout": "wide",
        "format": "parquet"})
    table = pq.read_table(io.BytesIO(response.content)).to_pylist()
    assert len(table) == 12 and table[3]["k1.temperature"] == 3.0 and table[3]["k2.temperature"] == 97.0
    assert table[3]["k1.rain"] == 0.5 and table[3]["k2.rain"] is None


async def test_a_json_export_of_many_records_is_one_valid_document_with_each_record_once(service: Api) -> None:
    service.add_site("s1")
    service.add_kits("s1", "k1")
    await service.write([point("s1", "k1", T0 + timedelta(seconds=i), temperature=i / 10) for i in range(5_001)])
    response = await service.get("/v1/sites/s1/readings", params={
        "start": "2025-03-01", "end": "2025-03-01", "quantities": "temperature", "format": "json"})
    data = response.json()["data"]
    # 0.1 °C a second is 6 °C a minute, faster than temperature's max_rate: every step is flagged
    assert len(data) == 5_001 and data[4_000] == {"time": "2025-03-01T01:06:40Z", "kit": "k1",
                                                  "quantity": "temperature", "value": 400.0, "unit": "°C",
                                                  "flags": "spike"}


async def test_json_carries_fields_with_units_and_the_rows(service: Api) -> None:
    await seed_grid(service)
    response = await service.get("/v1/sites/s1/readings", params={
        "start": "2025-03-01", "end": "2025-03-01", "quantities": "temperature", "format": "json",
        "layout": "wide"})
    body = response.json()
    assert {"name": "k1.temperature", "unit": "°C"} in body["fields"]
    assert len(body["data"]) == 12 and body["data"][0]["k2.temperature"] == 100.0


async def test_file_name_says_site_quantities_and_dates(service: Api) -> None:
    await seed_grid(service)
    response = await service.get("/v1/sites/s1/readings", params={
        "start": "2025-03-01", "end": "2025-03-07", "quantities": "temperature,rain"})
    assert response.headers["content-disposition"] == (
        'attachment; filename="lauks_s1_temperature-rain_2025-03-01_2025-03-07.csv"')


async def test_latest_gives_each_kits_newest_value_and_unit(service: Api) -> None:
    await seed_grid(service)
    response = await service.get("/v1/sites/s1/latest", params={"quantities": "temperature,rain"})
    got = {(v["kit"], v["quantity"]): v for v in response.json()}
    assert got[("k1", "temperature")]["value"] == 11.0 and got[("k1", "temperature")]["unit"] == "°C"
    assert got[("k2", "temperature")]["value"] == 89.0
    assert ("k2", "rain") not in got
    assert got[("k1", "rain")]["time"].startswith("2025-03-01T01:50:00")


@pytest.mark.parametrize(("params", "status", "code"), [
    ({"quantities": "temprature"}, 404, "unknown_quantity"),
    ({"kits": "k9"}, 404, "unknown_kit"),
    ({"start": "2025-03-05", "end": "2025-03-01"}, 400, "reversed_window"),
    ({"start": "2024-01-01", "end": "2025-03-01"}, 400, "window_too_large"),
    ({"every": "7m"}, 400, "bad_every"),
    ({"every": "2d"}, 400, "bad_every"),
    ({"every": "1h", "agg": "average"}, 400, "bad_agg"),
    ({"agg": "mean"}, 400, "agg_needs_every"),
    ({"tz": "Mars/Olympus"}, 400, "bad_timezone"),
    ({"start": "1st of March"}, 400, "bad_time"),
])
async def test_bad_requests_get_a_4xx_with_a_message_to_act_on(service: Api, params: dict[str, str], status: int,
                                                              code: str) -> None:
    await seed_grid(service)
    base = {"start": "2025-03-01", "end": "2025-03-02", "quantities": "temperature"}
    response = await service.get("/v1/sites/s1/readings", params={**base, **params})
    assert response.status_code == status, response.text
    assert response.json()["error"] == code
    assert len(response.json()["message"]) > 20


async def test_unknown_site_is_a_404_naming_where_the_list_is(service: Api) -> None:
    response = await service.get("/v1/sites/nowhere/readings", params={"start": "2025-03-01", "end": "2025-03-02",
                                                                       "quantities": "temperature"})
    assert response.status_code == 404 and "/v1/sites" in response.json()["message"]


async def test_a_raw_window_too_large_suggests_aggregating(service: Api) -> None:
    await seed_grid(service)
    response = await service.get("/v1/sites/s1/readings", params={
        "start": "2020-01-01", "end": "2025-03-01", "quantities": "temperature"})
    assert "every=1h" in response.json()["message"]
    ok = await service.get("/v1/sites/s1/readings", params={
        "start": "2020-01-01", "end": "2025-03-02", "quantities": "temperature", "every": "1d"})
    assert ok.status_code == 200
