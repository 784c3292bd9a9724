"""Quality flags through the readings API: worked out when read, from readings written the gateway's way
(with its ingest facts late_s and from_age), on a real InfluxDB."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq
import pytest
from api_fixtures import Api, service

from api import source
from gateway import rollups as gateway_rollups
from lauks import lineprotocol, rollups, schema

__all__ = ["service"]

T0 = datetime(2025, 3, 1, 0, 0, tzinfo=UTC)
MINUTES = 180
SPIKE_AT = 60  # k1's temperature jumps 15 °C for one reading
LATE_AT = 20  # k1's reading arrived 400 s late (backfilled); the next one 100 s late (not)
AGE_AT = 30  # k1's reading dated from 'age'
LOW_AT = 100  # k1's battery reads 3.1 V: this reading and those of the next hour are battery_low...
GOOD_AT = 130  # ...until it reads 3.9 V again


def _point(kit: str, minute: int, **fields: float | int) -> str:
    return lineprotocol.line(schema.READINGS, {schema.SITE: "s1", schema.KIT: kit}, fields,
                             int((T0 + timedelta(minutes=minute)).timestamp() * 1000))


def _honest(minute: int) -> float:
    return round(10 + (minute % 7) * 0.05, 2)  # varies a little, never stuck, never fast


async def seed(service: Api) -> None:
    """k1: honest temperatures with one of each flag; k2: a temperature stuck at 5.0 for three hours."""
    service.add_site("s1")
    service.add_kits("s1", "k1", "k2")
    lines = []
    for m in range(MINUTES):
        fields: dict[str, float | int] = {"temperature": _honest(m) + (15 if m == SPIKE_AT else 0)}
        if m == LATE_AT:
            fields[schema.LATE_S] = 400
        if m == LATE_AT + 1:
            fields[schema.LATE_S] = 100
        if m == AGE_AT:
            fields[schema.FROM_AGE] = 1
        if m == LOW_AT:
            fields[schema.BATTERY] = 3.1
        if m == GOOD_AT:
            fields[schema.BATTERY] = 3.9
        lines.append(_point("k1", m, **fields))
        lines.append(_point("k2", m, temperature=5.0))
    await service.write(lines)


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def minute_of(row: dict[str, str]) -> int:
    return int((datetime.fromisoformat(row["time"]) - T0).total_seconds() // 60)


async def get(service: Api, **params: str) -> list[dict[str, str]]:
    response = await service.get("/v1/sites/s1/readings", params={
        "start": "2025-03-01T00:00Z", "end": "2025-03-01T03:00Z", "quantities": "temperature", **params})
    assert response.status_code == 200, response.text
    return rows_of(response.text)


async def test_each_raw_flag_is_on_the_readings_that_earn_it_and_on_no_honest_one(service: Api) -> None:
    await seed(service)
    rows = await get(service)
    k1 = {minute_of(r): r["flags"] for r in rows if r["kit"] == "k1"}
    assert len(k1) == MINUTES
    assert k1[SPIKE_AT] == "spike"
    assert k1[LATE_AT] == "backfilled" and k1[LATE_AT + 1] == ""
    assert k1[AGE_AT] == "clock_estimated"
    # its own battery, then the last battery reading within an hour before it
    assert all(k1[m] == "battery_low" for m in range(LOW_AT, GOOD_AT))
    honest = set(range(MINUTES)) - {SPIKE_AT, LATE_AT, AGE_AT, *range(LOW_AT, GOOD_AT)}
    assert {k1[m] for m in honest} == {""}
    assert {r["flags"] for r in rows if r["kit"] == "k2"} == {"stuck"}


async def test_flags_of_one_reading_are_joined_by_semicolons(service: Api) -> None:
    service.add_site("s1")
    service.add_kits("s1", "k1")
    await service.write([_point("k1", m, temperature=_honest(m), **({schema.LATE_S: 900, schema.BATTERY: 3.0}
                                                                     if m == 5 else {})) for m in range(10)])
    rows = await get(service)
    assert [r["flags"] for r in rows if minute_of(r) == 5] == ["battery_low;backfilled"]


async def test_exclude_leaves_flagged_values_out_and_only_keeps_just_them(service: Api) -> None:
    await seed(service)
    every = await get(service)
    kept = await get(service, flags="exclude")
    flagged = await get(service, flags="only")
    assert kept and all(r["flags"] == "" for r in kept)
    assert flagged and all(r["flags"] != "" for r in flagged)
    assert len(kept) + len(flagged) == len(every)
    assert not any(r["kit"] == "k2" for r in kept)
    assert {minute_of(r) for r in flagged if r["kit"] == "k1"} == {SPIKE_AT, LATE_AT, AGE_AT, *range(LOW_AT, GOOD_AT)}


async def test_the_wide_layout_has_one_flags_column_naming_each_flagged_column(service: Api) -> None:
    await seed(service)
    rows = await get(service, layout="wide")
    assert list(rows[0]) == ["time", "k1.temperature", "k2.temperature", "flags"]
    by_minute = {minute_of(r): r["flags"] for r in rows}
    assert by_minute[SPIKE_AT] == "k1.temperature:spike k2.temperature:stuck"
    assert by_minute[LOW_AT] == "k1.temperature:battery_low k2.temperature:stuck"


async def test_a_value_with_two_flags_in_the_wide_layout_joins_them_with_a_plus(service: Api) -> None:
    service.add_site("s1")
    service.add_kits("s1", "k1")
    await service.write([_point("k1", m, temperature=_honest(m), **({schema.FROM_AGE: 1, schema.BATTERY: 3.0}
                                                                     if m == 5 else {})) for m in range(10)])
    rows = await get(service, layout="wide")
    assert [r["flags"] for r in rows if minute_of(r) == 5] == ["k1.temperature:battery_low+clock_estimated"]


async def test_json_and_parquet_carry_the_same_flags_as_the_csv(service: Api) -> None:
    await seed(service)
    as_csv = [r["flags"] for r in await get(service)]
    params = {"start": "2025-03-01T00:00Z", "end": "2025-03-01T03:00Z", "quantities": "temperature"}
    as_json = (await service.get("/v1/sites/s1/readings", params={**params, "format": "json"})).json()
    assert [r["flags"] for r in as_json["data"]] == as_csv
    assert as_json["meta"]["flags"] == "include"
    response = await service.get("/v1/sites/s1/readings", params={**params, "format": "parquet"})
    table = pq.read_table(io.BytesIO(response.content))
    assert table.column("flags").to_pylist() == as_csv


async def test_an_hourly_bucket_of_one_repeated_value_is_stuck(service: Api) -> None:
    await seed(service)
    rows = await get(service, every="1h")
    assert {r["flags"] for r in rows if r["kit"] == "k2"} == {"stuck"}
    # k1's hours: the spike's 15 °C is well within 2 °C a minute over an hour; the facts of its readings show
    k1 = {minute_of(r): r["flags"] for r in rows if r["kit"] == "k1"}
    # (a bucket is battery_low from its own battery readings: 3.1 V at minute 100; 120-179 read 3.9 V)
    assert k1 == {0: "backfilled;clock_estimated", 60: "battery_low", 120: ""}


async def test_a_five_minute_bucket_holding_the_spike_is_flagged_spike(service: Api) -> None:
    await seed(service)
    rows = await get(service, every="5m", kits="k1")
    flagged = {minute_of(r): r["flags"] for r in rows if r["flags"]}
    assert flagged[SPIKE_AT] == "spike"
    assert flagged[LATE_AT] == "backfilled" and flagged[AGE_AT] == "clock_estimated"
    assert {m for m, f in flagged.items() if "battery_low" in f} == {100}  # the bucket of the 3.1 V reading
    assert set(flagged) == {SPIKE_AT, LATE_AT, AGE_AT, LOW_AT}


async def test_exclude_in_an_aggregated_request_leaves_flagged_buckets_out(service: Api) -> None:
    await seed(service)
    rows = await get(service, every="1h", flags="exclude")
    assert [(r["kit"], minute_of(r)) for r in rows] == [("k1", 120)]


async def test_a_kit_that_only_reported_its_battery_gives_no_empty_rows(service: Api) -> None:
    service.add_site("s1")
    service.add_kits("s1", "k1")
    await service.write([_point("k1", 0, temperature=1.0), _point("k1", 1, battery=3.0),
                         _point("k1", 2, temperature=1.5)])
    rows = await get(service, layout="wide")
    assert [(minute_of(r), r["k1.temperature"], r["flags"]) for r in rows] == [
        (0, "1", ""), (2, "1.5", "k1.temperature:battery_low")]


async def test_a_wrong_flags_or_calibration_choice_says_what_to_choose(service: Api) -> None:
    await seed(service)
    params = {"start": "2025-03-01", "end": "2025-03-01", "quantities": "temperature"}
    bad = await service.get("/v1/sites/s1/readings", params={**params, "flags": "some"})
    assert bad.status_code == 400 and bad.json()["error"] == "bad_flags"
    assert "include" in bad.json()["message"] and "exclude" in bad.json()["message"]
    bad = await service.get("/v1/sites/s1/readings", params={**params, "calibration": "none"})
    assert bad.status_code == 400 and bad.json()["error"] == "bad_calibration"
    assert "applied" in bad.json()["message"] and "raw" in bad.json()["message"]


CHOICES = (("1h", "mean"), ("1h", "max"), ("3h", "count"))  # what the hourly rollup answers


async def test_rollups_give_the_same_buckets_and_flags_as_the_raw_aggregate(service: Api,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source, "KEPT", rollups.KeptCache(ttl_s=0))  # every request reads rollup_state again
    await seed(service)
    database = service.settings.influx_database
    raw = {(every, agg): await get(service, every=every, agg=agg) for every, agg in CHOICES}
    await gateway_rollups.recompute(service.influx, database, T0, T0 + timedelta(hours=3))
    await gateway_rollups.write_state(service.influx, database, datetime.now(UTC), complete_from=T0,
                                      kept_to=T0 + timedelta(hours=3))
    # a reading the rollups do not hold yet: if the answer has it not, it came from the rollups
    await service.write([_point("k1", 5, temperature=99.0)])
    rolled = {(every, agg): await get(service, every=every, agg=agg) for every, agg in CHOICES}
    assert rolled == raw
    assert {r["flags"] for r in rolled[("1h", "mean")] if r["kit"] == "k2"} == {"stuck"}


async def test_flags_joined_by_semicolons_are_quoted_in_a_decimal_comma_csv(service: Api) -> None:
    service.add_site("s1")
    service.add_kits("s1", "k1")
    await service.write([_point("k1", m, temperature=_honest(m), **({schema.LATE_S: 900, schema.BATTERY: 3.0}
                                                                     if m == 5 else {})) for m in range(10)])
    for params in ({"decimal": "comma"}, {"decimal": "comma", "quantities": "temperature,battery"}):
        response = await service.get("/v1/sites/s1/readings", params={
            "start": "2025-03-01T00:00Z", "end": "2025-03-01T03:00Z", "quantities": "temperature", **params})
        rows = list(csv.DictReader(io.StringIO(response.text), delimiter=";"))
        assert [r["flags"] for r in rows if r["quantity"] == "temperature" and minute_of(r) == 5] == [
            "battery_low;backfilled"]
        assert all(None not in r for r in rows)  # no row has more cells than the header
