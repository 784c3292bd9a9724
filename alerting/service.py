"""``lauks alerts run``: every minute, the fleet page's facts from InfluxDB, one pass of the rules kept in the
metadata store, then the mails that are due handed to the SMTP server. ``now`` is handed in, so tests move the
clock instead of waiting."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from alerting import outbox
from alerting.sender import Transport, sender_address, transport
from alerting.settings import AlertSettings
from lauks.influx import InfluxClient, InfluxError
from lauks.privatefile import write_private
from metastore.db import open_store
from web import fleetdata

log = logging.getLogger("lauks.alerts")
ALIVE_FILE = "alerts.alive"  # written after every check that ran to its end
LOCK_FILE = "alerts.lock"


def _lock(path: Path) -> int:
    """An open file of ``path`` holding its exclusive lock (waiting for it): the kernel drops the lock when the
    file is closed or the process dies, so a crashed check never leaves it held."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    return fd


@dataclass
class TickResult:
    evaluated: outbox.PassResult | None  # None: InfluxDB did not answer, so no incident changed
    sent: outbox.SendResult
    influx_error: str | None = None


class Alerter:
    def __init__(self, settings: AlertSettings, sessions: sessionmaker[Session], client: InfluxClient,
                 mail: Transport | None = None) -> None:
        self.settings = settings
        self.sessions = sessions
        self.client = client
        self.mail = mail if mail is not None else transport(settings)
        self.sender = sender_address(settings)
        self.backfill = fleetdata.BackfillHours()

    @property
    def fleet_url(self) -> str:
        return f"{self.settings.api_public_url.rstrip('/')}/fleet" if self.settings.api_public_url else ""

    async def facts(self, now: datetime) -> list[fleetdata.KitFacts]:
        with self.sessions() as session:
            registered = outbox.registered_kits(session)
        return await fleetdata.fetch(self.client, self.settings.influx_database, registered, now,
                                     backfill=self.backfill)

    def evaluate(self, kits: list[fleetdata.KitFacts], now: datetime) -> outbox.PassResult:
        with self.sessions() as session:
            result = outbox.evaluate(session, kits, now, online_window_s=self.settings.api_online_window_s,
                                     default_zone=self.settings.api_timezone, fleet_url=self.fleet_url)
            session.commit()
        for incident in result.opened:
            log.info("incident opened: %s/%s %s %s", incident.site, incident.kit, incident.kind, incident.detail)
        for incident in result.recovered:
            log.info("incident ended: %s/%s %s", incident.site, incident.kit, incident.kind)
        return result

    def send(self, now: datetime) -> outbox.SendResult:
        return outbox.send_due(self.sessions, self.mail, self.sender, now)

    async def tick(self, now: datetime | None = None) -> TickResult:
        """One check: the facts, the rules, the mail. Mails already queued go out even when InfluxDB is down.
        One check at a time per state folder: ``lauks alerts check --once`` beside the service waits for the
        service's check, instead of reading the same incidents and sending the same mails."""
        fd = await asyncio.to_thread(_lock, self.settings.state_dir / LOCK_FILE)
        try:
            return await self._tick(now or datetime.now(UTC))
        finally:
            os.close(fd)  # and with it the lock

    async def _tick(self, now: datetime) -> TickResult:
        evaluated: outbox.PassResult | None = None
        problem = None
        try:
            kits = await self.facts(now)
        except InfluxError as error:
            problem = f"the readings store did not answer ({error}); incidents are checked again next minute"
            log.warning("%s", problem)
        else:
            evaluated = await asyncio.to_thread(self.evaluate, kits, now)
        sent = await asyncio.to_thread(self.send, now)
        return TickResult(evaluated, sent, problem)


async def run(settings: AlertSettings, stop: threading.Event,
              clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
    sessions = open_store(settings.database_url)
    where = (f"{settings.smtp_host}:{settings.smtp_port}" if settings.smtp_host
             else f"no SMTP server set: mails are written to {settings.mail_dir}/")
    log.info("alerts: checking every %.0f s; mail via %s", settings.alerts_check_every_s, where)
    try:
        async with settings.influx_client() as client:
            alerter = Alerter(settings, sessions, client)
            while not stop.is_set():
                try:
                    await alerter.tick(clock())
                except Exception:  # one failed pass is logged; the loop goes on, as the gateway's does
                    log.exception("alerts: a check failed")
                else:
                    # the container's health check reads its age: a loop that hangs is restarted
                    await asyncio.to_thread(write_private, settings.state_dir / ALIVE_FILE,
                                            f"{datetime.now(UTC).isoformat()}\n")
                await asyncio.to_thread(stop.wait, settings.alerts_check_every_s)
    finally:
        sessions.kw["bind"].dispose()
