"""Commands of alert mail: ``lauks alerts run|check|test-mail`` and ``lauks site alerts``.

Every refusal is a sentence on stderr and exit status 1 (2 for settings that are not valid), with nothing
stored and nothing marked sent.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.orm import Session

    from alerting.settings import AlertSettings
    from metastore.db import AlertSite

# The imports below are made where they are needed: every `lauks` command imports this module.


def register(commands: argparse._SubParsersAction[Any], kit_commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``lauks alerts`` and, to the API part's ``lauks site``, ``lauks site alerts``."""
    alerts = commands.add_parser("alerts", help="alert mail to each site's contacts (docs/alerts.md)")
    sub = alerts.add_subparsers(dest="alerts_command", metavar="ALERTS_COMMAND", required=True)
    run = sub.add_parser("run", help="check every minute and send the mails (the service `lauks up` starts)")
    run.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    run.set_defaults(func=_run)
    check = sub.add_parser("check", help="show open incidents and queued mails; with --once, do one check and "
                                         "send what is due")
    check.add_argument("--once", action="store_true", help="one real check: open and end incidents, send mail")
    check.set_defaults(func=_check)
    test = sub.add_parser("test-mail", help="send a test mail to a site's contacts now (quiet hours and holidays "
                                            "aside)")
    test.add_argument("site")
    test.set_defaults(func=_test_mail)

    site = commands.choices.get("site")
    site_commands = next((action for action in (site._actions if site else ())
                          if isinstance(action, argparse._SubParsersAction)), None)
    if site_commands is None:  # a build without the API part's `lauks site`
        site_commands = commands.add_parser("site", help="sites' alert mail").add_subparsers(
            dest="site_command", metavar="SITE_COMMAND", required=True)
    settings = site_commands.add_parser(
        "alerts", help="who gets a site's alert mail, and when (no option: show it)",
        description="Without options, show the site's alert settings. --contact and --holiday replace the lists.")
    settings.add_argument("site")
    settings.add_argument("--contact", action="append", metavar="EMAIL[:LANG]",
                          help="a contact, with the language of its mails (lv, lt, ru, en; default the school's "
                               "zone's); repeat for several: they replace the list")
    settings.add_argument("--no-contacts", action="store_true", help="nobody gets this site's mail")
    mode = settings.add_mutually_exclusive_group()
    mode.add_argument("--digest", action="store_true", help="one mail a day with every incident")
    mode.add_argument("--per-incident", action="store_true", help="a mail when an incident begins and one when it "
                                                                  "ends (the default)")
    settings.add_argument("--digest-at", metavar="HH:MM", help="when the daily digest goes, in the site's zone "
                                                               "(default 08:00)")
    settings.add_argument("--quiet", metavar="HH:MM-HH:MM", help="quiet hours: mail is held until they end; "
                                                                  "'off' for none")
    settings.add_argument("--holiday", action="append", metavar="YYYY-MM-DD[:YYYY-MM-DD]",
                          help="school holidays, both days included: no mail; repeat for several: they replace "
                               "the list")
    settings.add_argument("--no-holidays", action="store_true", help="forget the site's holidays")
    settings.add_argument("--silent-intervals", type=int, metavar="N",
                          help="a kit is silent after N of its intervals without readings (default 3)")
    settings.set_defaults(func=_store_command(_site_alerts))


def _settings() -> AlertSettings | None:
    from pydantic import ValidationError

    from alerting.settings import AlertSettings

    try:
        return AlertSettings()
    except ValidationError as error:
        print(f"lauks alerts: the settings are not valid:\n{error}", file=sys.stderr)
        return None


def _logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _run(args: argparse.Namespace) -> int:
    from alerting.service import run
    from lauks.services import stop_on_signals

    _logging(str(args.log_level))
    settings = _settings()
    if settings is None:
        return 2
    asyncio.run(run(settings, stop_on_signals()))
    return 0


def _check(args: argparse.Namespace) -> int:
    settings = _settings()
    if settings is None:
        return 2
    return asyncio.run(_check_async(settings, once=bool(args.once)))


async def _check_async(settings: AlertSettings, *, once: bool) -> int:
    from datetime import UTC, datetime

    from sqlalchemy import select

    from alerting.service import Alerter
    from metastore.db import AlertIncident, AlertMail, open_store

    sessions = open_store(settings.database_url)
    status = 0
    try:
        async with settings.influx_client() as client:
            alerter = Alerter(settings, sessions, client)
            now = datetime.now(UTC)
            if once:
                result = await alerter.tick(now)
                if result.influx_error:
                    print(f"lauks: {result.influx_error}", file=sys.stderr)
                    status = 1
                if result.evaluated:
                    for incident in result.evaluated.opened:
                        print(f"opened\t{incident.site}/{incident.kit}\t{incident.kind}")
                    for incident in result.evaluated.recovered:
                        print(f"ended\t{incident.site}/{incident.kit}\t{incident.kind}")
                print(f"{result.sent.sent} mail(s) sent, {result.sent.failed} kept for a retry")
                for error in dict.fromkeys(result.sent.errors):
                    print(f"lauks: {error}; the mail is kept and tried again", file=sys.stderr)
                    status = 1
        with sessions() as session:
            for row in session.scalars(select(AlertIncident).where(AlertIncident.recovered_at.is_(None))
                                       .order_by(AlertIncident.site, AlertIncident.kit)):
                print(f"open\t{row.site}/{row.kit}\t{row.kind}\tsince {row.opened_at:%Y-%m-%d %H:%M} UTC\t"
                      f"mail {row.open_notice}")
            for mail in session.scalars(select(AlertMail).where(AlertMail.sent_at.is_(None)).order_by(AlertMail.id)):
                error = f"\tlast error: {mail.last_error}" if mail.last_error else ""
                print(f"queued\t{mail.site}\t{mail.recipient}\t{mail.subject}\tnot before "
                      f"{mail.next_try_at:%Y-%m-%d %H:%M} UTC\t{mail.attempts} attempt(s){error}")
    finally:
        sessions.kw["bind"].dispose()
    return status


