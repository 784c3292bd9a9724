"""`lauks up` runs the alerter, and gives the demo site a contact once (a contact staff set stays theirs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from metastore import registry
from metastore.db import AlertSite, one_session
from stack.cli import build_parser
from stack.up import DEMO_CONTACT, DEMO_SITE, prepare_alerts, service_commands


def test_lauks_up_starts_the_alerter_as_one_of_its_services() -> None:
    _, available = build_parser()
    started = dict(service_commands(available, kits=3))
    assert started["alerts"][-2:] == ["alerts", "run"]


def test_the_demo_site_gets_a_contact_once_and_keeps_the_one_staff_set(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAUKS_API_DATABASE_URL", raising=False)
    url = f"sqlite:///{(tmp_path / 'lauks.db').resolve()}"
    with one_session(url) as session:
        registry.add_site(session, DEMO_SITE)
    prepare_alerts(tmp_path)
    with one_session(url) as session:
        row = session.get(AlertSite, DEMO_SITE)
        assert row is not None and row.contacts == [{"email": DEMO_CONTACT, "language": "lv"}]
        row.contacts = [{"email": "me@school.lv", "language": "en"}]
        session.commit()
    prepare_alerts(tmp_path)
    with one_session(url) as session:
        assert session.get(AlertSite, DEMO_SITE).contacts == [  # type: ignore[union-attr]
            {"email": "me@school.lv", "language": "en"}]
