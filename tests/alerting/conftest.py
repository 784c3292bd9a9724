"""The alert tests' parts: a real SMTP server (aiosmtpd) on a free loopback port that keeps what it is sent and
can be told to refuse, the metadata store with a school and its kits, and the alerter's settings for them."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy.orm import Session, sessionmaker

from alerting.settings import AlertSettings
from lauks.services import free_port
from lauks.tlsca import SchoolCa, init_school_ca
from metastore import registry
from metastore.db import AlertSite, open_store

SITE, SCHOOL, ZONE = "north", "Ziemeļu skola", "Europe/Riga"
KITS = ("k1", "k2")
SMTP_USER, SMTP_PASSWORD = "lauks-alerts", "s3cret-for-tests"


@dataclass
class Mailbox:
    """What the SMTP server accepted; ``refuse`` (e.g. ``550 5.1.1 ...``) makes it refuse every recipient."""

    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    refuse: str | None = None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if self.refuse:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK: kept"

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.messages]

    def text(self, index: int = -1) -> str:
        body = self.messages[index].get_body(("plain",))
        assert body is not None
        return str(body.get_content())  # type: ignore[attr-defined]

    def html(self, index: int = -1) -> str:
        body = self.messages[index].get_body(("html",))
        assert body is not None
        return str(body.get_content())  # type: ignore[attr-defined]


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    good = isinstance(auth_data, LoginPassword) and auth_data == (SMTP_USER.encode(), SMTP_PASSWORD.encode())
    return AuthResult(success=good, handled=False)  # handled=False: aiosmtpd answers 535 itself


def _serve(mailbox: Mailbox, **options: Any) -> Iterator[Mailbox]:
    controller = Controller(mailbox, hostname="127.0.0.1", port=mailbox.port, **options)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


@pytest.fixture
def smtp() -> Iterator[Mailbox]:
    """An SMTP server that takes any mail, without a login (a relay on the school's own network)."""
    yield from _serve(Mailbox(free_port()))


@pytest.fixture
def smtp_with_login() -> Iterator[Mailbox]:
    """An SMTP server that takes mail only after a login as SMTP_USER with SMTP_PASSWORD."""
    yield from _serve(Mailbox(free_port()), authenticator=_authenticate, auth_required=True, auth_require_tls=False)


@pytest.fixture
def store(store_url: str) -> Iterator[sessionmaker[Session]]:
    """The metadata store with the school SITE (zone ZONE) and its KITS."""
    sessions = open_store(store_url)
    with sessions() as session:
        registry.add_site(session, SITE, title=SCHOOL, timezone=ZONE)
        for kit in KITS:
            registry.add_kit(session, SITE, kit)
    yield sessions
    sessions.kw["bind"].dispose()


def site_alerts(sessions: sessionmaker[Session], **fields: Any) -> None:
    """The school's alert settings, as `lauks site alerts` stores them (its own tests run the command)."""
    with sessions() as session:
        row = session.get(AlertSite, SITE)
        if row is None:
            row = AlertSite(site=SITE, contacts=[], digest=False, digest_at="08:00", holidays=[])
            session.add(row)
        for key, value in {"contacts": [{"email": "teacher@north.lv", "language": "en"}], **fields}.items():
            setattr(row, key, value)
        session.commit()


def settings_for(store_url: str, tmp_path: Path, smtp_port: int, **extra: Any) -> AlertSettings:
    values: dict[str, Any] = {"state_dir": tmp_path, "api_database_url": store_url, "smtp_host": "127.0.0.1",
                              "smtp_port": smtp_port, "smtp_security": "none", "smtp_from": "Lauks <alerts@north.lv>",
                              "smtp_timeout_s": 5.0, **extra}
    return AlertSettings(**values)


@pytest.fixture
def school_ca(tmp_path: Path) -> SchoolCa:
    """The school's own CA and a server certificate for 127.0.0.1 (what `lauks tls init` makes)."""
    return init_school_ca(tmp_path / "tls", ["127.0.0.1"])


def _tls(ca: SchoolCa) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(ca.broker_cert, ca.broker_key)
    return context


@pytest.fixture
def smtp_starttls(school_ca: SchoolCa) -> Iterator[Mailbox]:
    """A submission server (587-like) that takes mail only after STARTTLS, with the school CA's certificate."""
    yield from _serve(Mailbox(free_port()), tls_context=_tls(school_ca), require_starttls=True)


@pytest.fixture
def smtps(school_ca: SchoolCa) -> Iterator[Mailbox]:
    """A server (465-like) that speaks TLS from the first byte."""
    yield from _serve(Mailbox(free_port()), ssl_context=_tls(school_ca))
