"""The gateway's pure core, with nothing running: ingest decisions, de-duplication, batching, backoff."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from pathlib import Path

import orjson
from golden_set import load_golden
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core import Batcher, Ingest, KitActivity, Outcome, backoff
from gateway.dedup import Dedup
from lauks import schema
from lauks.contract import Sample
from lauks.topics import Topics

TOPICS = Topics("lauks")
NOW = 1_780_000_000.0
GOLDEN = load_golden()


def ingest(tmp_path: Path | None = None) -> Ingest:
    return Ingest(TOPICS, Dedup(tmp_path, window=64, fsync=False))


def message(seq: int, boot: int = 1, samples: Sequence[Mapping[str, object]] | None = None, kit: str = "k1") -> bytes:
    return json.dumps({"v": 1, "kit": kit, "boot": boot, "seq": seq,
                       "samples": samples or [{"age": 30, "temperature": 20.5}]}).encode()


def test_a_valid_message_becomes_readings_points_and_a_seen_point() -> None:
    outcome = ingest().message(TOPICS.readings("s", "k1"), message(0), NOW)
    assert outcome.key == ("s", "k1", 1, 0)
    assert outcome.lines[0] == f"readings,kit=k1,site=s temperature=20.5,from_age=1i {int((NOW - 30) * 1000)}"
    assert outcome.lines[1].startswith("kit_status,kit=s") is False
    assert outcome.lines[1].startswith("kit_status,kit=k1,site=s seen=1i,samples=1i,late=0i,boot=1i")
    assert not outcome.rejections and not outcome.drop


def test_a_copy_of_a_stored_message_is_dropped() -> None:
    core = ingest()
    first = core.message(TOPICS.readings("s", "k1"), message(5), NOW)
    core.dedup.commit([first.key] if first.key else [])
    again = core.message(TOPICS.readings("s", "k1"), message(5), NOW + 60)
    assert again.drop and again.duplicate and not again.lines
    assert core.stats.duplicates == 1


def test_a_copy_of_an_unstored_message_keeps_the_first_receipt_time(tmp_path: Path) -> None:
    core = ingest(tmp_path)
    first = core.message(TOPICS.readings("s", "k1"), message(5), NOW)
    core.dedup.persist()
    restarted = ingest(tmp_path)  # a new process reads the receipt log
    again = restarted.message(TOPICS.readings("s", "k1"), message(5), NOW + 600)
    assert again.duplicate and not again.drop
    assert again.lines[0] == first.lines[0]


def test_a_copy_re_dated_after_a_restart_lands_on_the_very_same_millisecond(tmp_path: Path) -> None:
    core = ingest(tmp_path)
    first = core.message(TOPICS.readings("s", "k1"), message(6, samples=[{"age": 0.3333, "humidity": 50}]),
                         NOW + 0.0007)
    core.dedup.persist()
    again = ingest(tmp_path).message(TOPICS.readings("s", "k1"),
                                     message(6, samples=[{"age": 0.3333, "humidity": 50}]), NOW + 9)
    assert again.lines[0] == first.lines[0]


def test_a_line_cut_off_by_a_crash_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "keys.log").write_bytes(b"s k 1 1 1000\ns k 1 2 10")
    dedup = Dedup(tmp_path, fsync=False)
    assert not dedup.see(("s", "k", 1, 1), 5).new
    assert dedup.see(("s", "k", 1, 2), 5).new


def test_rejected_fields_are_announced_and_the_rest_is_kept() -> None:
    core = ingest()
    outcome = core.message(TOPICS.readings("s", "k1"),
                           message(1, samples=[{"age": 0, "humidity": 140, "temperature": 20}]), NOW)
    assert any(line.startswith("readings,") and "temperature=20.0" in line for line in outcome.lines)
    rejection_lines = [line for line in outcome.lines if line.startswith("rejections,")]
    assert rejection_lines == [f'rejections,kit=k1,reason=out_of_range,site=s count=1i,'
                               f'detail="humidity 140 % is above 100 %",field_name="humidity",bad_value="140",'
                               f'bound=100.0,sample_index=0i {int(NOW * 1000)}']
    assert outcome.notice_topic == "lauks/v1/s/k1/rejected"
    notice = orjson.loads(outcome.notice or b"")
    assert notice["seq"] == 1 and notice["rejections"][0]["reason"] == "out_of_range"
    assert core.stats.by_reason == {"out_of_range": 1}


def test_two_rejections_of_one_kit_never_share_a_timestamp() -> None:
    core = ingest()
    a = core.message(TOPICS.readings("s", "k1"), b"not json", NOW)
    b = core.message(TOPICS.readings("s", "k1"), b"not json either", NOW)
    times = [line.rsplit(" ", 1)[1] for line in a.lines + b.lines]
    assert len(set(times)) == 2


def test_every_golden_message_gets_its_expected_outcome() -> None:
    for item in GOLDEN.valid + GOLDEN.invalid:
        core = ingest()  # the golden messages share (boot, seq): each is new to its own gateway
        outcome = core.message(TOPICS.readings(GOLDEN.site, GOLDEN.kit), item.payload, GOLDEN.received_at)
        readings = [line for line in outcome.lines if line.startswith("readings,")]
        reasons = sorted(r.reason.value for r in outcome.rejections)
        assert len(readings) == item.samples, item.name
        assert reasons == sorted(item.reasons), item.name


def test_a_status_message_becomes_a_kit_status_point() -> None:
    core = ingest()
    payload = b'{"v":1,"state":"online","fw":"0.3.0","boot":17,"sensors":["bme280","ds18b20"],"battery":4}'
    outcome = core.message(TOPICS.status("s", "k1"), payload, NOW)
    assert outcome.lines == [f'kit_status,kit=k1,site=s state="online",fw="0.3.0",boot=17i,battery=4.0,'
                             f'sensors="bme280,ds18b20" {int(NOW * 1000)}']
    assert core.message(TOPICS.status("s", "k1"), payload, NOW + 1, retained=True).drop


def test_a_bad_status_is_rejected_with_its_reason() -> None:
    outcome = ingest().message(TOPICS.status("s", "k1"), b'{"v":1,"state":"dancing"}', NOW)
    assert [r.reason.value for r in outcome.rejections] == ["bad_field"]


def test_messages_on_other_topics_are_ignored() -> None:
    core = ingest()
    assert core.message("lauks/v1/s/k1/config", b"{}", NOW).drop
    assert core.message("elsewhere/x", b"{}", NOW).drop
    assert core.stats.ignored == 2


# --- the ingest facts: what the gateway knew at receipt, for the read-time quality flags ---------------------

def readings_of(outcome: Outcome) -> list[str]:
    return [line for line in outcome.lines if line.startswith("readings,")]


def test_an_on_time_sample_is_written_exactly_as_the_schema_writes_it() -> None:
    t_ms = int(NOW * 1000) - 59_999  # just under a minute old
    payload = message(0, samples=[{"t": t_ms / 1000, "temperature": 20.5, "humidity": 55}])
    (line,) = readings_of(ingest().message(TOPICS.readings("s", "k1"), payload, NOW))
    assert line == schema.readings_lines("s", "k1", [Sample(t_ms, {"temperature": 20.5, "humidity": 55.0})])[0]
    assert line == f"readings,kit=k1,site=s temperature=20.5,humidity=55.0 {t_ms}"


def test_a_sample_a_minute_or_more_old_carries_its_whole_seconds_of_lag() -> None:
    now_ms = int(NOW * 1000)
    samples = [{"t": (now_ms - lag) / 1000, "temperature": 20.5} for lag in (60_000, 61_999, 3 * 86400_000, 1_000)]
    lines = readings_of(ingest().message(TOPICS.readings("s", "k1"), message(0, samples=samples), NOW))
    assert [line.split(" ")[1] for line in lines] == [
        "temperature=20.5,late_s=60i", "temperature=20.5,late_s=61i", "temperature=20.5,late_s=259200i",
        "temperature=20.5"]
    assert [int(line.rsplit(" ", 1)[1]) for line in lines] == [now_ms - 60_000, now_ms - 61_999,
                                                                now_ms - 3 * 86400_000, now_ms - 1_000]


def test_a_sample_dated_from_age_says_so_and_its_lag_is_its_age() -> None:
    samples: list[dict[str, float]] = [{"age": 0.5, "humidity": 50}, {"age": 400, "humidity": 51}]
    lines = readings_of(ingest().message(TOPICS.readings("s", "k1"), message(0, samples=samples), NOW))
    assert [line.split(" ")[1] for line in lines] == ["humidity=50.0,from_age=1i",
                                                      "humidity=51.0,late_s=400i,from_age=1i"]


def test_the_facts_follow_their_own_samples_when_a_sample_is_rejected_whole() -> None:
    now_ms = int(NOW * 1000)
    samples = [{"t": (now_ms - 600_000) / 1000, "temperature": 1}, {"t": now_ms / 1000, "humidity": 140},
               {"t": now_ms / 1000, "temperature": 2}]
    outcome = ingest().message(TOPICS.readings("s", "k1"), message(0, samples=samples), NOW)
    assert [line.split(" ")[1] for line in readings_of(outcome)] == ["temperature=1.0,late_s=600i", "temperature=2.0"]
    assert [r.reason.value for r in outcome.rejections] == ["out_of_range"]


def test_a_copy_of_an_unstored_late_message_keeps_the_lag_of_its_first_receipt(tmp_path: Path) -> None:
    samples = [{"t": NOW - 700, "temperature": 20.5}]
    core = ingest(tmp_path)
    first = core.message(TOPICS.readings("s", "k1"), message(9, samples=samples), NOW)
    core.dedup.persist()
    again = ingest(tmp_path).message(TOPICS.readings("s", "k1"), message(9, samples=samples), NOW + 3600)
    assert again.duplicate and readings_of(again) == readings_of(first)
    assert "late_s=700i" in readings_of(again)[0]


def test_the_seen_point_gives_the_oldest_late_sample_since_the_previous_one() -> None:
    core = ingest()
    now_ms = int(NOW * 1000)
    late = [{"t": (now_ms - minutes * 60_000) / 1000, "temperature": 20.0} for minutes in (30, 90, 6)]
    first = core.message(TOPICS.readings("s", "k1"), message(0, samples=late), NOW)
    (seen,) = [line for line in first.lines if line.startswith("kit_status,")]
    assert seen == (f'kit_status,kit=k1,site=s seen=1i,samples=3i,late=3i,boot=1i,late_from={now_ms - 90 * 60_000}i '
                    f"{now_ms}")
    # two minutes old is not backfill: no late_from, and the previous one is not carried over
    later = core.message(TOPICS.readings("s", "k1"), message(1, samples=[{"t": NOW - 110, "temperature": 1}]), NOW + 10)
    (point,) = [line for line in later.lines if line.startswith("kit_status,")]
    assert "samples=1i,late=0i" in point and "late_from" not in point


def test_late_from_is_the_oldest_of_the_late_samples_noted_between_two_seen_points() -> None:
    activity = KitActivity()
    activity.note("s", "k", 1, None, 1, 0, 100_000)
    assert activity.note("s", "k", 1, None, 2, 2, 101_000, late_from=50_000) is None
    assert activity.note("s", "k", 1, None, 1, 1, 102_000, late_from=70_000) is None
    (point,) = activity.sweep(110_000)
    assert point.endswith("late=3i,boot=1i,late_from=50000i 110000")


def test_seen_points_come_at_most_every_ten_seconds_and_count_backfill() -> None:
    activity = KitActivity()
    assert activity.note("s", "k", 1, "1.0", 2, 0, 100_000) is not None
    assert activity.note("s", "k", 1, "1.0", 3, 1, 105_000) is None
    assert activity.sweep(109_000) == []
    (point,) = activity.sweep(110_000)
    assert "samples=3i,late=1i" in point
    assert activity.sweep(200_000) == []  # nothing new to report


def test_a_batch_is_due_at_its_size_or_its_age() -> None:
    batcher: Batcher[int] = Batcher(max_points=3, max_delay_s=0.5)
    assert batcher.due_at() is None
    assert not batcher.add(["a"], 1, now=10.0)
    assert batcher.due_at() == 10.5
    assert batcher.add(["b", "c"], 2, now=10.1)
    batch = batcher.take()
    assert batch is not None and batch.lines == ["a", "b", "c"] and batch.tokens == [1, 2]
    assert batcher.take() is None


def test_a_message_without_a_token_still_counts_towards_a_full_batch() -> None:
    batcher: Batcher[int] = Batcher(max_points=100, max_delay_s=0.5, max_messages=2)
    assert not batcher.add(["a"], None, now=1.0)
    assert batcher.due_at() == 1.5
    assert batcher.add(["b"], 7, now=1.1)
    batch = batcher.take()
    assert batch is not None and batch.tokens == [7] and batch.messages == 2


def test_backoff_grows_is_capped_and_randomised() -> None:
    rng = random.Random(1)
    delays = [backoff(attempt, 0.5, 8.0, rng) for attempt in range(12)]
    assert all(0.25 <= d <= 8.0 for d in delays)
    assert max(delays[6:]) > 2.0
    assert len({round(d, 6) for d in delays}) == len(delays)


# --- no input can stop the gateway --------------------------------------------------------------

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)


@FUZZ
@given(st.binary(max_size=20_000))
def test_arbitrary_bytes_never_raise(payload: bytes) -> None:
    core = ingest()
    outcome = core.message(TOPICS.readings("s", "k1"), payload, NOW)
    assert outcome.lines or outcome.drop
    core.message(TOPICS.status("s", "k1"), payload, NOW)


@FUZZ
@given(json_values)
def test_arbitrary_json_never_raises(value: object) -> None:
    payload = json.dumps(value).encode()
    ingest().message(TOPICS.readings("s", "k1"), payload, NOW)
    ingest().message(TOPICS.status("s", "k1"), payload, NOW)


@FUZZ
@given(st.dictionaries(st.sampled_from(["t", "age", "temperature", "humidity", "rain", "x y", "temp"]),
                       st.integers(min_value=-(10**400), max_value=10**400) | st.floats() | st.text(max_size=5),
                       max_size=6),
       st.integers(min_value=-(2**70), max_value=2**70), st.integers(min_value=-(2**70), max_value=2**70))
def test_arbitrary_samples_and_counters_never_raise(sample: dict[str, object], boot: int, seq: int) -> None:
    payload = json.dumps({"v": 1, "kit": "k1", "boot": boot, "seq": seq, "samples": [sample, sample]}).encode()
    outcome = ingest().message(TOPICS.readings("s", "k1"), payload, NOW)
    for line in outcome.lines:
        assert "\n" not in line


def test_deep_nesting_and_huge_numbers_are_rejected_not_raised() -> None:
    core = ingest()
    deep = b"[" * 100_000 + b"]" * 100_000
    assert core.message(TOPICS.readings("s", "k1"), deep, NOW).rejections
    nested = b'{"v":1,"kit":"k1","boot":1,"seq":1,"samples":[' + b"[" * 5000 + b"]" * 5000 + b"]}"
    core.message(TOPICS.readings("s", "k1"), nested, NOW)
    huge = b'{"v":1,"kit":"k1","boot":1,"seq":2,"samples":[{"age":0,"temperature":1e400,"rain":' + b"9" * 5000 + b"}]}"
    outcome = core.message(TOPICS.readings("s", "k1"), huge, NOW)
    assert {r.reason.value for r in outcome.rejections} <= {"not_a_number", "out_of_range", "not_json"}
