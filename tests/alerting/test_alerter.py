"""The alerter end to end: facts from a real InfluxDB, incidents and the outbox in the metadata store, mail to a
real SMTP server on loopback; the clock is moved, never waited for."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from conftest import KITS, SCHOOL, SITE, SMTP_PASSWORD, SMTP_USER, Mailbox, settings_for, site_alerts
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alerting.service import ALIVE_FILE, Alerter, run
from alerting.settings import AlertSettings
from dashboards.alerts import REJECTION_BURST
from lauks import lineprotocol, schema
from lauks.influx import InfluxClient
from lauks.services import Influxd, free_port
from metastore.db import AlertIncident, AlertMail

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)  # the clock at the start of each test
MINUTE = timedelta(minutes=1)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class Store:
    """Points straight into this test's InfluxDB database, as the gateway writes them."""

    def __init__(self, influxd: Influxd, database: str) -> None:
        self.url, self.database = influxd.url, database

    def write(self, *lines: str) -> None:
        answer = httpx.post(f"{self.url}/write", params={"db": self.database, "precision": "ms"},
                            content="\n".join(lines).encode(), timeout=30)
        assert answer.status_code == 204, answer.text

    def heard(self, kit: str, at: datetime, **readings: float) -> None:
        """A kit that reports every minute sent readings at ``at``."""
        lines = [schema.seen_line(SITE, kit, ms(at), samples=1, late=0, boot=1, fw="1.4.0"),
                 lineprotocol.line(schema.KIT_STATUS, {schema.SITE: SITE, schema.KIT: kit},
                                   {schema.STATE: "online", schema.INTERVAL_S: 60}, ms(at) - 1)]
        if readings:
            lines.append(lineprotocol.line(schema.READINGS, {schema.SITE: SITE, schema.KIT: kit},
                                           {k: float(v) for k, v in readings.items()}, ms(at)))
        self.write(*lines)


@pytest.fixture
def points(influxd: Influxd, database: str) -> Store:
    store = Store(influxd, database)
    for kit in KITS:
        store.heard(kit, NOW - MINUTE)
    return store


@pytest.fixture
async def make_alerter(store: sessionmaker[Session], store_url: str, tmp_path: Path, influx_url: str, database: str,
                       smtp: Mailbox) -> AsyncIterator[Callable[..., Alerter]]:
    """A new alerter on the same store each call: a restart of `lauks alerts run`."""
    clients: list[InfluxClient] = []

    def make(**settings: object) -> Alerter:
        values: dict[str, object] = {"influx_url": influx_url, "influx_database": database, **settings}
        client = InfluxClient(influx_url)
        clients.append(client)
        return Alerter(settings_for(store_url, tmp_path, int(values.pop("smtp_port", smtp.port)), **values), store,
                       client)

    yield make
    for client in clients:
        await client.aclose()


def mails(sessions: sessionmaker[Session]) -> list[AlertMail]:
    with sessions() as session:
        return list(session.scalars(select(AlertMail).order_by(AlertMail.id)))


async def test_a_silent_kit_gets_one_mail_none_while_silent_and_one_when_it_reports_again(
        points: Store, store: sessionmaker[Session], make_alerter: Callable[..., Alerter], smtp: Mailbox) -> None:
    site_alerts(store)
    alerter = make_alerter()
    assert (await alerter.tick(NOW)).sent.sent == 0
    points.heard("k2", NOW + 19 * MINUTE)
    result = await alerter.tick(NOW + 20 * MINUTE)  # k1: 21 minutes without readings, every minute its interval
    assert result.evaluated is not None and [(i.kit, i.kind) for i in result.evaluated.opened] == [("k1", "silent")]
    assert smtp.subjects() == [f"[Lauks] {SCHOOL}: Kit k1 has sent nothing for 21 mins. Check its power and Wi-Fi"]
    assert smtp.messages[0]["To"] == "teacher@north.lv"
    assert "What to do: check the kit's power and its Wi-Fi" in smtp.text()
    for minutes in (21, 40, 90):
        points.heard("k2", NOW + minutes * MINUTE)  # k2 reports all along
        await alerter.tick(NOW + minutes * MINUTE)
    assert len(smtp.messages) == 1
    points.heard("k1", NOW + 91 * MINUTE)
    points.heard("k2", NOW + 91 * MINUTE)
    await alerter.tick(NOW + 92 * MINUTE)
    assert smtp.subjects()[1:] == [f"[Lauks] {SCHOOL}: Kit k1 is reporting again"]
    points.heard("k1", NOW + 93 * MINUTE)
    points.heard("k2", NOW + 93 * MINUTE)
    await alerter.tick(NOW + 93 * MINUTE)
    assert len(smtp.messages) == 2


