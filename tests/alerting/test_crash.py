"""A process that dies at any point of a check or of sending: after the restart nothing is lost, and nothing
is sent twice except the one mail a server had accepted just before the death, which goes again with the same
Message-ID (mail programs show it once)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType

import pytest
from conftest import SITE, Mailbox, settings_for, site_alerts
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from alerting import outbox
from alerting.sender import SmtpTransport
from metastore.db import AlertIncident, AlertMail
from web.fleetdata import KitFacts

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
CONTACTS = [{"email": f"c{n}@north.lv", "language": language} for n, language in enumerate(("lv", "lt", "ru"))]


class Died(BaseException):
    """The process ends here (nothing catches it, as nothing catches SIGKILL)."""


def troubled(at: datetime) -> list[KitFacts]:
    """k1 silent, k2 on a low battery: two incidents, three contacts, six mails."""
    return [KitFacts(SITE, "k1", interval_s=60, last_seen=at - timedelta(hours=1)),
            KitFacts(SITE, "k2", interval_s=60, last_seen=at, battery=3.1)]


def counts(sessions: sessionmaker[Session]) -> tuple[int, int]:
    with sessions() as session:
        return (session.scalar(select(func.count()).select_from(AlertIncident)) or 0,
                session.scalar(select(func.count()).select_from(AlertMail)) or 0)


def check(sessions: sessionmaker[Session], at: datetime) -> None:
    with sessions() as session:
        outbox.evaluate(session, troubled(at), at, online_window_s=900)
        session.commit()


@pytest.mark.parametrize("dies_at", range(6))
def test_a_check_that_dies_while_queueing_leaves_nothing_and_the_next_queues_each_mail_once(
        store: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, dies_at: int) -> None:
    site_alerts(store, contacts=CONTACTS)
    real = outbox.queue
    calls = iter(range(100))

    def dying(*args: object, **kwargs: object) -> AlertMail:
        if next(calls) == dies_at:
            raise Died
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(outbox, "queue", dying)
    with pytest.raises(Died):
        check(store, NOW)
    assert counts(store) == (0, 0)
    monkeypatch.setattr(outbox, "queue", real)
    check(store, NOW + timedelta(minutes=1))
    check(store, NOW + timedelta(minutes=2))
    assert counts(store) == (2, 6)


class DiesAfterAccepted:
    """The real SMTP client, and a death right after the server accepted mail number ``dies_after``."""

    def __init__(self, real: SmtpTransport, dies_after: int) -> None:
        self.real, self.dies_after, self.sent = real, dies_after, 0

    def __enter__(self) -> DiesAfterAccepted:
        self.real.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.real.__exit__(kind, error, trace)

    def send(self, message: EmailMessage) -> None:
        self.real.send(message)
        if self.sent == self.dies_after:
            raise Died
        self.sent += 1


@pytest.mark.parametrize("dies_after", range(6))
def test_a_death_after_the_server_took_a_mail_sends_that_one_again_with_its_message_id_and_no_other(
        store: sessionmaker[Session], store_url: str, tmp_path: Path, smtp: Mailbox, dies_after: int) -> None:
    site_alerts(store, contacts=CONTACTS)
    check(store, NOW)
    settings = settings_for(store_url, tmp_path, smtp.port)
    with pytest.raises(Died):
        outbox.send_due(store, DiesAfterAccepted(SmtpTransport(settings), dies_after), settings.sender_address, NOW)
    result = outbox.send_due(store, SmtpTransport(settings), settings.sender_address, NOW + timedelta(minutes=1))
    assert result.sent == 6 - dies_after
    copies = Counter(str(m["Message-ID"]) for m in smtp.messages)
    assert len(copies) == 6 and sorted(copies.values()) == [1] * 5 + [2]
    with store() as session:
        assert session.scalar(select(func.count()).where(AlertMail.sent_at.is_(None))) == 0
