"""The pure core: conditions from a kit's facts, incidents opening and ending, and the mails a site's settings
call for (per incident, digest, quiet hours, holidays), with plain KitFacts and a moved clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from alerting import policy as p
from alerting.policy import Contact, SitePolicy
from alerting.rules import DIGEST, QUEUED, SKIPPED, Incident, observe, plan, transitions
from dashboards.alerts import REJECTION_BURST
from dashboards.definition import LOW_BATTERY_V
from web.fleetdata import KitFacts

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)  # 11:00 in Riga
RIGA = ZoneInfo("Europe/Riga")
WINDOW = 900
TEACHER = Contact("teacher@north.lv", "lv")


def kit(name: str = "k1", *, minutes_ago: float = 1, at: datetime = NOW, **fields: object) -> KitFacts:
    facts = KitFacts("north", name, interval_s=60, **fields)  # type: ignore[arg-type]
    facts.last_seen = at - timedelta(minutes=minutes_ago)
    return facts


def school(**fields: object) -> SitePolicy:
    return SitePolicy("north", "Ziemeļu skola", RIGA, contacts=(TEACHER,), **fields)  # type: ignore[arg-type]


def step(incidents: list[Incident], kits: list[KitFacts], policy: SitePolicy, now: datetime) -> list[str]:
    """One pass: transitions, then the mails planned, as 'kind kit incident-kind' strings."""
    opened, _ = transitions(incidents, kits, {policy.site: policy}, now, WINDOW)
    incidents += opened
    active = [i for i in incidents if i.is_open or "pending" in (i.open_notice, i.recovery_notice)]
    mails, _digest = plan(policy, active, now)
    return [f"{m.kind} {','.join(i.kit + ':' + i.kind for i in (*m.incidents, *m.recovered))}" for m in mails]


def test_a_kit_is_silent_after_the_sites_number_of_intervals_but_never_inside_the_online_window() -> None:
    hourly = KitFacts("north", "h", interval_s=3600, last_seen=NOW - timedelta(hours=2.5))
    assert observe(hourly, NOW, 3, WINDOW)["silent"] == "fine"
    assert isinstance(observe(hourly, NOW, 2, WINDOW)["silent"], dict)  # the site said two intervals
    assert observe(kit(minutes_ago=10), NOW, 3, WINDOW)["silent"] == "fine"  # ten intervals, but online still
    assert isinstance(observe(kit(minutes_ago=16), NOW, 3, WINDOW)["silent"], dict)
    assert observe(KitFacts("north", "new"), NOW, 3, WINDOW)["silent"] == "unknown"  # never heard: no incident


def test_battery_burst_and_failed_update_use_the_fleet_pages_thresholds() -> None:
    assert observe(kit(battery=LOW_BATTERY_V - 0.01), NOW, 3, WINDOW)["low_battery"] == {"volts": 3.39}
    assert observe(kit(battery=LOW_BATTERY_V), NOW, 3, WINDOW)["low_battery"] == "fine"
    burst = observe(kit(rejections_1h={"out_of_range": REJECTION_BURST + 1}), NOW, 3, WINDOW)["rejection_burst"]
    assert burst == {"count": REJECTION_BURST + 1, "reasons": [["out_of_range", REJECTION_BURST + 1]]}
    assert observe(kit(rejections_1h={"out_of_range": REJECTION_BURST}), NOW, 3, WINDOW)["rejection_burst"] == "fine"
    failed = kit()
    failed.update_state, failed.update_version, failed.update_reason = "rolled_back", "1.5.0", "import failed"
    assert observe(failed, NOW, 3, WINDOW)["update_failed"] == {"state": "rolled_back", "version": "1.5.0",
                                                                 "reason": "import failed"}
    failed.update_state = "confirmed"
    assert observe(failed, NOW, 3, WINDOW)["update_failed"] == "fine"


def test_a_low_battery_is_fine_again_only_clearly_above_the_threshold() -> None:
    incidents: list[Incident] = []
    policy = school()
    assert step(incidents, [kit(battery=3.35)], policy, NOW) == ["opened k1:low_battery"]
    assert step(incidents, [kit(battery=3.42)], policy, NOW + timedelta(minutes=1)) == []  # flickers across it
    assert step(incidents, [kit(battery=3.55)], policy, NOW + timedelta(minutes=2)) == ["recovered k1:low_battery"]


def test_one_mail_when_an_incident_opens_none_while_it_lasts_and_one_when_it_ends() -> None:
    incidents: list[Incident] = []
    policy = school()
    assert step(incidents, [kit(minutes_ago=20)], policy, NOW) == ["opened k1:silent"]
    assert step(incidents, [kit(minutes_ago=21)], policy, NOW + timedelta(minutes=1)) == []
    assert step(incidents, [kit(minutes_ago=0)], policy, NOW + timedelta(minutes=2)) == ["recovered k1:silent"]
    assert step(incidents, [kit(minutes_ago=0)], policy, NOW + timedelta(minutes=3)) == []
    assert [(i.open_notice, i.recovery_notice) for i in incidents] == [(QUEUED, QUEUED)]


def test_mail_made_in_quiet_hours_waits_for_their_end_in_the_schools_zone() -> None:
    policy = school(quiet=(time(22, 0), time(7, 0)))
    late = datetime(2026, 3, 10, 21, 30, tzinfo=UTC)  # 23:30 in Riga
    incidents: list[Incident] = []
    opened, _ = transitions(incidents, [kit(minutes_ago=20)], {"north": policy}, late, WINDOW)
    mails, _ = plan(policy, opened, late)
    assert [m.not_before for m in mails] == [datetime(2026, 3, 11, 5, 0, tzinfo=UTC)]  # 07:00 in Riga
    assert policy.mail_from(datetime(2026, 3, 10, 12, 0, tzinfo=UTC)) == datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    early = datetime(2026, 3, 11, 3, 0, tzinfo=UTC)  # 05:00 in Riga, after midnight
    assert policy.mail_from(early) == datetime(2026, 3, 11, 5, 0, tzinfo=UTC)


def test_holidays_send_nothing_and_after_them_only_what_is_still_wrong_is_mailed() -> None:
    policy = school(holidays=((date(2026, 3, 9), date(2026, 3, 13)),))
    incidents: list[Incident] = []
    battery = kit(battery=3.2)
    assert step(incidents, [kit("k2", minutes_ago=30), battery], policy, NOW) == []
    assert len(incidents) == 2  # tracked all the same
    battery.battery = 3.9  # charged during the holiday: nobody need hear of it
    assert step(incidents, [kit("k2", minutes_ago=30), battery], policy, NOW + timedelta(hours=1)) == []
    assert [i.open_notice for i in incidents if i.kind == "low_battery"] == [SKIPPED]
    after = datetime(2026, 3, 14, 8, 0, tzinfo=UTC)
    battery.last_seen = after
    assert step(incidents, [kit("k2", minutes_ago=3000), battery], policy, after) == ["opened k2:silent"]


def test_a_digest_site_gets_one_mail_a_day_with_every_incident() -> None:
    policy = school(digest=True, digest_at=time(8, 0))
    incidents: list[Incident] = []
    night = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)  # 05:00 in Riga: before the digest
    assert step(incidents, [kit("k1", battery=3.1, at=night), kit("k2", minutes_ago=30, at=night)], policy,
                night) == []
    eight = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)  # 08:00 in Riga; k2 is back
    mails = step(incidents, [kit("k1", battery=3.1, at=eight), kit("k2", at=eight)], policy, eight)
    assert mails == ["digest k1:low_battery,k2:silent"]
    assert {(i.kit, i.open_notice, i.recovery_notice) for i in incidents} == {("k1", DIGEST, "pending"),
                                                                              ("k2", DIGEST, DIGEST)}


def test_a_digest_is_made_once_a_day() -> None:
    policy = school(digest=True, last_digest_on=date(2026, 3, 10))
    assert not policy.digest_due(datetime(2026, 3, 10, 20, 0, tzinfo=UTC))
    assert policy.digest_due(datetime(2026, 3, 11, 6, 0, tzinfo=UTC))
    assert not policy.digest_due(datetime(2026, 3, 11, 5, 59, tzinfo=UTC))  # 07:59 in Riga


def test_a_retired_kit_ends_its_incidents_without_a_mail() -> None:
    incidents: list[Incident] = []
    policy = school()
    assert step(incidents, [kit(minutes_ago=20)], policy, NOW) == ["opened k1:silent"]
    assert step(incidents, [], policy, NOW + timedelta(minutes=1)) == []
    assert (incidents[0].recovered_at, incidents[0].recovery_notice) == (NOW + timedelta(minutes=1), SKIPPED)


@pytest.mark.parametrize(("typed", "problem"), [
    ("teacher school.lv", "not an e-mail address"), ("teacher@school", "not an e-mail address"),
    ("a@@school.lv", "not an e-mail address"), ("teacher@school.lv:de", "must be one of lv, lt, ru, en"),
    ("<teacher@school.lv>", "not an e-mail address"), ("x" * 65 + "@school.lv", "not an e-mail address")])
def test_a_bad_contact_is_refused_with_what_to_write(typed: str, problem: str) -> None:
    with pytest.raises(p.PolicyError, match=problem):
        p.parse_contact(typed)


def test_a_contact_without_a_language_gets_the_schools_zones() -> None:
    assert p.parse_contact("Ozola@Skola.LV", "Europe/Riga") == Contact("ozola@skola.lv", "lv")
    assert p.parse_contact("jonas@mokykla.lt", "Europe/Vilnius").language == "lt"
    assert p.parse_contact("ivan@school.lv:ru", "Europe/Riga").language == "ru"


@pytest.mark.parametrize(("parse", "typed", "problem"), [
    (p.parse_quiet, "22-07", "not a time of day"), (p.parse_quiet, "22:00", "HH:MM-HH:MM"),
    (p.parse_quiet, "07:00-07:00", "the same time"), (p.parse_holiday, "2026-12-24:2026-12-20", "ends before"),
    (p.parse_holiday, "24.12.2026", "not a date"), (p.parse_silent_intervals, 1, "from 2 to 1000")])
def test_bad_quiet_hours_holidays_and_intervals_are_refused(parse: object, typed: object, problem: str) -> None:
    with pytest.raises(p.PolicyError, match=problem):
        parse(typed)  # type: ignore[operator]