async def test_a_low_battery_and_a_burst_of_rejections_each_get_their_mail(
        points: Store, store: sessionmaker[Session], make_alerter: Callable[..., Alerter], smtp: Mailbox) -> None:
    site_alerts(store)
    points.heard("k1", NOW, battery=3.21)
    points.write(schema.rejection_line(SITE, "k2", "out_of_range", "temperature 85.3 is above 60", ms(NOW - MINUTE),
                                       REJECTION_BURST + 5))
    points.heard("k2", NOW)
    await make_alerter().tick(NOW + MINUTE)
    assert sorted(smtp.subjects()) == [
        f"[Lauks] {SCHOOL}: Readings of kit k2 are being rejected: {REJECTION_BURST + 5} in the last hour. "
        "Check its sensor wiring",
        f"[Lauks] {SCHOOL}: The battery of kit k1 is low: 3.21 V. Charge or replace it soon"]


async def test_a_restart_between_queueing_and_sending_sends_each_mail_once(
        points: Store, store: sessionmaker[Session], make_alerter: Callable[..., Alerter], smtp: Mailbox) -> None:
    site_alerts(store, contacts=[{"email": "teacher@north.lv", "language": "lv"},
                                 {"email": "head@north.lv", "language": "ru"}])
    first = make_alerter()
    first.evaluate(await first.facts(NOW + 20 * MINUTE), NOW + 20 * MINUTE)  # queued, then the process died
    assert smtp.messages == []
    again = make_alerter()
    await again.tick(NOW + 21 * MINUTE)
    await again.tick(NOW + 22 * MINUTE)
    assert sorted(str(m["To"]) for m in smtp.messages) == ["head@north.lv", "head@north.lv", "teacher@north.lv",
                                                           "teacher@north.lv"]  # k1 and k2, once each
    assert {str(m["Subject"]).split(": ")[1][:10] for m in smtp.messages} == {"Komplekts ", "Комплект k"}
    await make_alerter().tick(NOW + 23 * MINUTE)
    assert len(smtp.messages) == 4
    with store() as session:
        assert len(session.scalars(select(AlertIncident)).all()) == 2


async def test_a_recipient_the_server_refuses_is_kept_and_sent_once_the_server_takes_it(
        points: Store, store: sessionmaker[Session], make_alerter: Callable[..., Alerter], smtp: Mailbox) -> None:
    site_alerts(store)
    points.heard("k2", NOW + 19 * MINUTE)
    smtp.refuse = "550 5.1.1 <teacher@north.lv>: mailbox unavailable"
    alerter = make_alerter()
    result = await alerter.tick(NOW + 20 * MINUTE)
    assert (result.sent.sent, result.sent.failed) == (0, 1)
    assert "refused the recipient" in result.sent.errors[0] and "550 5.1.1" in result.sent.errors[0]
    [kept] = mails(store)
    assert (kept.sent_at, kept.attempts) == (None, 1) and kept.last_error == result.sent.errors[0]
    smtp.refuse = None
    assert (await alerter.tick(NOW + 20 * MINUTE + timedelta(seconds=30))).sent.sent == 0  # retried after a minute
    assert (await alerter.tick(NOW + 22 * MINUTE)).sent.sent == 1
    # as it was made, not made again
    assert smtp.subjects() == [f"[Lauks] {SCHOOL}: Kit k1 has sent nothing for 21 mins. Check its power and Wi-Fi"]
    assert mails(store)[0].sent_at == NOW + 22 * MINUTE


async def test_a_server_that_is_not_there_keeps_the_mail_with_a_clear_error(
        points: Store, store: sessionmaker[Session], make_alerter: Callable[..., Alerter], smtp: Mailbox) -> None:
    site_alerts(store)
    points.heard("k2", NOW + 19 * MINUTE)
    nobody = free_port()
    result = await make_alerter(smtp_port=nobody).tick(NOW + 20 * MINUTE)
    assert result.sent.failed == 1
    assert result.sent.errors == [f"the mail server 127.0.0.1:{nobody} did not answer ([Errno 111] Connection "
                                  "refused): check LAUKS_SMTP_HOST and LAUKS_SMTP_PORT, and that it runs"]
    assert mails(store)[0].sent_at is None
    assert (await make_alerter().tick(NOW + 30 * MINUTE)).sent.sent == 1  # the server is set right, and restarted
    assert len(smtp.messages) == 1


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # on loopback, in a test
async def test_a_refused_login_keeps_the_mail_and_the_right_password_sends_it(
        points: Store, store: sessionmaker[Session], make_alerter: Callable[..., Alerter],
        smtp_with_login: Mailbox) -> None:
    site_alerts(store)
    points.heard("k2", NOW + 19 * MINUTE)
    port = smtp_with_login.port
    wrong = await make_alerter(smtp_port=port, smtp_username=SMTP_USER, smtp_password="guess").tick(NOW + 20 * MINUTE)
    assert wrong.sent.failed == 1 and "refused the login of 'lauks-alerts' (535" in wrong.sent.errors[0]
    assert "LAUKS_SMTP_PASSWORD" in wrong.sent.errors[0]
    assert smtp_with_login.messages == []
    right = make_alerter(smtp_port=port, smtp_username=SMTP_USER, smtp_password=SMTP_PASSWORD)
    assert (await right.tick(NOW + 25 * MINUTE)).sent.sent == 1
    assert len(smtp_with_login.messages) == 1


