"""Languages: the reader's locale (lv, lt, ru, en), its Babel catalogs, and numbers and dates in its form.

Catalogs are Babel ``.po`` files, read at start-up (no compile step, nothing generated to commit):
``web/locales/<locale>/LC_MESSAGES/<area>.po``. Each part of the app keeps its own area file, and every
area of a locale is merged into one catalog. Source strings are English, so ``en`` needs no entries.
``tests/web/test_i18n_catalogs.py`` extracts every message from the code and the templates and fails
when one lacks a translation in any locale, or a translation's placeholders differ from its message's.

The locale comes from ``?lang=`` (which the switcher sets, and a cookie keeps), then the cookie, then
Accept-Language, then ``en``.
"""

from __future__ import annotations

import functools
import gettext
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import TIMEDELTA_UNITS, format_date, format_datetime, format_time, format_timedelta
from babel.messages.catalog import Catalog
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

UTC_ZONE = ZoneInfo("UTC")
Moment = datetime  # the methods below are named datetime, date and time, as templates call them
LOCALES = ("lv", "lt", "ru", "en")
NAMES = {"lv": "Latviešu", "lt": "Lietuvių", "ru": "Русский", "en": "English"}
DEFAULT = "en"
COOKIE = "lauks_lang"
FOLDER = Path(__file__).parent / "locales"


def _parse_accept_language(header: str) -> list[str]:
    """Language tags of an Accept-Language header, best first (q=0 left out; malformed parts skipped)."""
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:32]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and quality > 0:
            weighted.append((-quality, index, tag.strip().lower()))
    return [tag for _q, _i, tag in sorted(weighted)]


def negotiate(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    """The locale to use: the first of ``?lang=``, the cookie and Accept-Language that we have."""
    for choice in (query, cookie):
        if choice and choice.lower() in LOCALES:
            return choice.lower()
    for tag in _parse_accept_language(accept_language or ""):
        primary = tag.split("-")[0]
        if primary in LOCALES:
            return primary
    return DEFAULT


@functools.cache
def catalog(locale: str) -> dict[str, str | tuple[str, ...]]:
    """Every translated message of ``locale``, its areas merged: msgid -> msgstr (a tuple for plurals)."""
    merged: dict[str, str | tuple[str, ...]] = {}
    for path in area_files(locale):
        merged.update(messages_of(path))
    return merged


def messages_of(path: Path) -> dict[str, str | tuple[str, ...]]:
    """One .po file's translated messages: msgid -> msgstr (a tuple for plurals); fuzzy and empty ones left out."""
    out: dict[str, str | tuple[str, ...]] = {}
    for message in read_catalog(path):
        if not message.id or message.fuzzy:
            continue
        key = str(message.id[0] if isinstance(message.id, list | tuple) else message.id)
        if isinstance(message.string, list | tuple):
            if all(message.string):
                out[key] = tuple(str(form) for form in message.string)
        elif message.string:
            out[key] = str(message.string)
    return out


def area_files(locale: str) -> list[Path]:
    return sorted((FOLDER / locale / "LC_MESSAGES").glob("*.po"))


def read_catalog(path: Path) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=path.parents[1].name)


@dataclass(frozen=True)
class Translator:
    """Messages and formats of one locale, in one time zone (the school's, or the server's)."""

    locale: str
    zone: ZoneInfo = UTC_ZONE

    @functools.cached_property
    def _babel(self) -> Locale:
        # English for schools in the Baltics: the day before the month and a 24-hour clock, as in en_GB
        return Locale.parse("en_GB" if self.locale == "en" else self.locale)

    @functools.cached_property
    def _messages(self) -> dict[str, str | tuple[str, ...]]:
        return catalog(self.locale)

    def in_zone(self, zone: ZoneInfo | str | None) -> Translator:
        if zone is None:
            return self
        return Translator(self.locale, zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone))

    def gettext(self, message: str, **values: Any) -> str:
        found = self._messages.get(message)
        text = found if isinstance(found, str) else message
        return text % values if values else text

    @functools.cached_property
    def _plural_index(self) -> Callable[[int], int]:
        """The catalog's plural index of a number: gettext's Plural-Forms expression of this locale."""
        return gettext.c2py(get_plural(self.locale).plural_expr)

    def pick(self, singular: str, plural: str, n: int) -> str:
        """The plural form of ``n`` in this locale (lv, lt and ru have three), not yet formatted."""
        found = self._messages.get(singular)
        if isinstance(found, tuple):
            form = self._plural_index(abs(n))
            return found[form] if form < len(found) else found[-1]
        return singular if n == 1 else plural

    def ngettext(self, singular: str, plural: str, n: int, **values: Any) -> str:
        values.setdefault("num", n)
        return self.pick(singular, plural, n) % values

    # --- formats -----------------------------------------------------------------------------------

    def number(self, value: float | int | None, decimals: int | None = None) -> str:
        """``21,5`` in lv, lt and ru, ``21.5`` in en; ``decimals`` fixes the digits after the point."""
        if value is None:
            return "–"
        return _number(self.locale, value, decimals)

    def local(self, moment: Moment) -> Moment:
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(self.zone)

    def datetime(self, moment: Moment | None, form: str = "medium") -> str:
        if moment is None:
            return "–"
        local = self.local(moment)
        clock = _clock(self.locale, form, local)
        if clock is None:
            return format_datetime(local, form, tzinfo=self.zone, locale=self._babel)
        # as Babel joins them (babel.dates.format_datetime), the date part kept per day
        return (_datetime_pattern(self.locale, form).replace("{0}", clock)
                .replace("{1}", _date(self.locale, form, local.date())))

    def date(self, moment: Moment | None, form: str = "medium") -> str:
        if moment is None:
            return "–"
        return _date(self.locale, form, self.local(moment).date())

    def time(self, moment: Moment | None, form: str = "short") -> str:
        if moment is None:
            return "–"
        local = self.local(moment)
        clock = _clock(self.locale, form, local)
        return clock if clock is not None else format_time(local, form, tzinfo=self.zone, locale=self._babel)

    def ago(self, moment: Moment | None, now: Moment | None = None) -> str:
        """``3 min ago``, ``pirms 3 min.``: how long before ``now`` ``moment`` was."""
        if moment is None:
            return "–"
        delta = (now or datetime.now(UTC)) - moment
        if delta < timedelta(seconds=45):
            delta = timedelta(seconds=max(delta.total_seconds(), 0))
        return _timedelta(self.locale, -delta.total_seconds(), True)

    def duration(self, seconds: float) -> str:
        return _timedelta(self.locale, seconds, False)


