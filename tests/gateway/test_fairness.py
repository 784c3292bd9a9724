"""Fair share per kit, in the pure core: the token buckets and what a limited kit costs the gateway."""

from __future__ import annotations

import json

import orjson

from gateway.core import DEAD_LETTER_WINDOW_S, DEAD_LETTERS_PER_KIT, Ingest, KitBuckets, KitLimits, Outcome
from gateway.dedup import Dedup
from lauks.contract import REASONS, Reason
from lauks.topics import Topics

TOPICS = Topics("lauks")
NOW = 1_780_000_000.0
SMALL = KitLimits(per_s=2.0, burst=5, bytes_per_s=1000, burst_bytes=16 * 1024, notice_every_s=10.0,
                  dead_letters=3, dead_letter_window_s=60.0)


def message(seq: int, kit: str = "k1") -> bytes:
    return json.dumps({"v": 1, "kit": kit, "boot": 1, "seq": seq,
                       "samples": [{"age": 0, "temperature": 20.5}]}).encode()


def core(limits: KitLimits | None = SMALL) -> Ingest:
    return Ingest(TOPICS, Dedup(None, window=64, fsync=False), limits=limits)


def send(ingest: Ingest, seq: int, at: float, kit: str = "k1") -> Outcome:
    return ingest.message(TOPICS.readings("s", kit), message(seq, kit), at)


# --- the bucket --------------------------------------------------------------------------------------

def test_a_new_kit_may_send_its_whole_burst_at_once_and_not_one_more() -> None:
    buckets = KitBuckets(SMALL)
    assert [buckets.take(("s", "k"), 10, NOW) for _ in range(6)] == [True] * 5 + [False]


def test_the_bucket_refills_at_the_rate_and_never_above_the_burst() -> None:
    buckets = KitBuckets(SMALL)
    for _ in range(5):
        buckets.take(("s", "k"), 10, NOW)
    assert buckets.take(("s", "k"), 10, NOW + 0.4) is False  # 0.8 of a token
    assert buckets.take(("s", "k"), 10, NOW + 0.5) is True  # 1.0
    assert buckets.take(("s", "k"), 10, NOW + 0.5) is False
    # an hour idle fills it to the burst, no more
    assert [buckets.take(("s", "k"), 10, NOW + 3600) for _ in range(6)] == [True] * 5 + [False]


def test_bytes_are_a_second_bucket_so_large_messages_run_out_first() -> None:
    buckets = KitBuckets(KitLimits(per_s=100, burst=100, bytes_per_s=1000, burst_bytes=16 * 1024))
    assert [buckets.take(("s", "k"), 6000, NOW) for _ in range(3)] == [True, True, False]
    assert buckets.take(("s", "k"), 6000, NOW + 1.5) is False  # 4384 + 1500 bytes
    assert buckets.take(("s", "k"), 6000, NOW + 1.7) is True  # 4384 + 1700


def test_a_bytes_rate_of_zero_limits_messages_only() -> None:
    buckets = KitBuckets(KitLimits(per_s=1, burst=3, bytes_per_s=0))
    assert [buckets.take(("s", "k"), 16 * 1024, NOW) for _ in range(4)] == [True, True, True, False]


def test_kits_have_buckets_of_their_own() -> None:
    buckets = KitBuckets(SMALL)
    for _ in range(5):
        buckets.take(("s", "flood"), 10, NOW)
    assert buckets.take(("s", "flood"), 10, NOW) is False
    assert buckets.take(("s", "quiet"), 10, NOW) is True
    assert buckets.take(("other-site", "flood"), 10, NOW) is True


def test_a_clock_stepping_back_refills_nothing() -> None:
    buckets = KitBuckets(SMALL)
    for _ in range(5):
        buckets.take(("s", "k"), 10, NOW)
    assert buckets.take(("s", "k"), 10, NOW - 3600) is False
    assert buckets.take(("s", "k"), 10, NOW + 0.5) is True


def test_the_table_of_buckets_is_bounded_and_evicts_full_buckets_first() -> None:
    limits = KitLimits(per_s=2.0, burst=5, bytes_per_s=0, max_kits=100)
    buckets = KitBuckets(limits)
    for _ in range(6):
        buckets.take(("s", "flood"), 10, NOW + 100)  # empty, and limited
    buckets.limited(("s", "flood"), NOW + 100)
    for index in range(10_000):  # a stream of kits never seen again
        buckets.take(("s", f"k{index}"), 10, NOW + (0 if index < 99 else 100))
        assert len(buckets) <= 100
    assert buckets.evictions >= 9_900
    assert buckets.take(("s", "flood"), 10, NOW + 100) is False  # the busy bucket was kept: no fresh burst


