"""What the class page says of gaps and derived quantities, in each language: pure, no store, no browser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from api.gaps import Gap
from metastore.db import Dataset
from web.i18n import Translator
from web.pages.classes import derived_facts, gap_facts, label_of, moment_text, span_text, with_unit

RIGA = ZoneInfo("Europe/Riga")
MADE = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


def riga(locale: str) -> Translator:
    return Translator(locale).in_zone(RIGA)


@pytest.mark.parametrize(("locale", "expected"), [
    ("en", ["30 secs", "4 mins", "1 hr", "17 hrs 45 mins", "2 days", "2 days 3 hrs"]),
    ("lv", ["30 sek.", "4 min", "1 st.", "17 st. 45 min", "2 d.", "2 d. 3 st."]),
    ("lt", ["30 sek.", "4 min.", "1 val.", "17 val. 45 min.", "2 d.", "2 d. 3 val."]),
    ("ru", ["30 с", "4 мин", "1 ч", "17 ч 45 мин", "2 дн.", "2 дн. 3 ч"]),
])
def test_a_gap_s_length_is_two_units_at_most_in_the_reader_s_language(locale: str, expected: list[str]) -> None:
    seconds = [30, 240, 3600, 17 * 3600 + 45 * 60, 2 * 86400, 2 * 86400 + 3 * 3600 + 59]
    assert [span_text(riga(locale), s) for s in seconds] == expected


@pytest.mark.parametrize(("locale", "without_year", "with_year"), [
    ("en", "3 March, 14:20", "3 March 2025, 14:20"),
    ("lv", "3. marts 14:20", "2025. gada 3. marts 14:20"),
    ("lt", "kovo 3 d. 14:20", "2025 m. kovo 3 d. 14:20"),
    ("ru", "3 марта, 14:20", "3 марта 2025\u202fг., 14:20"),  # a narrow no-break space before г.
])
def test_a_gap_s_times_are_in_the_school_s_zone(locale: str, without_year: str, with_year: str) -> None:
    moment = datetime(2025, 3, 3, 12, 20, tzinfo=UTC)  # 14:20 in Riga
    assert moment_text(riga(locale), moment, False) == without_year
    assert moment_text(riga(locale), moment, True) == with_year


def dataset(*kits: str) -> Dataset:
    return Dataset(code="ABCD2345", kits=list(kits), quantities=["temperature"], site="s", timezone="Europe/Riga")


def gap(kit: str, day: int, hour: int, minutes: int) -> Gap:
    start = datetime(2025, 3, day, hour, 0, tzinfo=UTC)
    return Gap(kit, start, start + timedelta(minutes=minutes))


def test_each_kit_lists_its_longest_gaps_in_time_order_and_counts_the_rest() -> None:
    found = [gap("k-01", 3, h, 10 + h) for h in range(7)] + [gap("k-03", 4, 6, 90)]
    facts = gap_facts(riga("en"), dataset("k-01", "k-02", "k-03"), "ok", found, MADE)
    assert [k["kit"] for k in facts["kits"]] == ["k-01", "k-03"]  # k-02 has none
    first = facts["kits"][0]
    assert first["lines"] == [f"k-01: no data from 3 March, {h + 2:02d}:00 to 3 March, {h + 2:02d}:{10 + h} "
                              f"({10 + h} mins)" for h in range(2, 7)]
    assert first["more"] == "… and 2 shorter gaps: the zip's gaps.csv lists every gap."
    assert facts["kits"][1] == {"kit": "k-03", "lines": ["k-03: no data from 4 March, 08:00 to 4 March, 09:30 "
                                                         "(1 hr 30 mins)"], "more": None}


def test_a_gap_that_goes_on_until_now_says_since() -> None:
    found = [Gap("k-01", MADE - timedelta(hours=3), MADE)]
    facts = gap_facts(riga("en"), dataset("k-01"), "ok", found, MADE)
    assert facts["kits"][0]["lines"] == ["k-01: no data since 10 March, 11:00 (3 hrs so far)"]
    lv = gap_facts(riga("lv"), dataset("k-01"), "ok", found, MADE)
    assert lv["kits"][0]["lines"] == ["k-01: nav datu jau 3 st. (pēdējie dati: 10. marts 11:00)"]


@pytest.mark.parametrize(("more", "expected"), [(1, "īsāks pārtraukums"), (2, "īsāki pārtraukumi"),
                                                (11, "īsāki pārtraukumi"), (21, "īsāks pārtraukums")])
def test_the_rest_is_counted_in_latvian_plural_forms(more: int, expected: str) -> None:
    found = [gap("k-01", 3 + h // 24, h % 24, 10) for h in range(5 + more)]
    facts = gap_facts(riga("lv"), dataset("k-01"), "ok", found, MADE)
    assert len(facts["kits"][0]["lines"]) == 5
    assert f"vēl {more} {expected}" in facts["kits"][0]["more"]


def test_gaps_not_yet_known_list_no_kit() -> None:
    assert gap_facts(riga("en"), dataset("k-01"), "pending", [], MADE) == {"state": "pending", "kits": []}
    assert gap_facts(riga("en"), dataset("k-01"), "ok", [], MADE) == {"state": "ok", "kits": []}


def test_a_derived_quantity_is_named_and_explained_in_the_reader_s_language() -> None:
    assert label_of(riga("en"), "dew_point") == "Dew point"
    assert with_unit(riga("lv"), "dew_point") == "Rasas punkts (°C)"
    assert with_unit(riga("en"), "temperature") == "Temperature (°C)"
    facts = derived_facts(riga("ru"), "dew_point", None)
    assert facts is not None
    assert facts["how"].startswith("Вычисляется") and "Td = b·γ / (a − γ)" in facts["how"]
    assert "Alduchov" in facts["reference"] and facts["missing"] is None
    assert derived_facts(riga("en"), "temperature", None) is None


def test_sea_level_pressure_says_when_the_site_has_no_elevation() -> None:
    missing = derived_facts(riga("en"), "sea_level_pressure", None)
    assert missing is not None and missing["missing"] is not None and "elevation" in missing["missing"]
    known = derived_facts(riga("en"), "sea_level_pressure", 95.0)
    assert known is not None and known["missing"] is None
