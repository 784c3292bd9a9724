"""Contract v1 decoding: times, field-level rejection, sentences a pupil can act on."""

from __future__ import annotations

import json

import pytest

from lauks.contract import (
    EARLIEST_TIME_S,
    MAX_FUTURE_S,
    MAX_PAYLOAD_BYTES,
    KitConfig,
    MessageRejected,
    Reason,
    decode_readings,
    decode_status,
    rate_limited,
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


# --- the parts of a rejection: what a sentence in another language is built from ------------------------------


def test_out_of_range_above_gives_the_catalog_maximum_as_its_limit() -> None:
    (rejection,) = decode_readings(payload({"age": 0, "humidity": 140}), "s", "k01", NOW).rejections
    assert (rejection.field, rejection.value, rejection.limit, rejection.sample) == ("humidity", 140, 100.0, 0)


def test_out_of_range_below_gives_the_catalog_minimum_as_its_limit() -> None:
    readings = decode_readings(payload({"age": 0, "temperature": 20}, {"age": 1, "temperature": -80.5}), "s", "k01",
                               NOW)
    (rejection,) = readings.rejections
    assert (rejection.field, rejection.value, rejection.limit, rejection.sample) == ("temperature", -80.5, -60.0, 1)
    assert isinstance(rejection.limit, float)


def test_too_large_gives_the_size_and_the_byte_limit() -> None:
    big = payload({"age": 0, "temperature": 1}, pad="x" * MAX_PAYLOAD_BYTES)
    with pytest.raises(MessageRejected) as caught:
        decode_readings(big, "s", "k01", NOW)
    rejection = caught.value.rejection
    assert rejection.reason is Reason.TOO_LARGE
    assert (rejection.value, rejection.limit) == (len(big), float(MAX_PAYLOAD_BYTES))


def test_time_in_future_gives_the_sample_time_and_the_five_minutes_allowed() -> None:
    (rejection,) = decode_readings(payload({"t": NOW + 3600, "temperature": 1}), "s", "k01", NOW).rejections
    assert rejection.reason is Reason.TIME_IN_FUTURE
    assert (rejection.field, rejection.value, rejection.limit, rejection.sample) == ("t", NOW + 3600, MAX_FUTURE_S, 0)


def test_time_too_old_gives_the_sample_time_and_the_earliest_time() -> None:
    (rejection,) = decode_readings(payload({"t": 1_000_000, "temperature": 1}), "s", "k01", NOW).rejections
    assert rejection.reason is Reason.TIME_TOO_OLD
    assert (rejection.field, rejection.value, rejection.limit) == ("t", 1_000_000, EARLIEST_TIME_S)


def test_rate_limited_gives_the_count_as_value_and_the_message_rate_as_limit() -> None:
    rejection = rate_limited(412, 20.0, 64 * 1024, 10.0)
    assert (rejection.field, rejection.value, rejection.limit) == (None, 412, 20.0)


def test_unknown_quantity_names_the_quantity_and_has_no_limit() -> None:
    (rejection,) = decode_readings(payload({"age": 0, "temprature": 21.5}), "s", "k01", NOW).rejections
    assert (rejection.field, rejection.value, rejection.limit, rejection.sample) == ("temprature", None, None, 0)


def test_not_a_number_names_the_quantity_and_its_value_and_has_no_limit() -> None:
    (rejection,) = decode_readings(payload({"age": 0, "temperature": "abc"}), "s", "k01", NOW).rejections
    assert (rejection.field, rejection.value, rejection.limit) == ("temperature", "abc", None)


def test_the_notice_adds_limit_and_keeps_every_other_key_as_it_was() -> None:
    readings = decode_readings(payload({"age": 0, "humidity": 140}, {"age": 0, "temprature": 1}), "s", "k01", NOW)
    entries = json.loads(rejected_notice(readings.boot, readings.seq, readings.rejections))["rejections"]
    assert entries == [
        {"reason": "out_of_range", "message": "humidity 140 % is above 100 %", "sample": 0, "field": "humidity",
         "value": 140, "limit": 100.0},
        {"reason": "unknown_quantity", "message": "'temprature' is not a quantity Lauks knows: did you mean "
         "temperature?", "sample": 1, "field": "temprature"},
    ]
