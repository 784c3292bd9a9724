"""The golden messages validate exactly as they say: every later test and the firmware rely on it."""

from __future__ import annotations

import pytest
from golden_set import Golden, load_golden

from lauks.contract import REASONS, MessageRejected, Reason, decode_readings

GOLDEN = load_golden()


@pytest.mark.parametrize("message", GOLDEN.valid, ids=lambda m: m.name)
def test_valid_golden_message_is_accepted_whole(message, golden: Golden) -> None:
    readings = decode_readings(message.payload, golden.site, golden.kit, golden.received_at)
    assert readings.rejections == []
    assert len(readings.samples) == message.samples
    assert readings.boot == message.data["boot"] and readings.seq == message.data["seq"]


@pytest.mark.parametrize("message", GOLDEN.invalid, ids=lambda m: m.name)
def test_invalid_golden_message_is_rejected_with_its_reasons(message, golden: Golden) -> None:
    try:
        readings = decode_readings(message.payload, golden.site, golden.kit, golden.received_at)
    except MessageRejected as rejected:
        assert message.whole, f"whole message rejected: {rejected.rejection}"
        got = [rejected.rejection]
        stored = 0
    else:
        assert not message.whole, "expected the whole message to be rejected"
        got = readings.rejections
        stored = len(readings.samples)
    assert [r.reason.value for r in got] == message.reasons
    assert stored == message.samples
    for expected_sentence in message.messages:
        assert expected_sentence in [r.message for r in got]
    assert all((r.message and r.message[0].islower()) or r.message[0] in "'\"" for r in got)


def test_every_rejection_reason_has_a_golden_example() -> None:
    covered = {reason for m in GOLDEN.invalid for reason in m.reasons}
    # a reason no payload earns (rate_limited: how often a kit sends) is listed apart, and only there
    assert covered | set(GOLDEN.not_by_contents) == {r.value for r in Reason}
    assert not covered & set(GOLDEN.not_by_contents)
    assert set(REASONS) == set(Reason)
