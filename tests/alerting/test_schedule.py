"""Digest, quiet hours and holidays through the metadata store to a real SMTP server: facts as plain KitFacts,
the clock moved by hand. In the school's zone (Europe/Riga, UTC+2 in March)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import SCHOOL, SITE, Mailbox, settings_for, site_alerts
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alerting import outbox
from alerting.sender import SmtpTransport
from metastore.db import AlertMail, AlertSite
from web.fleetdata import KitFacts

DAY = datetime(2026, 3, 10, tzinfo=UTC)  # a Tuesday
WINDOW = 900


def facts(at: datetime, *, silent: tuple[str, ...] = (), battery: float = 3.9) -> list[KitFacts]:
    return [KitFacts(SITE, name, interval_s=60, battery=battery if name == "k1" else 3.9,
                     last_seen=at - (timedelta(hours=1) if name in silent else timedelta(minutes=1)))
            for name in ("k1", "k2")]


class Clock:
    """One pass of `lauks alerts run` at a time the test chooses."""

    def __init__(self, sessions: sessionmaker[Session], store_url: str, tmp_path: Path, smtp: Mailbox) -> None:
        self.sessions = sessions
        self.settings = settings_for(store_url, tmp_path, smtp.port)

    def tick(self, at: datetime, kits: list[KitFacts]) -> int:
        with self.sessions() as session:
            outbox.evaluate(session, kits, at, online_window_s=WINDOW)
            session.commit()
        return outbox.send_due(self.sessions, SmtpTransport(self.settings), self.settings.sender_address, at).sent


@pytest.fixture
def clock(store: sessionmaker[Session], store_url: str, tmp_path: Path, smtp: Mailbox) -> Clock:
    return Clock(store, store_url, tmp_path, smtp)


@pytest.mark.both_stores
def test_a_digest_site_gets_one_mail_a_day_with_every_incident(clock: Clock, store: sessionmaker[Session],
                                                               smtp: Mailbox) -> None:
    site_alerts(store, digest=True, digest_at="07:30")
    night = DAY + timedelta(hours=1)  # 03:00 in Riga
    assert clock.tick(night, facts(night, silent=("k2",), battery=3.2)) == 0  # both open, nothing mailed yet
    for hour in (2, 3, 4, 5):  # up to 07:00 in Riga: before the digest
        at = DAY + timedelta(hours=hour)
        clock.tick(at, facts(at, silent=("k2",), battery=3.2) if hour < 4 else facts(at, battery=3.2))
    assert smtp.messages == []
    digest_time = DAY + timedelta(hours=5, minutes=30)  # 07:30 in Riga
    assert clock.tick(digest_time, facts(digest_time, battery=3.2)) == 1
    assert smtp.subjects() == [f"[Lauks] Daily report of {SCHOOL}: 1 kit needs attention"]
    text = smtp.text()
    assert "The battery of kit k1 is low: 3.20 V." in text
    assert "Kit k2 is reporting again. It began at 10/03/2026, 03:00 and ended at 10/03/2026, 06:00" in text
    for hour in range(6, 24):  # the rest of the day, and the day's second pass at the digest time
        at = DAY + timedelta(hours=hour)
        clock.tick(at, facts(at, battery=3.2))
    assert len(smtp.messages) == 1
    tomorrow = DAY + timedelta(days=1, hours=5, minutes=31)
    assert clock.tick(tomorrow, facts(tomorrow, battery=3.2)) == 1  # still low: said again the next day
    assert "k2" not in smtp.text() and "k1" in smtp.text()
    with store() as session:
        assert session.get(AlertSite, SITE).last_digest_on == "2026-03-11"  # type: ignore[union-attr]


def test_mail_made_in_quiet_hours_is_held_until_they_end_then_delivered(clock: Clock, store: sessionmaker[Session],
                                                                       smtp: Mailbox) -> None:
    site_alerts(store, quiet_from="21:00", quiet_to="07:00")
    late = DAY + timedelta(hours=20)  # 22:00 in Riga
    assert clock.tick(late, facts(late, silent=("k1",))) == 0
    with store() as session:
        [held] = session.scalars(select(AlertMail)).all()
        assert (held.sent_at, held.next_try_at) == (None, DAY + timedelta(days=1, hours=5))  # 07:00 in Riga
    back = DAY + timedelta(hours=23)
    clock.tick(back, facts(back))  # k1 is back at 01:00: its recovery mail waits too
    before = DAY + timedelta(days=1, hours=4, minutes=59)
    assert clock.tick(before, facts(before)) == 0
    morning = DAY + timedelta(days=1, hours=5)
    assert clock.tick(morning, facts(morning)) == 2
    assert smtp.subjects() == [f"[Lauks] {SCHOOL}: Kit k1 has sent nothing for 1 hr. Check its power and Wi-Fi",
                               f"[Lauks] {SCHOOL}: Kit k1 is reporting again"]


def test_nothing_is_sent_on_holidays_and_what_is_still_wrong_after_them_is(clock: Clock, store: sessionmaker[Session],
                                                                          smtp: Mailbox) -> None:
    site_alerts(store, holidays=[["2026-03-09", "2026-03-15"]])
    noon = DAY + timedelta(hours=10)
    clock.tick(noon, facts(noon, silent=("k2",), battery=3.1))
    later = noon + timedelta(hours=2)
    clock.tick(later, facts(later, silent=("k2",)))  # k1 charged during the holiday
    assert smtp.messages == []
    monday = datetime(2026, 3, 16, 6, 0, tzinfo=UTC)
    assert clock.tick(monday, facts(monday, silent=("k2",))) == 1
    assert smtp.subjects() == [f"[Lauks] {SCHOOL}: Kit k2 has sent nothing for 1 hr. Check its power and Wi-Fi"]
