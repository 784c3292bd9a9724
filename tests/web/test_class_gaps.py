"""The class page lists a dataset's gaps per kit and says which quantities are derived, in a real browser, at a
desktop's and a phone's width, against the real `lauks api` and InfluxDB."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from web_screens import Screen
from web_stack import WebStack, axe_results

SITE = "class-gaps"
RIGA = ZoneInfo("Europe/Riga")
START = datetime(2025, 3, 3, 0, 0, tzinfo=RIGA)
END = START + timedelta(days=2)
OFFLINE = (datetime(2025, 3, 3, 14, 20, tzinfo=RIGA), datetime(2025, 3, 4, 8, 5, tzinfo=RIGA))
SHORT_GAPS = 7  # k-04 drops out seven times, for 11 to 17 minutes


def minutes(start: datetime, end: datetime) -> list[datetime]:
    count = int((end - start).total_seconds() // 60)
    return [start + timedelta(minutes=i) for i in range(count)]


@pytest.fixture(scope="session")  # once: the browser tests run after the others
def gaps_dataset(web_stack: WebStack) -> dict[str, Any]:
    """Two days of one-minute readings: k-01 offline from 3 March 14:20 to 4 March 08:05, k-02 all along, k-03
    never, k-04 with seven short gaps. The dataset asks for dew point and sea-level pressure too."""
    web_stack.add_site(SITE, title="Gap School", elevation_m=120)
    for kit in ("k-01", "k-02", "k-03", "k-04"):
        web_stack.add_kit(SITE, kit)
    holes = [(START + timedelta(hours=3 + 2 * n), START + timedelta(hours=3 + 2 * n, minutes=11 + n))
             for n in range(SHORT_GAPS)]
    lines = []
    for moment in minutes(START, END):
        t = moment.timestamp()
        if not OFFLINE[0] < moment < OFFLINE[1]:
            lines.append(web_stack.reading_line(SITE, "k-01", t, temperature=4.0, humidity=80.0))
        lines.append(web_stack.reading_line(SITE, "k-02", t, temperature=5.0, humidity=75.0))
        if not any(a < moment < b for a, b in holes):
            lines.append(web_stack.reading_line(SITE, "k-04", t, temperature=6.0))
    web_stack.write_points(lines)
    answer = web_stack.api("POST", "/v1/datasets", json={
        "title": "Where the data stops", "site": SITE, "kits": ["k-01", "k-02", "k-03", "k-04"],
        "quantities": ["temperature", "humidity", "dew_point", "sea_level_pressure"],
        "start": "2025-03-03", "end": "2025-03-04"})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def test_the_class_page_lists_each_kit_s_gaps(screen: Screen, web_stack: WebStack,
                                              gaps_dataset: dict[str, Any]) -> None:
    page = screen.page
    answer = page.goto(web_stack.path(f"/d/{gaps_dataset['code']}?lang=en"))
    assert answer is not None and answer.status == 200
    section = page.locator("section.gaps")
    assert section.get_attribute("data-gaps") == "ok"
    assert page.locator(".gap-list[data-kit='k-01'] li").all_inner_texts() == [
        "k-01: no data from 3 March, 14:20 to 4 March, 08:05 (17 hrs 45 mins)"]
    assert page.locator(".gap-list[data-kit='k-03'] li").all_inner_texts() == [
        "k-03: no data from 3 March, 00:00 to 5 March, 00:00 (2 days)"]
    assert page.locator(".gap-list[data-kit='k-02']").count() == 0
    short = page.locator(".gap-list[data-kit='k-04'] li").all_inner_texts()
    assert short[:5] == [f"k-04: no data from 3 March, {3 + 2 * n:02d}:00 to 3 March, {3 + 2 * n:02d}:{11 + n} "
                         f"({11 + n} mins)" for n in range(2, 7)]  # the five longest
    assert short[5] == "… and 2 shorter gaps: the zip's gaps.csv lists every gap."
    assert axe_results(page) == []
    page.wait_for_selector(".chart[data-drawn]", timeout=30_000)  # the screenshot shows the charts as drawn
    screen.screenshot("gaps")
    section.scroll_into_view_if_needed()
    screen.screenshot("gaps-in-view", full_page=False)
    assert screen.left_machine == []


def test_the_class_page_says_which_quantities_are_derived_and_how(screen: Screen, web_stack: WebStack,
                                                                  gaps_dataset: dict[str, Any]) -> None:
    page = screen.page
    page.goto(web_stack.path(f"/d/{gaps_dataset['code']}?lang=en"))
    captions = page.locator(".chart-box figcaption").all_inner_texts()
    assert captions == ["Temperature (°C)", "Humidity (%)"]  # the charts draw stored readings only
    dew = page.locator("li[data-derived='dew_point']")
    assert "Dew point" in dew.inner_text() and "derived" in dew.inner_text()
    formula = page.locator("dd[data-formula='dew_point']")
    assert "Td = b·γ / (a − γ)" in formula.inner_text()
    formula.locator("summary").click()  # the source, folded away until asked for
    assert "Alduchov" in formula.inner_text()
    pressure = page.locator("dd[data-formula='sea_level_pressure']").inner_text()
    assert "p0 = p · (1 + 0.0065·h / (T + 273.15))^5.25588" in pressure and "Source" in pressure
    assert "elevation is not set" not in pressure  # the site has one
    assert axe_results(page) == []
    page.locator("dl.derived-list").scroll_into_view_if_needed()
    screen.screenshot("derived-in-view", full_page=False)


def test_the_gaps_are_listed_in_the_reader_s_language(desktop: Screen, web_stack: WebStack,
                                                      gaps_dataset: dict[str, Any]) -> None:
    page = desktop.page
    page.goto(web_stack.path(f"/d/{gaps_dataset['code']}?lang=lv"))
    assert page.locator("#gaps-heading").inner_text() == "Pārtraukumi datos"
    assert page.locator(".gap-list[data-kit='k-01'] li").all_inner_texts() == [
        "k-01: nav datu 3. marts 14:20 – 4. marts 08:05 (17 st. 45 min)"]
    assert "Rasas punkts" in page.locator("li[data-derived='dew_point']").inner_text()
    desktop.screenshot("gaps-lv")


def test_the_charts_of_a_dataset_with_derived_quantities_draw_its_stored_readings(
        web_stack: WebStack, gaps_dataset: dict[str, Any]) -> None:
    answer = httpx.get(web_stack.path(f"/w/series/d/{gaps_dataset['code']}"), params={"q": "temperature",
                                                                                     "width": 800}, timeout=30)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [s["label"] for s in body["series"]] == ["k-01", "k-02", "k-03", "k-04"]
    k02 = [v for v in body["series"][1]["values"] if v is not None]
    assert k02 and set(k02) == {5.0}
