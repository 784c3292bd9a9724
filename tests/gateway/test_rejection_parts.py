"""The parts of every rejection (field, value, bound, sample) reach InfluxDB beside the English sentence, so the
web app can say it in the reader's language: through the gateway's core into a real InfluxDB, and end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from gateway_helpers import running, settings, wait_for_count

from gateway.core import Ingest, KitLimits
from gateway.dedup import Dedup
from harness.publisher import Publisher
from lauks import schema
from lauks.contract import EARLIEST_TIME_S, MAX_FUTURE_S, MAX_PAYLOAD_BYTES
from lauks.influx import InfluxClient
from lauks.services import Influxd, Mosquitto
from lauks.topics import Topics

NOW = 1_780_000_000.0
PARTS = f'"{schema.REASON}", "{schema.DETAIL}", "{schema.FIELD_NAME}", "{schema.BAD_VALUE}", "{schema.BOUND}", ' \
        f'"{schema.SAMPLE_INDEX}", "{schema.COUNT}"'


def body(kit: str, seq: int, *samples: dict[str, Any], **extra: Any) -> bytes:
    return json.dumps({"v": 1, "kit": kit, "boot": 1, "seq": seq, **extra, "samples": list(samples)}).encode()


async def stored_rejections(influx: InfluxClient, database: str, kit: str) -> list[dict[str, Any]]:
    rows = await influx.query_rows(f"SELECT {PARTS} FROM {schema.REJECTIONS} WHERE kit = '{kit}' ORDER BY time",
                                   database=database)
    return [{key: row.get(key) for key in ("reason", "detail", "field_name", "bad_value", "bound", "sample_index",
                                           "count")} for row in rows]


async def test_each_kind_of_rejection_is_stored_with_its_parts(influx: InfluxClient, database: str) -> None:
    topics = Topics("lauks")
    core = Ingest(topics, Dedup(None, window=64, fsync=False), limits=KitLimits(per_s=1.0, burst=1))
    lines: list[str] = []
    fields = body("k1", 1, {"age": 0, "humidity": 140.5, "temperature": -80, "temprature": 20},
                  {"age": 0, "pressure": "abc", "co2": True}, {"t": NOW + 3600, "temperature": 20},
                  {"t": 1_000_000, "temperature": 20})
    lines += core.message(topics.readings("s", "k1"), fields, NOW).lines
    big = body("k2", 1, {"age": 0, "temperature": 20}, pad="x" * MAX_PAYLOAD_BYTES)
    lines += core.message(topics.readings("s", "k2"), big, NOW).lines
    # k3 has a burst of one message: its second within the same second is limited
    lines += core.message(topics.readings("s", "k3"), body("k3", 1, {"age": 0, "temperature": 20}), NOW).lines
    limited = core.message(topics.readings("s", "k3"), body("k3", 2, {"age": 0, "temperature": 20}), NOW)
    lines += limited.lines
    await influx.write(database, lines, precision="ms")

    def row(reason: str, detail: str, field_name: str | None, bad_value: str | None, bound: float | None,
            sample_index: int | None, count: int = 1) -> dict[str, Any]:
        return {"reason": reason, "detail": detail, "field_name": field_name, "bad_value": bad_value, "bound": bound,
                "sample_index": sample_index, "count": count}

    assert await stored_rejections(influx, database, "k1") == [
        row("out_of_range", "humidity 140.5 % is above 100 %", "humidity", "140.5", 100.0, 0),
        row("out_of_range", "temperature -80 °C is below -60 °C", "temperature", "-80", -60.0, 0),
        row("unknown_quantity", "'temprature' is not a quantity Lauks knows: did you mean temperature?",
            "temprature", None, None, 0),
        row("not_a_number", "pressure 'abc' is not a number", "pressure", '"abc"', None, 1),
        row("not_a_number", "co2 True is not a number", "co2", "true", None, 1),
        row("time_in_future", "sample 2 is 3600 s in the future: the kit's clock is wrong", "t",
            f"{NOW + 3600}", float(MAX_FUTURE_S), 2),
        row("time_too_old", "sample 3 is dated before 2020-01-01: the kit's clock is not set, send 'age' instead "
            "of 't'", "t", "1000000", float(EARLIEST_TIME_S), 3),
    ]
    assert await stored_rejections(influx, database, "k2") == [
        row("too_large", f"the message is {len(big)} bytes, more than the {MAX_PAYLOAD_BYTES} allowed: send fewer "
            "samples in each message", None, str(len(big)), float(MAX_PAYLOAD_BYTES), None)]
    assert await stored_rejections(influx, database, "k3") == [
        row("rate_limited", limited.rejections[0].message, None, "1", 1.0, None)]
    assert "this kit sends more than its share, 1 messages" in limited.rejections[0].message


HOSTILE = ['say "hi"', "back\\slash", "ends with a backslash\\", '\\"', "new\nline", "carriage\rreturn",
           "tab\there", "ünïcødé ž š ą ė", "comma, space = equals", "x" * 300, "\\" * 70, '"' * 70]


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
async def test_hostile_text_in_the_parts_is_stored_exactly(influx: InfluxClient, database: str, value: str) -> None:
    """Line protocol's escaping of text fields, against InfluxDB's own parser: what a kit sends as a quantity's
    value, or as a key, comes back from the store character for character (the bad value cut to 64)."""
    detail = f"pressure {value!r} is not a number"
    point = schema.rejection_line("s", "k", "not_a_number", detail, 1000, field_name=value, bad_value=value,
                                  sample_index=0)
    await influx.write(database, [point], precision="ms")
    (stored,) = await stored_rejections(influx, database, "k")
    expected_value = json.dumps(value, ensure_ascii=False)
    if len(expected_value) > schema.BAD_VALUE_MAX_CHARS:
        expected_value = expected_value[:schema.BAD_VALUE_MAX_CHARS - 1] + "…"
    assert stored["field_name"] == value and stored["detail"] == detail
    assert stored["bad_value"] == expected_value and len(stored["bad_value"]) <= schema.BAD_VALUE_MAX_CHARS


async def test_the_running_gateway_stores_the_parts_of_a_rejected_field(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, influx: InfluxClient, database: str,
        topics: Topics) -> None:
    config = settings(tmp_path, mosquitto.port, influxd.url, database, topics)
    async with running(config):
        publisher = Publisher(mosquitto.port)
        publisher.publish(topics.readings("s1", "k9"), body("k9", 1, {"age": 0, "temperature": 20},
                                                            {"age": 0, "humidity": -3}))
        publisher.wait_acked(1)
        found = await wait_for_count(influx, database, f'SELECT count("{schema.COUNT}") FROM rejections', 1)
        publisher.close()
    assert found == 1
    assert await stored_rejections(influx, database, "k9") == [
        {"reason": "out_of_range", "detail": "humidity -3 % is below 0 %", "field_name": "humidity",
         "bad_value": "-3", "bound": 0.0, "sample_index": 1, "count": 1}]
