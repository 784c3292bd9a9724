"""A site's alert settings in their pure form, and the parsing of what staff type for them.

Times of day are in the site's zone. Quiet hours hold mail until they end (nothing is dropped); holidays send
nothing, while incidents are still opened and closed, so the first mail after a holiday is about what is wrong
then. Every refusal is a ``PolicyError`` whose sentence says what to type instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dashboards.alerts import SILENT_INTERVALS

LANGUAGES = ("lv", "lt", "ru", "en")
# a contact's language when none is given: the one of the school's zone, else English
ZONE_LANGUAGES = {"Europe/Riga": "lv", "Europe/Vilnius": "lt"}
SILENT_INTERVALS_RANGE = (2, 1000)
# An address as SMTP servers take it: a local part and a domain with a dot, no spaces, quotes or brackets
# (RFC 5321's limits: 64 characters before the @, 254 in all). Stricter than the RFC, which a school's
# contacts never need; a mistyped address fails here, not at 3 a.m. on the mail server.
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+")
_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


class PolicyError(ValueError):
    """Input for a site's alert settings that cannot be used; the message says what to type instead."""


@dataclass(frozen=True)
class Contact:
    email: str
    language: str


@dataclass(frozen=True)
class SitePolicy:
    site: str
    title: str
    zone: ZoneInfo
    contacts: tuple[Contact, ...] = ()
    digest: bool = False
    digest_at: time = time(8, 0)
    quiet: tuple[time, time] | None = None  # from, to; to before from spans midnight
    holidays: tuple[tuple[date, date], ...] = ()  # first and last day, both included
    silent_intervals: int = SILENT_INTERVALS
    last_digest_on: date | None = None
    fleet_url: str = field(default="", compare=False)

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone)

    def on_holiday(self, moment: datetime) -> bool:
        day = self.local(moment).date()
        return any(first <= day <= last for first, last in self.holidays)

    def in_quiet_hours(self, moment: datetime) -> bool:
        if self.quiet is None:
            return False
        start, end = self.quiet
        clock = self.local(moment).time().replace(tzinfo=None)
        if start <= end:
            return start <= clock < end
        return clock >= start or clock < end

    def mail_from(self, moment: datetime) -> datetime:
        """When mail made at ``moment`` may go: at once, or when the quiet hours it falls in end (in UTC)."""
        if not self.in_quiet_hours(moment) or self.quiet is None:
            return moment
        end = self.quiet[1]
        local = self.local(moment)
        ends = datetime.combine(local.date(), end, tzinfo=self.zone)
        if ends <= local:
            ends = datetime.combine(local.date() + timedelta(days=1), end, tzinfo=self.zone)
        return ends.astimezone(UTC)

    def digest_due(self, moment: datetime) -> bool:
        """Today's digest is due: its time of day has come in the site's zone, and it has not been made today."""
        local = self.local(moment)
        return local.time().replace(tzinfo=None) >= self.digest_at and self.last_digest_on != local.date()


def default_language(zone: str | None) -> str:
    return ZONE_LANGUAGES.get(zone or "", "en")


def parse_contact(text: str, zone: str | None = None) -> Contact:
    """``name@school.lv`` or ``name@school.lv:lt``."""
    address, _, language = text.strip().rpartition(":") if ":" in text else (text.strip(), "", "")
    language = language.strip().lower() or default_language(zone)
    address = address.strip()
    if language not in LANGUAGES:
        raise PolicyError(f"contact {text!r}: the language after ':' must be one of {', '.join(LANGUAGES)}, not "
                          f"{language!r}")
    local_part = address.rpartition("@")[0]
    if len(address) > 254 or len(local_part) > 64 or not _ADDRESS.fullmatch(address):
        raise PolicyError(f"contact {address!r} is not an e-mail address a mail server takes: write it like "
                          "teacher@school.lv (no spaces, one @, a domain with a dot), optionally followed by "
                          ":lv, :lt, :ru or :en")
    return Contact(address.lower() if address.isascii() else address, language)


def parse_clock(text: str, what: str) -> time:
    match = _CLOCK.fullmatch(text.strip())
    if match is None:
        raise PolicyError(f"{what} {text!r} is not a time of day: write it as HH:MM from 00:00 to 23:59, e.g. 07:30")
    return time(int(match.group(1)), int(match.group(2)))


def parse_quiet(text: str) -> tuple[time, time] | None:
    """``22:00-07:00`` (it may span midnight), or ``off``."""
    if text.strip().lower() in ("off", "none", ""):
        return None
    start, dash, end = text.partition("-")
    if not dash:
        raise PolicyError(f"quiet hours {text!r}: write them as HH:MM-HH:MM, e.g. 21:00-07:00, or 'off'")
    quiet = (parse_clock(start, "quiet hours start"), parse_clock(end, "quiet hours end"))
    if quiet[0] == quiet[1]:
        raise PolicyError(f"quiet hours {text!r} start and end at the same time: a whole day of quiet would hold "
                          "every mail for ever; give a shorter span, or use school holidays")
    return quiet


def parse_day(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise PolicyError(f"{what} {text!r} is not a date: write it as YYYY-MM-DD, e.g. 2026-12-21") from None


def parse_holiday(text: str) -> tuple[date, date]:
    """``2026-12-21:2027-01-04`` (both days included), or one day ``2026-11-18``."""
    first_text, colon, last_text = text.partition(":")
    first = parse_day(first_text, "holiday start")
    last = parse_day(last_text, "holiday end") if colon else first
    if last < first:
        raise PolicyError(f"holiday {text!r} ends before it starts: write the first day, then the last")
    if (last - first).days > 366:
        raise PolicyError(f"holiday {text!r} is longer than a year: was a year mistyped?")
    return first, last


def parse_silent_intervals(value: int) -> int:
    low, high = SILENT_INTERVALS_RANGE
    if not low <= value <= high:
        raise PolicyError(f"--silent-intervals must be a whole number from {low} to {high} (a kit is silent after "
                          f"this many of its intervals without readings), not {value}")
    return value