# --- what a limited message leads to -----------------------------------------------------------------

def test_a_rate_limited_message_is_acknowledged_counted_and_not_stored() -> None:
    ingest = core()
    outcomes = [send(ingest, seq, NOW) for seq in range(8)]
    assert all(o.key is not None and o.lines for o in outcomes[:5])
    limited = outcomes[5:]
    assert all(o.key is None and not any(line.startswith("readings") for line in o.lines) for o in limited)
    assert ingest.stats.by_reason == {"rate_limited": 3}
    assert ingest.stats.rejected_messages == 3
    assert all(o.drop for o in limited[1:])  # acknowledged at once: the broker's queue drains at full speed


def test_the_first_limited_message_gets_a_notice_the_next_ones_only_a_count() -> None:
    ingest = core()
    for seq in range(5):
        send(ingest, seq, NOW)
    first = send(ingest, 5, NOW)
    assert first.notice_topic == TOPICS.rejected("s", "k1") and first.notice is not None
    notice = orjson.loads(first.notice)
    assert [r["reason"] for r in notice["rejections"]] == ["rate_limited"]
    assert "boot" not in notice  # the message was not decoded
    assert not first.drop and first.lines[0].startswith("rejections,kit=k1,reason=rate_limited,site=s count=1i")
    later = [send(ingest, seq, NOW + 0.1) for seq in range(6, 1006)]
    assert sum(1 for o in later if o.notice is not None) == 0
    assert sum(1 for o in later if o.lines) == 0  # no rejections point per message either
    assert ingest.stats.by_reason == {"rate_limited": 1001}


def test_at_most_one_notice_per_kit_per_interval_with_the_count_since_the_last() -> None:
    ingest = core(KitLimits(per_s=1.0, burst=1, bytes_per_s=0, notice_every_s=10.0))
    notices = []
    for tick in range(109):  # 10 messages a second for 10.9 s: 1 a second allowed
        outcome = send(ingest, tick, NOW + tick / 10)
        if outcome.notice is not None:
            notices.append(orjson.loads(outcome.notice)["rejections"][0])
    assert len(notices) == 2 and notices[0]["value"] == 1 and notices[1]["value"] > 80
    assert f"{notices[1]['value']} messages were not stored in the last 10 s" in notices[1]["message"]
    assert ingest.buckets is not None
    limited = ingest.stats.by_reason["rate_limited"]
    assert 95 <= limited <= 100
    unreported, _ = ingest.buckets.take_unreported(("s", "k1"), NOW + 30)
    assert notices[0]["value"] + notices[1]["value"] + unreported == limited


def test_only_the_first_few_limited_payloads_per_kit_and_window_become_dead_letters() -> None:
    ingest = core()
    for seq in range(5):
        send(ingest, seq, NOW)
    kept = [send(ingest, seq, NOW).dead_letter for seq in range(5, 1005)]
    assert sum(kept) == 3 and kept[:3] == [True] * 3
    assert send(ingest, 2000, NOW + 30).dead_letter is False  # a token refilled, and limited again
    assert send(ingest, 2001, NOW + 30).dead_letter is False
    burst = [send(ingest, seq, NOW + 61) for seq in range(3000, 3010)]  # a new window
    assert sum(o.dead_letter for o in burst) == 3
    quiet = [send(ingest, seq, NOW, kit="k2") for seq in range(3)]
    assert not any(o.dead_letter for o in quiet)


def test_a_kit_back_within_its_share_reports_the_count_not_yet_in_a_notice() -> None:
    ingest = core()
    for seq in range(5):
        send(ingest, seq, NOW)
    for seq in range(5, 12):  # 1 notice, then 6 counted
        send(ingest, seq, NOW)
    soon = send(ingest, 12, NOW + 1)  # two tokens later, but within the notice interval: no report yet
    assert soon.key == ("s", "k1", 1, 12) and not any(line.startswith("rejections") for line in soon.lines)
    back = send(ingest, 13, NOW + 11)
    assert back.key == ("s", "k1", 1, 13)
    (point,) = [line for line in back.lines if line.startswith("rejections")]
    assert "reason=rate_limited" in point and "count=6i" in point
    again = send(ingest, 14, NOW + 30)
    assert not any(line.startswith("rejections") for line in again.lines)