# --- formats, kept: a page of 280 kits formats a thousand numbers, times and ages, most of them alike -------
# Babel's formatting parses its pattern on every call; these give the very same text (tests/web/test_i18n.py
# compares them with Babel's) and keep what repeats: a value's text, a day's date, an age's unit and count.


def _babel_locale(locale: str) -> Locale:
    return _babel_locales(locale)


@functools.cache
def _babel_locales(locale: str) -> Locale:
    return Locale.parse("en_GB" if locale == "en" else locale)


@functools.lru_cache(maxsize=8192)
def _number(locale: str, value: float | int, decimals: int | None) -> str:
    if decimals is None:
        return format_decimal(value, locale=_babel_locale(locale), group_separator=False)
    pattern = "0" + ("." + "0" * decimals if decimals > 0 else "")
    # half up, as pupils learn it (Babel's own rounding is half to even: 1013.25 would be 1013,2)
    rounded = Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    return format_decimal(rounded, format=pattern, locale=_babel_locale(locale), group_separator=False)


@functools.lru_cache(maxsize=2048)
def _date(locale: str, form: str, day: date) -> str:
    return format_date(day, form, locale=_babel_locale(locale))


@functools.cache
def _datetime_pattern(locale: str, form: str) -> str:
    return str(_babel_locale(locale).datetime_formats[form]).replace("'", "")


@functools.cache
def _clock_pattern(locale: str, form: str) -> str:
    return str(_babel_locale(locale).time_formats[form].pattern)


def _clock(locale: str, form: str, local: datetime) -> str | None:
    """The time of day when the locale writes it as ``HH:mm:ss`` or ``HH:mm`` (all four of ours do), else None."""
    pattern = _clock_pattern(locale, form)
    if pattern == "HH:mm:ss":
        return f"{local.hour:02d}:{local.minute:02d}:{local.second:02d}"
    if pattern == "HH:mm":
        return f"{local.hour:02d}:{local.minute:02d}"
    return None


def _timedelta(locale: str, seconds: float, add_direction: bool) -> str:
    """``format_timedelta(seconds, format="short", threshold=1.0)``. Its text depends only on the unit and the
    rounded count Babel picks (babel.dates.TIMEDELTA_UNITS) and the direction, so it is kept by those."""
    size = abs(seconds)
    for unit, unit_seconds in TIMEDELTA_UNITS:
        value = size / unit_seconds
        if value >= 1.0 or unit == "second":
            if unit == "second" and value > 0:
                value = max(1, value)
            key = (locale, unit, round(value), seconds >= 0, add_direction)
            text = _TIMEDELTAS.get(key)
            if text is None:
                if len(_TIMEDELTAS) > 4096:
                    _TIMEDELTAS.clear()
                text = _TIMEDELTAS[key] = format_timedelta(timedelta(seconds=seconds), add_direction=add_direction,
                                                           format="short", threshold=1.0,
                                                           locale=_babel_locale(locale))
            return text
    return ""


_TIMEDELTAS: dict[tuple[str, str, int, bool, bool], str] = {}


def translators() -> Iterable[Translator]:
    return (Translator(locale) for locale in LOCALES)


def N_(message: str) -> str:
    """Marks a message for the catalogs where it is translated later (``t.gettext(variable)``)."""
    return message
