"""The commands: `lauks site alerts` stores a site's settings and refuses bad input with a sentence and nothing
stored; `lauks alerts test-mail` reaches the contacts or says why not; `lauks alerts check --once` sends."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from conftest import SCHOOL, SITE, Mailbox
from sqlalchemy.orm import Session, sessionmaker

from lauks import schema
from metastore.db import AlertSite
from stack.cli import main


@pytest.fixture
def lauks(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
          capsys: pytest.CaptureFixture[str]) -> object:
    """`lauks ...` in this process, on this test's store: (exit status, stdout, stderr)."""
    monkeypatch.setenv("LAUKS_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("LAUKS_API_DATABASE_URL", store_url)
    for name in ("LAUKS_SMTP_HOST", "LAUKS_SMTP_USERNAME", "LAUKS_SMTP_PASSWORD", "LAUKS_ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        status = main(list(args))
        out = capsys.readouterr()
        return status, out.out, out.err

    return run


def stored(sessions: sessionmaker[Session]) -> AlertSite | None:
    with sessions() as session:
        return session.get(AlertSite, SITE)


@pytest.mark.both_stores
def test_site_alerts_stores_contacts_mode_quiet_hours_and_holidays(lauks: object,
                                                                   store: sessionmaker[Session]) -> None:
    status, out, err = lauks("site", "alerts", SITE, "--contact", "Ozola@North.lv", "--contact",  # type: ignore[operator]
                             "ivan@north.lv:ru", "--digest", "--digest-at", "07:15", "--quiet", "21:30-06:45",
                             "--holiday", "2026-12-21:2027-01-04", "--holiday", "2026-11-18", "--silent-intervals", "5")
    assert (status, err) == (0, "")
    assert "ozola@north.lv:lv, ivan@north.lv:ru" in out and "a daily digest at 07:15" in out
    row = stored(store)
    assert row is not None
    assert row.contacts == [{"email": "ozola@north.lv", "language": "lv"}, {"email": "ivan@north.lv", "language": "ru"}]
    assert (row.digest, row.digest_at, row.quiet_from, row.quiet_to, row.silent_intervals) == (
        True, "07:15", "21:30", "06:45", 5)
    assert row.holidays == [["2026-11-18", "2026-11-18"], ["2026-12-21", "2027-01-04"]]
    status, out, _ = lauks("site", "alerts", SITE, "--per-incident", "--quiet", "off")  # type: ignore[operator]
    row = stored(store)
    assert status == 0 and row is not None and (row.digest, row.quiet_from, len(row.contacts)) == (False, None, 2)


@pytest.mark.both_stores
@pytest.mark.parametrize(("args", "problem"), [
    (("--contact", "teacher at north.lv"), "'teacher at north.lv' is not an e-mail address a mail server takes"),
    (("--contact", "teacher@north.lv:de"), "must be one of lv, lt, ru, en"),
    (("--quiet", "22:00"), "write them as HH:MM-HH:MM"),
    (("--holiday", "2027-01-04:2026-12-21"), "ends before it starts"),
    (("--silent-intervals", "0"), "from 2 to 1000")])
def test_site_alerts_refuses_bad_input_with_a_sentence_and_stores_nothing(
        lauks: object, store: sessionmaker[Session], args: tuple[str, ...], problem: str) -> None:
    # a good contact first: one bad value refuses the whole command
    status, out, err = lauks("site", "alerts", SITE, "--contact", "ok@north.lv", *args)  # type: ignore[operator]
    assert status == 1 and out == ""
    assert err.startswith("lauks: ") and problem in err
    assert stored(store) is None


def test_site_alerts_for_an_unknown_site_says_so(lauks: object, store: sessionmaker[Session]) -> None:
    status, _, err = lauks("site", "alerts", "south", "--contact", "a@south.lv")  # type: ignore[operator]
    assert status == 1 and "there is no site 'south'" in err


def test_test_mail_reaches_each_contact_in_their_language(lauks: object, store: sessionmaker[Session],
                                                          smtp: Mailbox, monkeypatch: pytest.MonkeyPatch) -> None:
    lauks("site", "alerts", SITE, "--contact", "a@north.lv:lt", "--contact", "b@north.lv:en")  # type: ignore[operator]
    monkeypatch.setenv("LAUKS_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("LAUKS_SMTP_PORT", str(smtp.port))
    monkeypatch.setenv("LAUKS_SMTP_SECURITY", "none")
    status, out, err = lauks("alerts", "test-mail", SITE)  # type: ignore[operator]
    assert (status, err) == (0, ""), err
    assert smtp.subjects() == [f"[Lauks] Bandomasis laiškas {SCHOOL}", f"[Lauks] A test mail for {SCHOOL}"]
    assert "sent to a@north.lv (lt)" in out


def test_test_mail_to_a_server_that_refuses_says_why_and_keeps_nothing(
        lauks: object, store: sessionmaker[Session], smtp: Mailbox, monkeypatch: pytest.MonkeyPatch) -> None:
    lauks("site", "alerts", SITE, "--contact", "a@north.lv")  # type: ignore[operator]
    monkeypatch.setenv("LAUKS_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("LAUKS_SMTP_PORT", str(smtp.port))
    monkeypatch.setenv("LAUKS_SMTP_SECURITY", "none")
    smtp.refuse = "550 5.7.1 relaying denied"
    status, _, err = lauks("alerts", "test-mail", SITE)  # type: ignore[operator]
    assert status == 1
    assert "refused the recipient (a@north.lv: 550 5.7.1 relaying denied)" in err
    status, out, _ = lauks("alerts", "check")  # type: ignore[operator]
    assert "queued" not in out  # a test is for the person at the keyboard: nothing waits for a retry


def test_without_an_smtp_server_development_writes_the_mails_to_files(lauks: object, store: sessionmaker[Session],
                                                                      tmp_path: Path) -> None:
    lauks("site", "alerts", SITE, "--contact", "a@north.lv:ru")  # type: ignore[operator]
    status, out, _ = lauks("alerts", "test-mail", SITE)  # type: ignore[operator]
    assert status == 0 and f"the mails are in {tmp_path / 'mail'}/" in out
    [mail] = (tmp_path / "mail").glob("*.eml")
    assert "Subject:" in mail.read_text() and (tmp_path / "mail").stat().st_mode & 0o077 == 0


def test_production_without_a_mail_server_refuses_to_start(lauks: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAUKS_ENVIRONMENT", "production")
    monkeypatch.setenv("LAUKS_MQTT_PASSWORD", "a-real-secret-123456")
    status, _, err = lauks("alerts", "check", "--once")  # type: ignore[operator]
    assert status == 2 and "LAUKS_SMTP_HOST (the school's mail server)" in err


def test_check_once_opens_the_incidents_of_now_and_sends_their_mail(
        lauks: object, store: sessionmaker[Session], smtp: Mailbox, influx_url: str, database: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    lauks("site", "alerts", SITE, "--contact", "a@north.lv:en")  # type: ignore[operator]
    for name, value in (("LAUKS_SMTP_HOST", "127.0.0.1"), ("LAUKS_SMTP_PORT", str(smtp.port)),
                        ("LAUKS_SMTP_SECURITY", "none"), ("LAUKS_INFLUX_URL", influx_url),
                        ("LAUKS_INFLUX_DATABASE", database)):
        monkeypatch.setenv(name, value)
    now_ms = int(time.time() * 1000)
    line = schema.seen_line(SITE, "k1", now_ms - 3_600_000, samples=1, late=0, boot=1, fw="1.4.0")
    httpx.post(f"{influx_url}/write", params={"db": database, "precision": "ms"}, content=line.encode(),
               timeout=30).raise_for_status()
    status, out, err = lauks("alerts", "check", "--once")  # type: ignore[operator]
    assert (status, err) == (0, "")
    assert "opened\tnorth/k1\tsilent" in out and "1 mail(s) sent, 0 kept for a retry" in out
    assert "open\tnorth/k1\tsilent" in out  # k2 was never heard: nothing is known of it, so nothing opens
    assert smtp.subjects() == [f"[Lauks] {SCHOOL}: Kit k1 has sent nothing for 1 hr. Check its power and Wi-Fi"]
