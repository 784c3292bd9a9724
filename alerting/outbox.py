"""Incidents and mails in the metadata store: a pass of the rules kept in one transaction, and the outbox that
hands mails to a transport one at a time, each marked sent only once the server took it.

A pass that dies before its commit leaves the store as it was, and the next pass decides again from the same
facts: nothing is sent twice for it and nothing is lost. A crash after the server accepted a mail and before its
commit sends that one mail again; it carries the same Message-ID, so mail programs show it once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from alerting import render
from alerting.policy import Contact, SitePolicy, parse_clock
from alerting.rules import PENDING, Incident, PlannedMail, plan, transitions
from alerting.sender import MailError, Transport, build_message
from lauks.zones import zone_problem
from metastore.db import AlertIncident, AlertMail, AlertSite, Kit, Site
from web.fleetdata import KitFacts

log = logging.getLogger("lauks.alerts")
RETRY_FIRST = timedelta(minutes=1)
RETRY_MOST = timedelta(hours=1)  # a server down all night is tried hourly; its mails go out when it is back


def retry_after(attempts: int) -> timedelta:
    return min(RETRY_FIRST * (1 << min(max(attempts - 1, 0), 16)), RETRY_MOST)


def policy_of(site: Site, row: AlertSite | None, default_zone: str, fleet_url: str = "") -> SitePolicy:
    zone_name = site.timezone if site.timezone and not zone_problem(site.timezone) else default_zone
    base = SitePolicy(site.name, site.title, ZoneInfo(zone_name), fleet_url=fleet_url)
    if row is None:
        return base
    quiet = ((parse_clock(row.quiet_from, "quiet"), parse_clock(row.quiet_to, "quiet"))
             if row.quiet_from and row.quiet_to else None)
    return SitePolicy(
        site.name, site.title, base.zone,
        contacts=tuple(Contact(c["email"], c["language"]) for c in row.contacts),
        digest=row.digest, digest_at=parse_clock(row.digest_at, "digest"), quiet=quiet,
        holidays=tuple((date.fromisoformat(a), date.fromisoformat(b)) for a, b in row.holidays),
        silent_intervals=row.silent_intervals or base.silent_intervals,
        last_digest_on=date.fromisoformat(row.last_digest_on) if row.last_digest_on else None,
        fleet_url=fleet_url)


def policies(session: Session, default_zone: str, fleet_url: str = "") -> dict[str, SitePolicy]:
    """Every site in service, with its alert settings (a site without any has no contacts)."""
    rows = {row.site: row for row in session.scalars(select(AlertSite))}
    return {site.name: policy_of(site, rows.get(site.name), default_zone, fleet_url)
            for site in session.scalars(select(Site).where(Site.retired_at.is_(None)))}


def registered_kits(session: Session) -> list[tuple[str, str]]:
    """The kits in service, of sites in service: those whose incidents anybody is told of."""
    found = session.execute(select(Kit.site, Kit.name).join(Site, Site.name == Kit.site)
                            .where(Kit.retired_at.is_(None), Site.retired_at.is_(None)))
    return [(site, name) for site, name in found]


def _incident(row: AlertIncident) -> Incident:
    return Incident(row.site, row.kit, row.kind, dict(row.detail), row.opened_at, row.recovered_at,
                    row.open_notice, row.recovery_notice, row.id)


def active_incidents(session: Session) -> list[tuple[AlertIncident, Incident]]:
    """Open incidents, and ended ones whose mails are not yet decided."""
    rows = session.scalars(select(AlertIncident).where(or_(
        AlertIncident.recovered_at.is_(None), AlertIncident.open_notice == PENDING,
        AlertIncident.recovery_notice == PENDING)).order_by(AlertIncident.id))
    return [(row, _incident(row)) for row in rows]


@dataclass
class PassResult:
    opened: list[Incident] = field(default_factory=list)
    recovered: list[Incident] = field(default_factory=list)
    queued: int = 0


def _render(policy: SitePolicy, mail: PlannedMail, now: datetime) -> render.Mail:
    language = mail.contact.language
    if mail.kind == "opened":
        return render.opened(policy, language, mail.incidents[0])
    if mail.kind == "recovered":
        return render.recovered(policy, language, mail.incidents[0])
    return render.digest(policy, language, mail.incidents, mail.recovered, now)


def queue(session: Session, policy: SitePolicy, contact: Contact, kind: str, mail: render.Mail,
          not_before: datetime, now: datetime) -> AlertMail:
    row = AlertMail(site=policy.site, recipient=contact.email, language=contact.language, kind=kind,
                    subject=mail.subject[:500], text=mail.text, html=mail.html, created_at=now,
                    next_try_at=not_before, attempts=0)
    session.add(row)
    return row


def evaluate(session: Session, kits: Iterable[KitFacts], now: datetime, *, online_window_s: int,
             default_zone: str = "UTC", fleet_url: str = "") -> PassResult:
    """One pass of the rules over the kits' facts: incidents opened and ended, mails queued. The caller commits."""
    sites = policies(session, default_zone, fleet_url)
    active = active_incidents(session)
    opened, recovered = transitions([incident for _row, incident in active], list(kits), sites, now,
                                    online_window_s)
    for incident in opened:
        row = AlertIncident(site=incident.site, kit=incident.kit, kind=incident.kind, detail=incident.detail,
                            opened_at=incident.opened_at, open_notice=PENDING, recovery_notice=PENDING)
        session.add(row)
        active.append((row, incident))
    by_site: dict[str, list[Incident]] = {}
    for _row, incident in active:
        by_site.setdefault(incident.site, []).append(incident)
    result = PassResult(opened, recovered)
    settings_rows = {row.site: row for row in session.scalars(select(AlertSite))}
    for site, incidents in by_site.items():
        policy = sites.get(site)
        if policy is None:
            continue  # a retired site: transitions ended its kits' incidents already
        planned, digest_made = plan(policy, incidents, now)
        for mail in planned:
            queue(session, policy, mail.contact, mail.kind, _render(policy, mail, now), mail.not_before, now)
            result.queued += 1
        if digest_made and site in settings_rows:
            settings_rows[site].last_digest_on = policy.local(now).date().isoformat()
    for site, policy in sites.items():  # a digest site with nothing to tell still has its day's digest done
        if policy.digest and site not in by_site and site in settings_rows and policy.contacts:
            if policy.digest_due(now) and not policy.on_holiday(now):
                settings_rows[site].last_digest_on = policy.local(now).date().isoformat()
    for row, incident in active:
        row.recovered_at = incident.recovered_at
        row.open_notice = incident.open_notice
        row.recovery_notice = incident.recovery_notice
    return result


