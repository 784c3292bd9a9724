"""Calibrations applied when read: value' = gain x value + offset over the calibration's window, the raw value
still reachable with calibration=raw; on a real InfluxDB and metadata store."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from api_fixtures import Api, point, service

from metastore import registry

__all__ = ["service"]

T0 = datetime(2025, 3, 1, 0, 0, tzinfo=UTC)
PARAMS = {"start": "2025-03-01T00:00Z", "end": "2025-03-01T02:00Z", "quantities": "temperature"}


async def seed(service: Api, *, calibrated_from: datetime = T0 + timedelta(hours=1),
               gain: float = 2.0, offset: float = 1.0) -> None:
    """k1 and k2 read 10.0, 10.1, ... 11.1 °C, one every 10 minutes for 2 hours; k1 is calibrated from
    ``calibrated_from`` on."""
    service.add_site("s1")
    service.add_kits("s1", "k1", "k2")
    lines = []
    for i in range(12):
        moment = T0 + timedelta(minutes=10 * i)
        lines += [point("s1", "k1", moment, temperature=10 + i / 10),
                  point("s1", "k2", moment, temperature=10.0 + i % 2 / 10)]
    await service.write(lines)
    with service.session() as session:
        registry.add_calibration(session, "s1", "k1", "temperature", offset=offset, gain=gain,
                                 valid_from=calibrated_from, reason="co-located with the school's reference",
                                 created_by="Ms Ozola")


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def get(service: Api, **params: str) -> list[dict[str, str]]:
    response = await service.get("/v1/sites/s1/readings", params={**PARAMS, **params})
    assert response.status_code == 200, response.text
    return rows_of(response.text)


def stored(i: int) -> float:
    return 10 + i / 10


async def test_a_calibration_changes_the_values_it_covers_and_flags_them_calibrated(service: Api) -> None:
    await seed(service)
    k1 = [r for r in await get(service) if r["kit"] == "k1"]
    assert [float(r["value"]) for r in k1] == [stored(i) if i < 6 else 2 * stored(i) + 1 for i in range(12)]
    assert [r["flags"] for r in k1] == [""] * 6 + ["calibrated"] * 6


async def test_another_kit_is_not_touched_by_a_kits_calibration(service: Api) -> None:
    await seed(service)
    k2 = [r for r in await get(service) if r["kit"] == "k2"]
    assert {(r["value"], r["flags"]) for r in k2} == {("10", ""), ("10.1", "")}


async def test_calibration_raw_gives_the_stored_values_with_no_calibrated_flag(service: Api) -> None:
    await seed(service)
    k1 = [r for r in await get(service, calibration="raw") if r["kit"] == "k1"]
    assert [float(r["value"]) for r in k1] == [stored(i) for i in range(12)]
    assert {r["flags"] for r in k1} == {""}


async def test_an_hourly_mean_and_sum_map_through_the_calibration(service: Api) -> None:
    await seed(service)
    means = {r["time"]: float(r["value"]) for r in await get(service, every="1h", kits="k1")}
    sums = {r["time"]: float(r["value"]) for r in await get(service, every="1h", kits="k1", agg="sum")}
    second = sum(stored(i) for i in range(6, 12))
    assert means["2025-03-01T00:00:00Z"] == round(sum(stored(i) for i in range(6)) / 6, 2)
    assert means["2025-03-01T01:00:00Z"] == round(2 * second / 6 + 1, 2)
    assert sums["2025-03-01T01:00:00Z"] == round(2 * second + 1 * 6, 2)  # gain x sum + offset x count


async def test_a_bucket_a_calibration_starts_inside_is_worked_out_from_its_readings(service: Api) -> None:
    await seed(service, calibrated_from=T0 + timedelta(minutes=30))
    rows = await get(service, every="1h", kits="k1")
    first = [stored(i) for i in range(3)] + [2 * stored(i) + 1 for i in range(3, 6)]
    assert (rows[0]["time"], float(rows[0]["value"]), rows[0]["flags"]) == (
        "2025-03-01T00:00:00Z", round(sum(first) / 6, 2), "calibrated")
    maxima = await get(service, every="1h", kits="k1", agg="max")
    assert float(maxima[0]["value"]) == round(2 * stored(5) + 1, 2)


async def test_calibrated_values_are_kept_by_flags_exclude(service: Api) -> None:
    await seed(service)
    k1 = [r for r in await get(service, flags="exclude") if r["kit"] == "k1"]
    assert len(k1) == 12 and float(k1[-1]["value"]) == 2 * stored(11) + 1


async def test_the_json_export_lists_the_calibrations_it_applied(service: Api) -> None:
    await seed(service)
    response = await service.get("/v1/sites/s1/readings", params={**PARAMS, "format": "json"})
    (used,) = response.json()["meta"]["calibrations"]
    assert used["kit"] == "k1" and used["gain"] == 2.0 and used["offset"] == 1.0
    raw = await service.get("/v1/sites/s1/readings", params={**PARAMS, "format": "json", "calibration": "raw"})
    assert raw.json()["meta"]["calibrations"] == [] and raw.json()["meta"]["calibration"] == "raw"


async def test_a_calibration_that_ended_applies_only_inside_its_window(service: Api) -> None:
    service.add_site("s1")
    service.add_kits("s1", "k1")
    await service.write([point("s1", "k1", T0 + timedelta(minutes=10 * i), temperature=1.0) for i in range(12)])
    with service.session() as session:
        registry.add_calibration(session, "s1", "k1", "temperature", offset=0.5, gain=1.0,
                                 valid_from=T0 + timedelta(minutes=20), valid_to=T0 + timedelta(minutes=40),
                                 reason="a test", created_by="Ms Ozola")
    values = [float(r["value"]) for r in await get(service)]
    assert values == [1.0, 1.0, 1.5, 1.5] + [1.0] * 8
