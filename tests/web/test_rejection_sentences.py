"""Rejections said in each language from their stored parts (web/rejections.py): no reason left out, no placeholder
left unfilled, numbers in the reader's form (a decimal comma in lv)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from lauks.contract import Reason
from web.i18n import LOCALES, Translator, catalog
from web.rejections import StoredRejection, explain, group

T = datetime(2025, 5, 4, 10, 0, tzinfo=UTC)
# The parts each reason stores (docs/schema.md), as the gateway writes them.
PARTS: dict[Reason, dict[str, object]] = {
    Reason.OUT_OF_RANGE: {"field_name": "temperature", "bad_value": "85.3", "bound": 70.0, "sample_index": 0},
    Reason.NOT_A_NUMBER: {"field_name": "humidity", "bad_value": '"abc"', "sample_index": 1},
    Reason.UNKNOWN_QUANTITY: {"field_name": "temprature", "sample_index": 0},
    Reason.TIME_IN_FUTURE: {"field_name": "t", "bad_value": "1900000000", "bound": 300.0, "sample_index": 0},
    Reason.TIME_TOO_OLD: {"field_name": "t", "bad_value": "1000", "bound": 1577836800.0, "sample_index": 0},
    Reason.BAD_TIME: {"field_name": "age", "bad_value": "-5", "sample_index": 2},
    Reason.NO_TIME: {"sample_index": 0},
    Reason.BAD_SAMPLE: {"bad_value": "42", "sample_index": 0},
    Reason.TOO_LARGE: {"bad_value": "20000", "bound": 16384.0},
    Reason.NOT_JSON: {},
    Reason.NOT_AN_OBJECT: {},
    Reason.UNSUPPORTED_VERSION: {"field_name": "v", "bad_value": "2"},
    Reason.KIT_MISMATCH: {"field_name": "kit", "bad_value": '"kit-9"'},
    Reason.BAD_FIELD: {"field_name": "seq"},
    Reason.RATE_LIMITED: {"bad_value": None, "bound": 20.0, "count": 21},
}


def rejection(reason: Reason, **extra: object) -> StoredRejection:
    parts = {**PARTS[reason], **extra}
    return StoredRejection(time=T, reason=reason.value, detail="the English detail", **parts)  # type: ignore[arg-type]


def test_every_reason_has_its_parts_listed_here() -> None:
    assert set(PARTS) == set(Reason)


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("reason", list(Reason))
def test_every_reason_has_a_sentence_and_advice_with_every_placeholder_filled(locale: str, reason: Reason) -> None:
    said = explain(Translator(locale), rejection(reason))
    assert said.sentence and said.advice
    assert said.sentence != "the English detail"
    for text in (said.sentence, said.advice):
        assert not re.search(r"%\(\w+\)[sd]", text), text


@pytest.mark.parametrize("locale", ["lv", "lt", "ru"])
@pytest.mark.parametrize("reason", list(Reason))
def test_every_sentence_is_translated(locale: str, reason: Reason) -> None:
    english = explain(Translator("en"), rejection(reason))
    said = explain(Translator(locale), rejection(reason))
    assert said.sentence != english.sentence and said.advice != english.advice


def test_out_of_range_in_latvian_has_the_decimal_comma_value_and_the_limit() -> None:
    said = explain(Translator("lv"), rejection(Reason.OUT_OF_RANGE))
    assert "Temperatūra 85,3 °C" in said.sentence and "70 °C" in said.sentence
    assert "85.3" not in said.sentence


def test_below_the_minimum_says_down_to() -> None:
    said = explain(Translator("en"), rejection(Reason.OUT_OF_RANGE, field_name="pressure", bad_value="120.5",
                                               bound=300.0))
    assert said.sentence == "Air pressure 120.5 hPa is outside the possible range (down to 300 hPa)."


@pytest.mark.parametrize(("count", "lv_word"), [(1, "ziņa netika saglabāta"), (21, "ziņa netika saglabāta"),
                                                 (5, "ziņas netika saglabātas"), (11, "ziņu netika saglabātas")])
def test_rate_limited_uses_the_latvian_plural_forms(count: int, lv_word: str) -> None:
    said = explain(Translator("lv"), rejection(Reason.RATE_LIMITED, count=count))
    assert f"{count} {lv_word}" in said.sentence


def test_an_unknown_reason_shows_the_stored_english_detail() -> None:
    said = explain(Translator("lv"), StoredRejection(time=T, reason="cosmic_ray", detail="a bit flipped"))
    assert said.sentence == "a bit flipped" and said.advice == ""


def test_the_catalogs_have_the_sentences_in_every_locale() -> None:
    for locale in ("lv", "lt", "ru"):
        assert "%(quantity)s %(value)s is outside the possible range (up to %(limit)s)." in catalog(locale)


def test_groups_count_by_reason_and_field_newest_first() -> None:
    rows = [StoredRejection(T + timedelta(minutes=i), "out_of_range", field_name="temperature") for i in range(3)]
    rows.append(StoredRejection(T + timedelta(hours=1), "rate_limited", count=40))
    rows.append(StoredRejection(T, "out_of_range", field_name="humidity"))
    groups = group(rows)
    assert [(g.reason, g.field_name, g.count) for g in groups] == [
        ("rate_limited", None, 40), ("out_of_range", "temperature", 3), ("out_of_range", "humidity", 1)]
    assert groups[1].first == T and groups[1].last == T + timedelta(minutes=2)