@dataclass
class SendResult:
    sent: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def message_id(row: AlertMail, domain: str) -> str:
    return f"<lauks-alert-{row.id}-{int(row.created_at.timestamp())}@{domain}>"


def due(session: Session, now: datetime, limit: int = 200) -> Sequence[AlertMail]:
    return session.scalars(select(AlertMail).where(AlertMail.sent_at.is_(None), AlertMail.next_try_at <= now)
                           .order_by(AlertMail.next_try_at, AlertMail.id).limit(limit)).all()


def send_due(sessions: sessionmaker[Session], transport: Transport, sender: str, now: datetime) -> SendResult:
    """Hand the mails that are due to ``transport``, committing each outcome on its own. A server that fails as a
    whole ends the pass: the mails after it stay due, untouched, and go with the next pass."""
    result = SendResult()
    domain = sender.rpartition("@")[2].strip("> ") or "localhost"
    with sessions() as session:
        mails = due(session, now)
        if not mails:
            return result
        try:
            with transport:
                for row in mails:
                    message = build_message(sender=sender, recipient=row.recipient, subject=row.subject,
                                            text=row.text, html=row.html, message_id=message_id(row, domain),
                                            date=row.created_at)
                    try:
                        transport.send(message)
                    except MailError as error:
                        _failed(session, row, error, now, result)
                        if error.server:
                            return result
                        continue
                    row.sent_at = now
                    session.commit()
                    result.sent += 1
        except MailError as error:  # the connection itself: the first due mail carries the error
            _failed(session, mails[0], error, now, result)
    return result


def _failed(session: Session, row: AlertMail, error: MailError, now: datetime, result: SendResult) -> None:
    row.attempts += 1
    row.last_error = error.message
    row.next_try_at = now + retry_after(row.attempts)
    session.commit()
    result.failed += 1
    result.errors.append(error.message)
    log.warning("alert mail %s to %s not sent (attempt %d, next at %s): %s", row.id, row.recipient, row.attempts,
                row.next_try_at.astimezone(UTC).isoformat(timespec="minutes"), error.message)
