"""The mail server over STARTTLS and over TLS from the first byte, checked against the school's own CA; a server
that offers no STARTTLS, or a certificate nobody vouches for, is a clear error with the mail kept."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from conftest import Mailbox, settings_for

from alerting.sender import MailError, SmtpTransport
from lauks.tlsca import SchoolCa


def message() -> EmailMessage:
    from alerting.sender import build_message

    return build_message(sender="Lauks <alerts@north.lv>", recipient="teacher@north.lv", subject="[Lauks] a test",
                         text="text", html="<p>html</p>", message_id="<t1@north.lv>", date=datetime.now(UTC))


def test_starttls_with_the_schools_ca_delivers(smtp_starttls: Mailbox, school_ca: SchoolCa, store_url: str,
                                               tmp_path: Path) -> None:
    settings = settings_for(store_url, tmp_path, smtp_starttls.port, smtp_security="starttls",
                            smtp_ca_file=school_ca.ca_cert)
    with SmtpTransport(settings) as transport:
        transport.send(message())
    assert smtp_starttls.subjects() == ["[Lauks] a test"]


def test_tls_from_the_first_byte_delivers(smtps: Mailbox, school_ca: SchoolCa, store_url: str,
                                          tmp_path: Path) -> None:
    settings = settings_for(store_url, tmp_path, smtps.port, smtp_security="tls", smtp_ca_file=school_ca.ca_cert)
    with SmtpTransport(settings) as transport:
        transport.send(message())
    assert len(smtps.messages) == 1


def test_a_certificate_no_known_ca_signed_is_refused_with_what_to_check(smtp_starttls: Mailbox, store_url: str,
                                                                        tmp_path: Path) -> None:
    settings = settings_for(store_url, tmp_path, smtp_starttls.port, smtp_security="starttls")
    with pytest.raises(MailError, match=r"TLS with the mail server 127\.0\.0\.1:\d+ failed \(CERTIFICATE_VERIFY_FAILED"
                                        r"\).*LAUKS_SMTP_CA_FILE") as refused:
        SmtpTransport(settings).__enter__()
    assert refused.value.server and smtp_starttls.messages == []


def test_a_server_without_starttls_is_refused_rather_than_sent_to_in_clear(smtp: Mailbox, store_url: str,
                                                                           tmp_path: Path) -> None:
    settings = settings_for(store_url, tmp_path, smtp.port, smtp_security="starttls")
    with pytest.raises(MailError, match="does not offer STARTTLS: set LAUKS_SMTP_SECURITY"):
        SmtpTransport(settings).__enter__()
    assert smtp.messages == []
