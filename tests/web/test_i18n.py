"""Languages: every message of the web app is translated in lv, lt and ru; the reader's language is chosen as
promised; numbers and dates take the locale's form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po

from web import catalogs, i18n


def test_every_message_of_the_web_app_is_translated_in_every_locale() -> None:
    messages = catalogs.all_messages()
    assert len(messages) > 30  # the extractors see the templates and the code
    assert catalogs.problems() == []


def test_the_check_finds_a_message_without_translation_and_a_wrong_placeholder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    web = tmp_path / "web"
    (web / "templates").mkdir(parents=True)
    (web / "templates" / "x.html").write_text('{{ _("Hello %(name)s", name=n) }} {{ _("Untranslated") }}')
    for locale in i18n.LOCALES:
        catalog = Catalog(locale=locale)
        catalog.add("Hello %(name)s", "Sveiki %(vards)s" if locale == "lv" else "Hi %(name)s")
        folder = web / "locales" / locale / "LC_MESSAGES"
        folder.mkdir(parents=True)
        with (folder / "x.po").open("wb") as out:
            write_po(out, catalog)
    monkeypatch.setattr(catalogs, "ROOT", web)
    monkeypatch.setattr(i18n, "FOLDER", web / "locales")
    monkeypatch.setattr(catalogs, "FOLDER", web / "locales")
    i18n.catalog.cache_clear()
    try:
        found = catalogs.problems()
    finally:
        i18n.catalog.cache_clear()
    assert any("lv: no translation of 'Untranslated'" in line for line in found)
    assert any("lt: no translation of 'Untranslated'" in line for line in found)
    assert any(line.startswith("lv/x.po") and "Hello" in line for line in found), found
    assert not any(line.startswith("lt/x.po") for line in found)


@pytest.mark.parametrize(("query", "cookie", "header", "expected"), [
    ("lt", "lv", "ru", "lt"),  # the switcher's choice wins
    (None, "lv", "ru,en;q=0.5", "lv"),  # then the cookie that keeps it
    (None, None, "de-DE,ru;q=0.8,lv;q=0.9", "lv"),  # then Accept-Language by quality
    (None, None, "lt-LT", "lt"),
    (None, None, "de, fr;q=0.5", "en"),  # nothing we speak
    ("xx", "yy", "lv;q=0", "en"),  # unknown choices and q=0 are ignored
    (None, None, "ru;q=abc, lt", "lt"),  # a malformed weight counts as 0
    (None, None, None, "en"),
])
def test_the_locale_comes_from_the_switcher_the_cookie_then_accept_language(
        query: str | None, cookie: str | None, header: str | None, expected: str) -> None:
    assert i18n.negotiate(query, cookie, header) == expected


def test_numbers_take_a_decimal_comma_in_lv_lt_and_ru() -> None:
    assert [i18n.Translator(locale).number(21.5) for locale in ("lv", "lt", "ru", "en")] == \
        ["21,5", "21,5", "21,5", "21.5"]
    assert i18n.Translator("lv").number(1013.25, 1) == "1013,3"  # no thousands separator in a reading
    assert i18n.Translator("en").number(None) == "–"


def test_times_are_shown_in_the_school_zone() -> None:
    moment = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)
    riga = i18n.Translator("lv", ZoneInfo("Europe/Riga"))
    assert riga.time(moment) == "12:30"  # UTC+3 in summer
    assert i18n.Translator("en").in_zone("Europe/Vilnius").time(moment) == "12:30"  # a 24-hour clock in English too
    assert i18n.Translator("en").date(moment) == "1 Jun 2026"


def test_how_long_ago_is_said_in_each_language() -> None:
    now = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)
    said = {locale: i18n.Translator(locale).ago(now - timedelta(minutes=3), now) for locale in i18n.LOCALES}
    assert said["en"] == "3 min ago"
    assert "3" in said["lv"] and said["lv"] != said["en"]
    assert "3" in said["ru"] and "назад" in said["ru"]


def test_plural_forms_follow_each_language() -> None:
    lt = i18n.Translator("lt")
    # a message that is not in the catalogs falls back to English's two forms
    assert lt.ngettext("%(num)d thing", "%(num)d things", 1) == "1 thing"
    assert lt.ngettext("%(num)d thing", "%(num)d things", 5) == "5 things"


@pytest.mark.parametrize(("locale", "counts"), [
    ("lv", {0: 0, 1: 1, 2: 2, 11: 0, 21: 1, 101: 1}),  # lv: zero and 11-19, then ends in 1, then the rest
    ("lt", {1: 0, 2: 1, 9: 1, 10: 2, 11: 2, 21: 0, 22: 1}),
    ("ru", {1: 0, 2: 1, 4: 1, 5: 2, 11: 2, 21: 0, 22: 1, 25: 2}),
])
def test_the_plural_form_is_the_catalogs_index_for_each_language(locale: str, counts: dict[int, int]) -> None:
    translator = i18n.Translator(locale)
    assert {n: translator._plural_index(n) for n in counts} == counts


@pytest.mark.parametrize("locale", i18n.LOCALES)
def test_the_kept_formats_give_babels_own_text(locale: str) -> None:
    """Dates, times, ages and durations are kept per day, unit and count (a fleet page formats a thousand):
    the text must be Babel's, for moments across a year, both clock changes and ages from 0 s to years."""
    from babel import Locale
    from babel.dates import format_date, format_datetime, format_time, format_timedelta

    babel = Locale.parse("en_GB" if locale == "en" else locale)
    zone = ZoneInfo("Europe/Riga")
    t = i18n.Translator(locale, zone)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for step in range(0, 366 * 24 * 3600, 7 * 3600 + 1234):  # every hour of the day comes round, DST days too
        moment = start + timedelta(seconds=step)
        local = moment.astimezone(zone)
        for form in ("short", "medium"):
            assert t.datetime(moment, form) == format_datetime(local, form, tzinfo=zone, locale=babel)
            assert t.time(moment, form) == format_time(local, form, tzinfo=zone, locale=babel)
            assert t.date(moment, form) == format_date(local.date(), form, locale=babel)
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    for seconds in (0, 1, 29, 44, 45, 59.5, 60, 89, 90, 3599, 3600, 5399, 5400, 86_399, 86_400, 7 * 86_400,
                    30 * 86_400, 400 * 86_400, 3 * 365 * 86_400):
        delta = timedelta(seconds=seconds)
        shown = delta if delta >= timedelta(seconds=45) else timedelta(seconds=max(delta.total_seconds(), 0))
        assert t.ago(now - delta, now) == format_timedelta(-shown, add_direction=True, format="short",
                                                           threshold=1.0, locale=babel)
        assert t.duration(seconds) == format_timedelta(timedelta(seconds=seconds), format="short", threshold=1.0,
                                                       locale=babel)
    for value, decimals in ((3.955, 2), (1013.25, 1), (-60, 0), (21.5, None), (0.1 + 0.2, 2)):
        assert t.number(value, decimals) == t.number(value, decimals)  # kept, and the same as the first time
    assert i18n.Translator("lv").number(1013.25, 1) == "1013,3"