def test_production_refuses_to_start_without_a_mail_server_or_with_a_default_password(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="LAUKS_SMTP_HOST"):
        AlertSettings(environment="production", mqtt_password="x" * 20, state_dir=tmp_path)
    with pytest.raises(ValueError, match="LAUKS_SMTP_PASSWORD"):
        AlertSettings(environment="production", mqtt_password="x" * 20, smtp_host="mail.north.lv",
                      smtp_from="lauks@north.lv", smtp_username="lauks", smtp_password="changeme")
    AlertSettings(environment="production", mqtt_password="x" * 20, smtp_host="mail.north.lv",
                  smtp_from="lauks@north.lv", smtp_username="lauks", smtp_password="a-real-secret-1234")


async def test_a_failed_update_gets_a_mail_and_a_confirmed_one_ends_it(
        points: Store, store: sessionmaker[Session], make_alerter: Callable[..., Alerter], smtp: Mailbox) -> None:
    site_alerts(store)
    tags = {schema.SITE: SITE, schema.KIT: "k2"}
    points.write(lineprotocol.line(schema.KIT_STATUS, tags, {
        schema.STATE: "online", schema.UPDATE_STATE: "rolled_back", schema.UPDATE_VERSION: "1.5.0",
        schema.UPDATE_REASON: "main.py: ImportError: no module named 'bme280x'"}, ms(NOW)))
    alerter = make_alerter()
    await alerter.tick(NOW + MINUTE)
    assert smtp.subjects() == [f"[Lauks] {SCHOOL}: The update of kit k2 to version 1.5.0 failed. Fix the release and "
                               "offer it again"]
    assert "The kit said: main.py: ImportError: no module named 'bme280x'" in smtp.text()
    points.write(lineprotocol.line(schema.KIT_STATUS, tags, {
        schema.STATE: "online", schema.UPDATE_STATE: "confirmed", schema.UPDATE_VERSION: "1.5.1"}, ms(NOW) + 60_000))
    points.heard("k1", NOW + 2 * MINUTE)
    points.heard("k2", NOW + 2 * MINUTE)
    await alerter.tick(NOW + 2 * MINUTE)
    assert smtp.subjects()[1:] == [f"[Lauks] {SCHOOL}: Kit k2 no longer reports a failed update"]


async def test_the_service_loop_checks_sends_and_says_it_is_alive_until_stopped(
        points: Store, store: sessionmaker[Session], store_url: str, tmp_path: Path, influx_url: str, database: str,
        smtp: Mailbox) -> None:
    site_alerts(store)
    stop = threading.Event()
    times = iter([NOW + 20 * MINUTE, NOW + 21 * MINUTE])

    def clock() -> datetime:
        moment = next(times)
        if moment == NOW + 21 * MINUTE:
            stop.set()  # the second check is the last
        return moment

    settings = settings_for(store_url, tmp_path, smtp.port, influx_url=influx_url, influx_database=database,
                            alerts_check_every_s=0.01)
    await asyncio.wait_for(run(settings, stop, clock), timeout=30)
    assert len(smtp.messages) == 2  # k1 and k2, silent since NOW, each once over the two checks
    assert (tmp_path / ALIVE_FILE).stat().st_mode & 0o777 == 0o600


async def test_two_checks_at_once_take_turns_and_send_each_mail_once(
        points: Store, store: sessionmaker[Session], make_alerter: Callable[..., Alerter], smtp: Mailbox) -> None:
    site_alerts(store)
    service, by_hand = make_alerter(), make_alerter()  # `lauks alerts run`, and `check --once` beside it
    await asyncio.gather(service.tick(NOW + 20 * MINUTE), by_hand.tick(NOW + 20 * MINUTE))
    assert len(smtp.messages) == 2  # k1 and k2, once each
    with store() as session:
        assert len(session.scalars(select(AlertIncident)).all()) == 2