def _test_mail(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from sqlalchemy import select

    from alerting import outbox, render
    from alerting.sender import MailError, build_message, sender_address, transport
    from metastore import registry
    from metastore.db import AlertSite, one_session
    from metastore.errors import StoreError

    settings = _settings()
    if settings is None:
        return 2
    try:
        with one_session(settings.database_url) as session:
            site = registry.get_site(session, args.site)
            row = session.scalars(select(AlertSite).where(AlertSite.site == site.name)).first()
            policy = outbox.policy_of(site, row, settings.api_timezone)
    except StoreError as error:
        print(f"lauks: {error.message}", file=sys.stderr)
        return 1
    if not policy.contacts:
        print(f"lauks: site {policy.site!r} has no alert contacts: add them with `lauks site alerts {policy.site} "
              "--contact teacher@school.lv`", file=sys.stderr)
        return 1
    # sent at once and never queued: a test that failed is for the person at the keyboard, not for a retry
    sender = sender_address(settings)
    now = datetime.now(UTC)
    domain = sender.rpartition("@")[2].strip("> ") or "localhost"
    try:
        with transport(settings) as mail:
            for number, contact in enumerate(policy.contacts):
                made = render.trial(policy, contact.language)
                mail.send(build_message(sender=sender, recipient=contact.email, subject=made.subject, text=made.text,
                                        html=made.html, message_id=f"<lauks-test-{int(now.timestamp())}-{number}@"
                                                                   f"{domain}>", date=now))
                print(f"sent to {contact.email} ({contact.language})")
    except MailError as error:
        print(f"lauks: {error.message}", file=sys.stderr)
        return 1
    if not settings.smtp_host:
        print(f"no SMTP server is set (LAUKS_SMTP_HOST): the mails are in {settings.mail_dir}/")
    return 0


def _store_command(action: Callable[[Session, argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A command on the metadata store the settings name, printing the store's and the settings' refusals."""

    def handler(args: argparse.Namespace) -> int:
        from alerting.policy import PolicyError
        from metastore.db import one_session
        from metastore.errors import StoreError
        from metastore.settings import StoreSettings

        try:
            with one_session(StoreSettings().database_url) as session:
                return action(session, args)
        except (StoreError, PolicyError) as error:
            print(f"lauks: {getattr(error, 'message', error)}", file=sys.stderr)
            return 1

    return handler


def _site_alerts(session: Session, args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from alerting import policy as p
    from metastore import registry
    from metastore.db import AlertSite, now

    site = registry.get_site(session, args.site)
    # everything is parsed before anything is stored: one bad value changes nothing
    contacts = [p.parse_contact(text, site.timezone) for text in args.contact or []]
    holidays = [p.parse_holiday(text) for text in args.holiday or []]
    quiet = p.parse_quiet(args.quiet) if args.quiet is not None else None
    digest_at = p.parse_clock(args.digest_at, "--digest-at") if args.digest_at else None
    intervals = p.parse_silent_intervals(args.silent_intervals) if args.silent_intervals is not None else None
    if args.contact and args.no_contacts:
        raise p.PolicyError("give --contact or --no-contacts, not both")
    if args.holiday and args.no_holidays:
        raise p.PolicyError("give --holiday or --no-holidays, not both")
    row = session.scalars(select(AlertSite).where(AlertSite.site == site.name)).first()
    changing = any((args.contact, args.no_contacts, args.digest, args.per_incident, args.digest_at, args.quiet,
                    args.holiday, args.no_holidays, args.silent_intervals is not None))
    if changing:
        if row is None:
            row = AlertSite(site=site.name, contacts=[], digest=False, digest_at="08:00", holidays=[])
            session.add(row)
        if contacts or args.no_contacts:
            row.contacts = [{"email": c.email, "language": c.language} for c in dict.fromkeys(contacts)]
        if args.digest or args.per_incident:
            row.digest = bool(args.digest)
        if digest_at is not None:
            row.digest_at = f"{digest_at:%H:%M}"
        if args.quiet is not None:
            row.quiet_from, row.quiet_to = (f"{quiet[0]:%H:%M}", f"{quiet[1]:%H:%M}") if quiet else (None, None)
        if holidays or args.no_holidays:
            row.holidays = [[first.isoformat(), last.isoformat()] for first, last in sorted(set(holidays))]
        if intervals is not None:
            row.silent_intervals = intervals
        row.updated_at = now()
        session.commit()
    _show(site.name, row)
    return 0


def _show(site: str, row: AlertSite | None) -> None:
    from dashboards.alerts import SILENT_INTERVALS

    if row is None:
        print(f"{site}: no alert mail (no contacts); set them with `lauks site alerts {site} --contact EMAIL[:LANG]`")
        return
    contacts = ", ".join(f"{c['email']}:{c['language']}" for c in row.contacts) or "none"
    print(f"site\t{site}")
    print(f"contacts\t{contacts}")
    print(f"mail\t{'a daily digest at ' + row.digest_at if row.digest else 'per incident, and when it ends'}")
    print(f"quiet hours\t{f'{row.quiet_from}-{row.quiet_to}' if row.quiet_from else 'none'}")
    print(f"holidays\t{', '.join(a if a == b else f'{a}:{b}' for a, b in row.holidays) or 'none'}")
    print(f"silent after\t{row.silent_intervals or SILENT_INTERVALS} intervals")
