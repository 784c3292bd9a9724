"""The fleet page's pure core: thresholds, issues, the order of the list, firmware and the answer's parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dashboards.alerts import REJECTION_BURST
from dashboards.definition import LOW_BATTERY_V
from web import fleetdata
from web.fleetdata import KitFacts

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
WINDOW = 900


def heard(minutes_ago: float, **fields: object) -> KitFacts:
    kit = KitFacts("school", f"kit-{minutes_ago:g}", **fields)  # type: ignore[arg-type]
    kit.last_seen = NOW - timedelta(minutes=minutes_ago)
    return kit


def test_a_kit_is_silent_only_after_three_intervals_and_never_within_the_online_window() -> None:
    hourly = heard(150, interval_s=3600)
    assert not hourly.is_silent(NOW, WINDOW)  # 2.5 h: fewer than three of its hours
    assert heard(181, interval_s=3600).is_silent(NOW, WINDOW)
    assert not heard(10, interval_s=60).is_silent(NOW, WINDOW)  # 10 intervals, but the site page says online
    assert heard(16, interval_s=60).is_silent(NOW, WINDOW)
    assert heard(16).is_silent(NOW, WINDOW)  # no interval known: the online window alone


def test_a_kit_never_heard_within_the_lookback_is_silent() -> None:
    kit = KitFacts("school", "new")
    assert kit.is_silent(NOW, WINDOW)
    assert kit.silence_s(NOW) is None


def test_battery_is_low_below_the_dashboards_threshold() -> None:
    assert heard(1, battery=LOW_BATTERY_V - 0.01).low_battery
    assert not heard(1, battery=LOW_BATTERY_V).low_battery
    assert not heard(1).low_battery


def test_offline_counts_only_when_no_readings_came_after_the_last_will() -> None:
    gone = heard(30, state="offline", state_time=NOW - timedelta(minutes=20))
    assert gone.is_offline
    back = heard(5, state="offline", state_time=NOW - timedelta(minutes=20))
    assert not back.is_offline


def test_a_burst_is_more_rejections_in_an_hour_than_the_alert_allows() -> None:
    assert heard(1, rejections_1h={"out_of_range": REJECTION_BURST + 1}).rejection_burst
    assert not heard(1, rejections_1h={"out_of_range": REJECTION_BURST}).rejection_burst


def test_silent_and_low_battery_kits_come_first_then_the_rest_by_urgency() -> None:
    fine = heard(1, fw="1.4.0")
    fine.kit = "fine"
    old = heard(1, fw="1.3.0")
    old.kit = "old"
    noisy = heard(1, fw="1.4.0", rejections_1h={"out_of_range": 50}, rejections_24h={"out_of_range": 80})
    noisy.kit = "noisy"
    low = heard(1, fw="1.4.0", battery=3.1)
    low.kit = "low"
    lower = heard(1, fw="1.4.0", battery=3.0)
    lower.kit = "lower"
    silent_long = heard(600, fw="1.4.0")
    silent_long.kit = "silent-long"
    silent_short = heard(30, fw="1.4.0")
    silent_short.kit = "silent-short"
    never = KitFacts("school", "never")
    ordered = [row.kit.kit for row in fleetdata.rows(
        [fine, old, noisy, low, lower, never, silent_short, silent_long], NOW, WINDOW)]
    assert ordered == ["silent-long", "silent-short", "never", "lower", "low", "noisy", "old", "fine"]


def test_issues_name_old_firmware_backfill_drops_and_unregistered_kits() -> None:
    kit = heard(1, fw="1.3.0", late_24h=12, dropped=3, registered=False)
    assert fleetdata.issues(kit, NOW, WINDOW, "1.4.0") == ["dropped", "old_firmware", "backfill", "unregistered"]
    assert fleetdata.issues(heard(1, fw="1.4.0"), NOW, WINDOW, "1.4.0") == []


def test_versions_compare_as_versions() -> None:
    assert fleetdata.newest_version(["1.9.2", "1.10.0", "1.4.0"]) == "1.10.0"
    assert fleetdata.newest_version(["1.4.0rc1", "1.4.0"]) == "1.4.0"
    assert fleetdata.newest_version(["web-test", "0.1"]) == "0.1"
    assert fleetdata.newest_version(["v2", "1.99"]) == "v2"
    assert fleetdata.newest_version([]) is None


def test_firmware_counts_each_version_newest_first() -> None:
    kits = [heard(1, fw="1.3.0"), heard(2, fw="1.4.0"), heard(3, fw="1.4.0"), heard(4)]
    counts = fleetdata.firmware_counts(kits)
    assert [(c.version, c.kits, c.newest) for c in counts] == [("1.4.0", 2, True), ("1.3.0", 1, False)]


def test_rejection_rows_put_the_last_hour_first() -> None:
    a = heard(1, rejections_1h={"out_of_range": 2}, rejections_24h={"out_of_range": 3, "bad_time": 40})
    rows = fleetdata.rejection_rows([a])
    assert [(r.reason, r.last_hour, r.last_day) for r in rows] == [("out_of_range", 2, 3), ("bad_time", 0, 40)]


def test_statements_are_bounded_in_time_grouped_by_kit_and_quote_the_site() -> None:
    text = fleetdata.statements(NOW, "it's")
    parts = text.split("; ")
    assert len(parts) == fleetdata.REJECTIONS_24H + 1
    assert all("time > " in part and 'GROUP BY "site", "kit"' in part for part in parts)
    assert all("\"site\" = 'it\\'s'" in part for part in parts)
    assert "now()" not in text  # the bounds are the page's own clock, so the facts agree with each other


def test_the_answer_fills_facts_and_adds_kits_the_register_lacks() -> None:
    kits = {("school", "a"): KitFacts("school", "a"), ("school", "b"): KitFacts("school", "b")}
    ms = int(NOW.timestamp() * 1000)
    a, b = {"site": "school", "kit": "a"}, {"site": "school", "kit": "b"}
    seen, readings, status = range(3)
    fleetdata.apply(kits, seen, a, [[ms, 1, "1.4.0"]])
    fleetdata.apply(kits, readings, a, [[0, 3.3, -70.0]])
    fleetdata.apply(kits, status, a, [[ms - 60_000, "online", 60, 3.9, -60.0, "bme280,sht31", 4, 0]])
    fleetdata.apply(kits, status, b, [[ms, "offline", None, None, None, None, None, None]])  # its last will
    assert fleetdata.follow_up(kits.values()) == [("school", "b")]
    fleetdata.apply_older(kits, len(fleetdata.FOLLOW_UP) - 1, b, [[0, 300, 3.1, None, "", None, None]])
    fleetdata.apply(kits, fleetdata.REJECTIONS_1H, {**a, "reason": "out_of_range"}, [[0, 2]])
    fleetdata.apply(kits, seen, {"site": "school", "kit": "stray"}, [[ms, 1, None]])
    for kit in kits.values():
        kit.settle()
    got = kits[("school", "a")]
    assert (got.last_seen, got.fw, got.state, got.state_time) == (NOW, "1.4.0", "online", NOW - timedelta(minutes=1))
    assert (got.battery, got.rssi, got.interval_s, got.buffered) == (3.3, -70.0, 60, 4)  # readings come first
    assert got.failed_sensors == ("bme280", "sht31")
    assert got.rejections_1h == {"out_of_range": 2}
    other = kits[("school", "b")]
    assert (other.battery, other.interval_s, other.state) == (3.1, 300, "offline")  # the status message's
    assert other.is_offline
    assert not kits[("school", "stray")].registered


def test_the_summary_counts_silent_and_offline_kits_apart_from_those_reporting() -> None:
    rows = fleetdata.rows([heard(1), heard(60), heard(1, battery=3.0), heard(2, late_24h=4)], NOW, WINDOW)
    made = fleetdata.summary(rows)
    assert (made.kits, made.online, made.silent, made.low_battery, made.backfilling) == (4, 3, 1, 1, 1)


def test_backfill_asks_for_the_whole_day_first_then_only_the_hours_it_does_not_keep() -> None:
    hours = fleetdata.BackfillHours()
    now = NOW + timedelta(minutes=30)  # 12:30
    start = hours.first_missing(now)
    assert start == NOW - timedelta(hours=24)
    kit = ("school", "a")
    found = {NOW - timedelta(hours=3): {kit: (5, 60)}, NOW: {kit: (1, 30)}}
    hours.store(start, now, found)
    assert hours.totals(start, now, found) == {kit: (6, 90)}
    later = now + timedelta(minutes=5)
    assert hours.first_missing(later) == NOW  # 11:00 and before are kept: only this hour is asked for
    assert hours.totals(NOW, later, {NOW: {kit: (2, 35)}}) == {kit: (7, 95)}


def test_backfill_keeps_an_hour_only_once_it_has_settled_and_for_a_while() -> None:
    hours = fleetdata.BackfillHours()
    just_after = NOW + fleetdata.SETTLE - timedelta(seconds=1)  # 11:00-12:00 may still get a batch
    hours.store(hours.first_missing(just_after), just_after, {})
    assert hours.first_missing(just_after) == NOW - timedelta(hours=1)
    settled = NOW + fleetdata.SETTLE
    hours.store(hours.first_missing(settled), settled, {})
    assert hours.first_missing(settled) == NOW
    assert hours.first_missing(settled + fleetdata.KEEP + timedelta(seconds=1)) == NOW - timedelta(hours=24)


def test_backfill_rows_are_read_by_hour_and_kit() -> None:
    ms = int(NOW.timestamp() * 1000)
    found = fleetdata.hour_sums([({"site": "s", "kit": "a"}, [[ms, 3, 40], [ms + 3_600_000, None, 2]])])
    assert found == {NOW: {("s", "a"): (3, 40)}, NOW + timedelta(hours=1): {("s", "a"): (0, 2)}}


def test_busy_facts_are_asked_for_over_the_last_hour_and_again_over_30_days_for_quiet_kits_only() -> None:
    parts = fleetdata.statements(NOW).split("; ")
    hour_ago = fleetdata.influxql.time_literal(NOW - fleetdata.RECENT)
    month_ago = fleetdata.influxql.time_literal(NOW - fleetdata.LOOKBACK)
    for item, part in zip(fleetdata.FACTS, parts, strict=False):
        assert f"time > {hour_ago if item.busy else month_ago}" in part
    older = fleetdata.older_statements(NOW, [("north", "k1"), ("south", "k2")]).split("; ")
    assert len(older) == len(fleetdata.FOLLOW_UP)
    assert all(f"time > {month_ago}" in p and "=~ /^(?:north|south)$/" in p and "=~ /^(?:k1|k2)$/" in p
               for p in older)


def test_older_facts_fill_only_the_quiet_kits_asked_for() -> None:
    quiet = {("north", "k1"): KitFacts("north", "k1")}
    ms = int(NOW.timestamp() * 1000) - 86_400_000
    fleetdata.apply_older(quiet, fleetdata.FOLLOW_UP.index(fleetdata.FACTS[0]), {"site": "north", "kit": "k1"},
                          [[ms, 1, "1.2.0"]])
    fleetdata.apply_older(quiet, 0, {"site": "south", "kit": "k1"}, [[ms, 1, None]])  # the regexes' superset
    assert (quiet[("north", "k1")].last_seen, quiet[("north", "k1")].fw) == (NOW - timedelta(days=1), "1.2.0")
    assert list(quiet) == [("north", "k1")]
