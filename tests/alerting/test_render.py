"""The mails in lv, lt, ru and en: every message translated with its placeholders, and each kind of mail
rendered in each language with the school, the kit, what to do and times in the school's zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from alerting import render
from alerting.policy import SitePolicy
from alerting.rules import Incident
from web.catalogs import extract
from web.i18n import LOCALES

ROOT = Path(__file__).resolve().parents[2]
SCHOOL = SitePolicy("north", "Ziemeļu skola", ZoneInfo("Europe/Riga"), fleet_url="https://lauks.north.lv/fleet")
OPENED = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)  # 11:00 in Riga
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
# Words each language's mail must hold: the kit in its own word, and the word for what to do.
WORDS = {"lv": ("Komplekts", "Kas jādara"), "lt": ("Rinkinys", "Ką daryti"), "ru": ("Комплект", "Что делать"),
         "en": ("Kit", "What to do")}


def silent() -> Incident:
    return Incident("north", "k1", "silent", {"silent_s": 1800, "last_seen": (OPENED - timedelta(minutes=30))
                                              .isoformat(), "interval_s": 60}, OPENED)


def test_every_message_of_the_mails_is_translated_with_the_same_placeholders() -> None:
    messages = extract([ROOT / "alerting"])
    assert len(messages) > 20
    for locale in ("lv", "lt", "ru"):
        found = render.catalog(locale)
        for message in messages:
            translated = found.get(message.id)
            assert translated, f"{locale} lacks {message.id!r} ({message.where})"
            for form in translated if isinstance(translated, tuple) else (translated,):
                assert set(PLACEHOLDER.findall(form)) == set(PLACEHOLDER.findall(message.id)), (locale, form)


@pytest.mark.parametrize("language", LOCALES)
def test_a_silent_kit_mail_names_the_school_the_kit_and_what_to_do_in_each_language(language: str) -> None:
    mail = render.opened(SCHOOL, language, silent())
    kit_word, to_do = WORDS[language]
    assert mail.subject.startswith("[Lauks] Ziemeļu skola: ") and "k1" in mail.subject
    assert kit_word in mail.subject
    assert to_do in mail.text and to_do in mail.html
    assert "11:00" in mail.text  # the school's clock, not UTC's 09:00
    assert "10:30" in mail.text  # last heard from, in Riga
    assert "https://lauks.north.lv/fleet" in mail.text
    assert "<p>" in mail.html and "Ziemeļu skola" in mail.html


@pytest.mark.parametrize("language", LOCALES)
def test_each_kind_of_mail_renders_in_each_language(language: str) -> None:
    battery = Incident("north", "k2", "low_battery", {"volts": 3.21}, OPENED)
    burst = Incident("north", "k2", "rejection_burst", {"count": 42, "reasons": [["out_of_range", 40]]}, OPENED)
    update = Incident("north", "k1", "update_failed", {"state": "rolled_back", "version": "1.5.0",
                                                       "reason": "boot <loop>"}, OPENED)
    comma = "." if language == "en" else ","
    assert f"3{comma}21" in render.opened(SCHOOL, language, battery).subject
    assert "42" in render.opened(SCHOOL, language, burst).subject
    assert "out_of_range (40)" in render.opened(SCHOOL, language, burst).text
    failed = render.opened(SCHOOL, language, update)
    assert "1.5.0" in failed.subject and "boot <loop>" in failed.text
    assert "boot &lt;loop&gt;" in failed.html  # what a kit says is text, never markup
    ended = silent()
    ended.recovered_at = OPENED + timedelta(hours=2)
    back = render.recovered(SCHOOL, language, ended)
    assert "k1" in back.subject and "13:00" in back.text
    digest = render.digest(SCHOOL, language, [battery, update], [ended], OPENED)
    assert digest.subject.startswith("[Lauks] ") and "2" in digest.subject
    assert all(name in digest.text for name in ("k1", "k2", "1.5.0"))
    assert render.trial(SCHOOL, language).subject.startswith("[Lauks] ")
    texts = [render.opened(SCHOOL, language, battery).text, back.text, digest.text]
    if language != "en":  # translated: none of it is the English source
        assert not any("What to do" in text or "It began" in text for text in texts)


def test_the_digest_subject_takes_each_languages_plural_form() -> None:
    incidents = [Incident("north", f"k{n}", "silent", {"silent_s": 3600}, OPENED) for n in range(5)]
    assert "5 kits need attention" in render.digest(SCHOOL, "en", incidents, [], OPENED).subject
    assert "1 kit needs attention" in render.digest(SCHOOL, "en", incidents[:1], [], OPENED).subject
    assert "5 комплектов" in render.digest(SCHOOL, "ru", incidents, [], OPENED).subject
    assert "2 комплекта" in render.digest(SCHOOL, "ru", incidents[:2], [], OPENED).subject
    assert "1 komplektam" in render.digest(SCHOOL, "lv", incidents[:1], [], OPENED).subject
