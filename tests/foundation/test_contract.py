"""Contract v1 decoding: times, field-level rejection, sentences a pupil can act on."""

from __future__ import annotations

import json

import pytest

from lauks.contract import (
    KitConfig,
    MessageRejected,
    Reason,
    decode_readings,
    decode_status,
    rejected_notice,
)

NOW = 1_795_285_300.0


def payload(*samples: dict, **envelope: object) -> bytes:
    body = {"v": 1, "kit": "k01", "boot": 4, "seq": 9, **envelope, "samples": list(samples)}
    return json.dumps(body).encode()


def test_age_samples_are_dated_from_the_time_of_receipt() -> None:
    readings = decode_readings(payload({"age": 30, "temperature": 20}), "s", "k01", NOW)
    assert readings.samples[0].time_ms == round((NOW - 30) * 1000)
    assert readings.samples[0].from_age is True


def test_t_samples_keep_their_own_time_to_the_millisecond() -> None:
    readings = decode_readings(payload({"t": 1795285242.1234, "temperature": 20}), "s", "k01", NOW)
    assert readings.samples[0].time_ms == 1795285242123
    assert readings.samples[0].from_age is False


def test_integers_are_stored_as_floats() -> None:
    readings = decode_readings(payload({"t": 1795285242, "humidity": 55}), "s", "k01", NOW)
    value = readings.samples[0].values["humidity"]
    assert isinstance(value, float) and value == 55.0


def test_out_of_range_rejects_only_that_field() -> None:
    readings = decode_readings(payload({"age": 0, "humidity": 140, "temperature": 21.5}), "s", "k01", NOW)
    assert readings.samples[0].values == {"temperature": 21.5}
    (rejection,) = readings.rejections
    assert rejection.reason is Reason.OUT_OF_RANGE
    assert rejection.message == "humidity 140 % is above 100 %"
    assert (rejection.sample, rejection.field, rejection.value) == (0, "humidity", 140)


def test_a_misspelt_quantity_gets_a_suggestion() -> None:
    readings = decode_readings(payload({"age": 0, "temprature": 21.5}), "s", "k01", NOW)
    assert "did you mean temperature?" in readings.rejections[0].message


def test_a_wrong_kit_rejects_the_whole_message_naming_both() -> None:
    with pytest.raises(MessageRejected) as caught:
        decode_readings(payload({"age": 0, "temperature": 1}), "s", "k02", NOW)
    assert caught.value.rejection.reason is Reason.KIT_MISMATCH
    assert "'k01'" in caught.value.rejection.message and "'k02'" in caught.value.rejection.message


def test_deeply_nested_json_is_rejected_not_crashing() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(MessageRejected) as caught:
        decode_readings(deep[:16000], "s", "k01", NOW)
    assert caught.value.rejection.reason is Reason.NOT_JSON


def test_a_very_long_unknown_name_is_trimmed_in_the_sentence() -> None:
    readings = decode_readings(payload({"age": 0, "x" * 5000: 1}), "s", "k01", NOW)
    assert len(readings.rejections[0].message) < 200


def test_status_messages_accept_the_last_will_and_the_full_form() -> None:
    assert decode_status(b'{"v": 1, "state": "offline"}').state == "offline"
    full = decode_status(json.dumps({"v": 1, "state": "online", "fw": "0.3.0", "boot": 17, "interval_s": 60,
                                     "sensors": ["bme280"], "battery": 3.9, "dropped": 0}).encode())
    assert full.interval_s == 60 and full.sensors == ["bme280"]


@pytest.mark.parametrize("raw, reason", [
    (b'{"v": 1, "state": "dancing"}', Reason.BAD_FIELD),
    (b'{"v": 3, "state": "online"}', Reason.UNSUPPORTED_VERSION),
    (b"[]", Reason.NOT_AN_OBJECT),
    (b"\xff", Reason.NOT_JSON),
])
def test_bad_status_messages_are_rejected_with_a_reason(raw: bytes, reason: Reason) -> None:
    with pytest.raises(MessageRejected) as caught:
        decode_status(raw)
    assert caught.value.rejection.reason is reason


def test_kit_config_refuses_an_interval_under_ten_seconds() -> None:
    assert KitConfig.model_validate({"interval_s": 60}).interval_s == 60
    with pytest.raises(ValueError):
        KitConfig.model_validate({"interval_s": 1})


def test_a_notice_of_hundreds_of_rejections_keeps_the_first_ones_and_counts_the_rest() -> None:
    samples = [{"age": n, "humidity": 140, "pressure": 5} for n in range(300)]
    readings = decode_readings(payload(*samples), "s", "k01", NOW)
    assert len(readings.rejections) == 600
    whole = rejected_notice(readings.boot, readings.seq, readings.rejections, max_bytes=10**6)
    assert len(whole) > 32 * 1024  # what the broker would refuse
    body = rejected_notice(readings.boot, readings.seq, readings.rejections)
    notice = json.loads(body)
    assert len(body) <= 16 * 1024
    kept = notice["rejections"]
    assert kept == json.loads(whole)["rejections"][:len(kept)]
    assert len(kept) + notice["more"] == 600 and len(kept) > 50
    assert "more" not in json.loads(rejected_notice(readings.boot, readings.seq, readings.rejections[:3]))


def test_the_rejected_notice_lists_each_reason() -> None:
    readings = decode_readings(payload({"age": 0, "humidity": 140}), "s", "k01", NOW)
    notice = json.loads(rejected_notice(readings.boot, readings.seq, readings.rejections))
    assert notice["boot"] == 4 and notice["seq"] == 9
    assert notice["rejections"][0]["reason"] == "out_of_range"
    assert notice["rejections"][0]["message"] == "humidity 140 % is above 100 %"
