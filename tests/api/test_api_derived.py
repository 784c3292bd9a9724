"""Derived quantities through the readings API: worked out when read from stored inputs, selectable like
stored quantities, never stored; on a real InfluxDB."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from api_fixtures import Api, point, service

from lauks.derived import DERIVED, dew_point, sea_level_pressure
from metastore import registry

__all__ = ["service"]

T0 = datetime(2025, 3, 1, 0, 0, tzinfo=UTC)


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def weather(i: int) -> dict[str, float]:
    return {"temperature": 5 + i * 0.25, "humidity": 60 + i, "pressure": 1000 + i * 0.1}


async def seed(service: Api, **site: object) -> None:
    """k1: temperature, humidity and pressure every 10 minutes for 2 hours."""
    service.add_site("s1", **site)
    service.add_kits("s1", "k1")
    await service.write(point("s1", "k1", T0 + timedelta(minutes=10 * i), **weather(i)) for i in range(12))


async def get(service: Api, quantities: str, **params: str) -> list[dict[str, str]]:
    response = await service.get("/v1/sites/s1/readings", params={
        "start": "2025-03-01T00:00Z", "end": "2025-03-01T02:00Z", "quantities": quantities, **params})
    assert response.status_code == 200, response.text
    return rows_of(response.text)


async def test_dew_point_of_each_reading_is_the_formula_of_its_inputs(service: Api) -> None:
    await seed(service)
    rows = await get(service, "temperature,dew_point")
    dew = [r for r in rows if r["quantity"] == "dew_point"]
    assert len(dew) == 12 and {r["unit"] for r in dew} == {"°C"}
    for i, row in enumerate(dew):
        w = weather(i)
        expected = dew_point(w["temperature"], w["humidity"])
        assert expected is not None and float(row["value"]) == round(expected, DERIVED["dew_point"].decimals)
    assert not any(r["quantity"] == "humidity" for r in rows)  # an input is read, not given


async def test_a_derived_quantity_has_its_own_wide_column(service: Api) -> None:
    await seed(service)
    rows = await get(service, "dew_point,humidity", layout="wide")
    assert list(rows[0]) == ["time", "k1.dew_point", "k1.humidity", "flags"]
    assert rows[0]["k1.humidity"] == "60" and rows[0]["k1.dew_point"] != ""


async def test_sea_level_pressure_uses_the_sites_elevation(service: Api) -> None:
    await seed(service, elevation_m=120.0)
    rows = await get(service, "sea_level_pressure")
    expected = sea_level_pressure(weather(3)["pressure"], weather(3)["temperature"], 120.0)
    assert expected is not None
    assert float(rows[3]["value"]) == round(expected, DERIVED["sea_level_pressure"].decimals)
    assert float(rows[3]["value"]) > weather(3)["pressure"]


async def test_sea_level_pressure_without_an_elevation_says_why_and_how(service: Api) -> None:
    await seed(service)
    response = await service.get("/v1/sites/s1/readings", params={
        "start": "2025-03-01", "end": "2025-03-01", "quantities": "sea_level_pressure"})
    assert response.status_code == 400 and response.json()["error"] == "no_elevation"
    assert "elevation_m" in response.json()["message"]


async def test_an_aggregated_derived_quantity_is_worked_out_from_the_buckets_means(service: Api) -> None:
    await seed(service)
    rows = await get(service, "dew_point", every="1h")
    first = [weather(i) for i in range(6)]
    expected = dew_point(sum(w["temperature"] for w in first) / 6, sum(w["humidity"] for w in first) / 6)
    assert expected is not None and float(rows[0]["value"]) == round(expected, DERIVED["dew_point"].decimals)


async def test_a_sum_of_a_per_reading_derived_quantity_is_refused_with_the_choices(service: Api) -> None:
    await seed(service)
    response = await service.get("/v1/sites/s1/readings", params={
        "start": "2025-03-01", "end": "2025-03-01", "quantities": "dew_point", "every": "1h", "agg": "sum"})
    assert response.status_code == 400 and "mean" in response.json()["message"]


async def test_daily_values_are_one_per_school_day_dated_at_its_local_midnight(service: Api) -> None:
    service.add_site("s1", timezone="Europe/Riga")
    service.add_kits("s1", "k1", "k2")
    start = datetime(2025, 3, 1, 0, 0, tzinfo=UTC) - timedelta(hours=2)  # Riga's midnight (UTC+2)
    lines = []
    for h in range(48):  # two school days, hourly
        moment = start + timedelta(hours=h)
        lines.append(point("s1", "k1", moment, temperature=float(h), rain=0.2))
        lines.append(point("s1", "k2", moment, temperature=-float(h)))
    await service.write(lines)
    response = await service.get("/v1/sites/s1/readings", params={
        "start": "2025-03-01", "end": "2025-03-02",
        "quantities": "temperature_daily_max,temperature_daily_min,rain_daily_total"})
    assert response.status_code == 200, response.text
    found = {(r["time"], r["kit"], r["quantity"]): float(r["value"]) for r in rows_of(response.text)}
    assert found == {
        ("2025-03-01T00:00:00+02:00", "k1", "temperature_daily_max"): 23.0,
        ("2025-03-01T00:00:00+02:00", "k1", "temperature_daily_min"): 0.0,
        ("2025-03-01T00:00:00+02:00", "k1", "rain_daily_total"): pytest.approx(4.8),
        ("2025-03-02T00:00:00+02:00", "k1", "temperature_daily_max"): 47.0,
        ("2025-03-02T00:00:00+02:00", "k1", "temperature_daily_min"): 24.0,
        ("2025-03-02T00:00:00+02:00", "k1", "rain_daily_total"): pytest.approx(4.8),
        ("2025-03-01T00:00:00+02:00", "k2", "temperature_daily_max"): 0.0,
        ("2025-03-01T00:00:00+02:00", "k2", "temperature_daily_min"): -23.0,
        ("2025-03-02T00:00:00+02:00", "k2", "temperature_daily_max"): -24.0,
        ("2025-03-02T00:00:00+02:00", "k2", "temperature_daily_min"): -47.0,
    }


async def test_daily_values_sit_beside_the_readings_at_local_midnight(service: Api) -> None:
    service.add_site("s1", timezone="Europe/Riga")
    service.add_kits("s1", "k1")
    start = datetime(2025, 2, 28, 22, 0, tzinfo=UTC)
    await service.write(point("s1", "k1", start + timedelta(hours=h), temperature=float(h)) for h in range(24))
    response = await service.get("/v1/sites/s1/readings", params={
        "start": "2025-03-01", "end": "2025-03-01", "quantities": "temperature,temperature_daily_mean",
        "layout": "wide"})
    rows = rows_of(response.text)
    assert len(rows) == 24
    assert rows[0]["time"] == "2025-03-01T00:00:00+02:00" and rows[0]["k1.temperature"] == "0"
    assert float(rows[0]["k1.temperature_daily_mean"]) == 11.5
    assert {r["k1.temperature_daily_mean"] for r in rows[1:]} == {""}


async def test_a_calibration_applies_to_a_daily_value_too(service: Api) -> None:
    service.add_site("s1")
    service.add_kits("s1", "k1")
    await service.write(point("s1", "k1", T0 + timedelta(hours=h), temperature=float(h)) for h in range(24))
    with service.session() as session:
        registry.add_calibration(session, "s1", "k1", "temperature", offset=1.0, gain=1.0, valid_from=T0,
                                 reason="a test", created_by="Ms Ozola")
    response = await service.get("/v1/sites/s1/readings", params={
        "start": "2025-03-01", "end": "2025-03-01", "quantities": "temperature_daily_max"})
    (row,) = rows_of(response.text)
    assert float(row["value"]) == 24.0 and row["flags"] == "calibrated"


async def test_the_quantities_list_marks_derived_ones_with_inputs_formula_and_reference(service: Api) -> None:
    listed = {q["name"]: q for q in (await service.client.get("/v1/quantities")).json()}
    assert listed["temperature"]["derived"] is False
    dew = listed["dew_point"]
    assert dew["derived"] is True and dew["inputs"] == ["temperature", "humidity"]
    assert dew["formula"] and dew["reference"] and dew["minimum"] is None
    assert listed["rain_daily_total"]["daily"] == "sum"
    one = await service.client.get("/v1/quantities/sea_level_pressure")
    assert one.status_code == 200 and one.json()["inputs"][0] == "pressure"


async def test_an_unknown_quantity_is_still_a_404_with_a_hint(service: Api) -> None:
    await seed(service)
    response = await service.get("/v1/sites/s1/readings", params={
        "start": "2025-03-01", "end": "2025-03-01", "quantities": "dew_pont"})
    assert response.status_code == 404 and "dew_point" in response.json()["message"]


async def test_the_latest_values_refuse_a_derived_quantity_and_say_where_it_is(service: Api) -> None:
    await seed(service)
    response = await service.get("/v1/sites/s1/latest", params={"quantities": "dew_point"})
    assert response.status_code == 400 and response.json()["error"] == "derived_quantity"
    assert "/v1/sites/s1/readings" in response.json()["message"]