def test_status_messages_share_the_kit_bucket() -> None:
    ingest = core()
    for seq in range(5):
        send(ingest, seq, NOW)
    status = ingest.message(TOPICS.status("s", "k1"), b'{"v": 1, "state": "online"}', NOW)
    assert not any(line.startswith("kit_status") for line in status.lines)
    assert ingest.stats.by_reason == {"rate_limited": 1}


def test_without_limits_nothing_is_limited() -> None:
    ingest = core(None)
    assert not any(send(ingest, seq, NOW).rejections for seq in range(20_000))
    off = core(KitLimits(per_s=0))
    assert off.buckets is None


def test_the_default_share_lets_a_full_firmware_ring_and_a_weekend_of_backlog_through_at_any_speed() -> None:
    # firmware: 256 segments x 60 samples, sent 30 samples a message (firmware/device/lauks_kit),
    # a full weather message ~6 KB; then a weekend (64 h) of 1-minute messages the broker kept while the
    # gateway was down, handed over as fast as the gateway takes them
    ingest = core(KitLimits())
    ring = [json.dumps({"v": 1, "kit": "k1", "boot": 2, "seq": seq, "samples": [
        {"t": NOW - 15_360 * 60 + (seq * 30 + n) * 60, "temperature": 21.5, "humidity": 55.2, "pressure": 1013.2,
         "battery": 3.92, "rssi": -67, "light": 12000.0, "co2": 415.0} for n in range(30)]}).encode()
        for seq in range(256 * 60 // 30)]
    assert all(len(payload) < 6200 for payload in ring)
    outcomes = [ingest.message(TOPICS.readings("s", "k1"), payload, NOW) for payload in ring]
    weekend = [send(ingest, seq, NOW + seq / 20_000) for seq in range(64 * 60)]  # drained at 20k msg/s
    assert not any(o.rejections for o in outcomes + weekend)
    assert ingest.stats.by_reason == {}


def test_after_an_absence_the_broker_s_backlog_of_every_kit_goes_through_beyond_the_burst() -> None:
    buckets = KitBuckets(SMALL)  # burst 5, backlog allowance 1 message per second away
    assert buckets.take(("s", "old"), 10, NOW - 100)
    buckets.allow_backlog(30.0, NOW)  # away 30 s: each kit may send 30 more than its share, once
    for kit in ("old", "new"):  # a kit known before the absence and one seen first after it
        sent = [buckets.take(("s", kit), 10, NOW + i * 0.001) for i in range(40)]
        assert sent == [True] * 35 + [False] * 5, kit


def test_a_catch_up_allowance_is_given_once_and_ends_with_the_catch_up() -> None:
    buckets = KitBuckets(SMALL)
    buckets.allow_backlog(30.0, NOW)
    assert [buckets.take(("s", "k"), 10, NOW) for _ in range(3)] == [True] * 3  # 32 left of 35
    # long after the catch-up (at least 10 minutes) what is left of it is gone: the burst again
    later = NOW + 601
    assert [buckets.take(("s", "k"), 10, later) for _ in range(6)] == [True] * 5 + [False]
    assert sum(buckets.take(("s", "new"), 10, later) for _ in range(10)) == 5  # a new kit starts at the burst


def test_an_absence_too_short_or_negative_gives_nothing() -> None:
    buckets = KitBuckets(SMALL)
    buckets.allow_backlog(-5.0, NOW)
    assert sum(buckets.take(("s", "k"), 10, NOW) for _ in range(10)) == 5


def test_rate_limited_is_a_reason_with_a_sentence() -> None:
    scope, sentence = REASONS[Reason.RATE_LIMITED]
    assert scope == "message" and "20 messages" in sentence


def test_a_kit_sending_only_bad_messages_keeps_a_bounded_number_of_dead_letters() -> None:
    ingest = core(None)
    bad = [ingest.message(TOPICS.readings("s", "noisy"), b"not json", NOW + i * 0.01) for i in range(500)]
    assert sum(o.dead_letter for o in bad) == DEAD_LETTERS_PER_KIT
    assert all(o.notice is not None and o.lines for o in bad)  # still each counted, stored and told to the kit
    assert ingest.stats.by_reason["not_json"] == 500
    assert ingest.stats.dead_letters_skipped == 500 - DEAD_LETTERS_PER_KIT
    # another kit's bad message is kept all the same, and the noisy kit's again once the window is over
    assert ingest.message(TOPICS.readings("s", "other"), b"not json", NOW + 6).dead_letter
    assert ingest.message(TOPICS.readings("s", "noisy"), b"not json", NOW + DEAD_LETTER_WINDOW_S + 1).dead_letter
