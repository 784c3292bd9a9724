"""The class page, /d/<code>: a pupil with no account opens the dataset, sees its charts and downloads its files;
a wrong code gets a friendly page in the pupil's language, and guessing codes soon has to wait."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from api_fixtures import api_process, process_env
from web_screens import Screen
from web_stack import WebStack, axe_results

from lauks.services import Influxd
from web.i18n import Translator

SITE = "class-web"
KITS = ("yard", "roof")
RIGA = ZoneInfo("Europe/Riga")
START = datetime(2025, 3, 3, 9, 0, tzinfo=RIGA)
XSS_TITLE = '<script>alert("title")</script><b>bold</b>'
XSS_DESCRIPTION = '"><img src=x onerror=alert(1)><svg onload=alert(2)>{{ 7*7 }}'


def seeded_values(kit: str, index: int) -> tuple[float, float]:
    """(temperature, humidity) of sample ``index`` of ``kit``: known numbers to find in the files."""
    bump = 0.0 if kit == "yard" else 3.0
    return round(5.25 + index * 0.5 + bump, 2), round(60.0 + index, 1)


@pytest.fixture(scope="session")  # once: the browser tests of this file run after the others
def dataset(web_stack: WebStack) -> dict[str, Any]:
    """A fixed dataset of two kits with twelve samples each (every 10 minutes from 09:00 Riga time)."""
    web_stack.add_site(SITE, title="Riverside School")
    for kit in KITS:
        web_stack.add_kit(SITE, kit)
    lines = []
    for kit in KITS:
        for index in range(12):
            temperature, humidity = seeded_values(kit, index)
            lines.append(web_stack.reading_line(SITE, kit, START.timestamp() + index * 600, temperature=temperature,
                                                humidity=humidity))
    web_stack.write_points(lines)
    answer = web_stack.api("POST", "/v1/datasets", json={
        "title": "Spring in the schoolyard", "description": "Two kits, one morning.", "site": SITE,
        "kits": list(KITS), "quantities": ["temperature", "humidity"], "start": "2025-03-03", "end": "2025-03-03"})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


@pytest.fixture(scope="session")  # once: the browser tests of this file run after the others
def xss_dataset(web_stack: WebStack, dataset: dict[str, Any]) -> dict[str, Any]:
    answer = web_stack.api("POST", "/v1/datasets", json={
        "title": XSS_TITLE, "description": XSS_DESCRIPTION, "site": SITE, "kits": ["yard"],
        "quantities": ["temperature"], "rolling_days": 7})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def test_a_pupil_opens_the_class_page_and_sees_what_is_in_it(screen: Screen, web_stack: WebStack,
                                                              dataset: dict[str, Any]) -> None:
    page = screen.page
    answer = page.goto(web_stack.path(f"/d/{dataset['code']}?lang=en"))
    assert answer is not None and answer.status == 200
    assert page.locator("h1").inner_text() == "Spring in the schoolyard"
    assert "Riverside School" in page.inner_text("header.panel")
    assert page.locator(".chart-box").count() == 2
    captions = page.locator(".chart-box figcaption").all_inner_texts()
    assert captions == ["Temperature (°C)", "Humidity (%)"]
    series = page.locator(".chart").first.get_attribute("data-series")
    assert series == f"/w/series/d/{dataset['code']}?q=temperature"
    assert "On 3 Mar 2025" in page.inner_text("main")
    citation = page.inner_text("#citation")
    assert "Spring in the schoolyard" in citation and "Lauks" in citation and f"/d/{dataset['code']}" in citation
    assert page.locator(".downloads a").count() == 9
    assert axe_results(page) == []
    screen.screenshot("class")
    assert screen.left_machine == []


def test_the_chart_series_of_a_dataset_holds_the_seeded_readings(web_stack: WebStack,
                                                                 dataset: dict[str, Any]) -> None:
    answer = httpx.get(web_stack.path(f"/w/series/d/{dataset['code']}"), params={"q": "temperature", "width": 800})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["unit"] == "°C" and body["quantity"] == "temperature" and body["gaps"] is True
    assert [s["label"] for s in body["series"]] == list(KITS)
    yard = [v for v in body["series"][0]["values"] if v is not None]
    assert yard == [seeded_values("yard", i)[0] for i in range(12)]  # each sample in a bucket of its own
    first = next(t for t, v in zip(body["t"], body["series"][0]["values"], strict=True) if v is not None)
    assert first == int(START.timestamp())


def test_the_csv_download_button_gives_the_api_s_rows_with_the_seeded_values(desktop: Screen, web_stack: WebStack,
                                                                            dataset: dict[str, Any],
                                                                            tmp_path: Path) -> None:
    page = desktop.page
    page.goto(web_stack.path(f"/d/{dataset['code']}?lang=en"))
    with page.expect_download() as event:
        page.get_by_role("link", name="CSV", exact=True).click()
    saved = tmp_path / "data.csv"
    event.value.save_as(saved)
    from_api = httpx.get(web_stack.path(f"/v1/datasets/{dataset['code']}/data.csv"), timeout=30)
    assert from_api.status_code == 200
    assert saved.read_bytes() == from_api.content
    rows = list(csv.DictReader(io.StringIO(saved.read_text())))
    temperatures = sorted(float(r["value"]) for r in rows if r["quantity"] == "temperature" and r["kit"] == "yard")
    assert temperatures == sorted(seeded_values("yard", i)[0] for i in range(12))
    assert desktop.left_machine == []


def test_the_spreadsheet_csv_has_semicolons_and_decimal_commas(desktop: Screen, web_stack: WebStack,
                                                               dataset: dict[str, Any], tmp_path: Path) -> None:
    page = desktop.page
    page.goto(web_stack.path(f"/d/{dataset['code']}?lang=en"))
    with page.expect_download() as event:
        page.get_by_role("link", name="CSV for spreadsheets (; and decimal comma)", exact=True).click()
    saved = tmp_path / "comma.csv"
    event.value.save_as(saved)
    from_api = httpx.get(web_stack.path(f"/v1/datasets/{dataset['code']}/data.csv"),
                         params={"decimal_comma": "true"}, timeout=30)
    assert saved.read_bytes() == from_api.content
    text = saved.read_text()
    assert ";" in text.splitlines()[0] and "5,25" in text and "5.25" not in text


def test_the_excel_csv_starts_with_a_byte_order_mark(web_stack: WebStack, dataset: dict[str, Any],
                                                     desktop: Screen) -> None:
    desktop.page.goto(web_stack.path(f"/d/{dataset['code']}?lang=en"))
    href = desktop.page.get_by_role("link", name="CSV for Excel (with BOM)", exact=True).get_attribute("href")
    assert href is not None
    answer = httpx.get(web_stack.path(href), timeout=30)
    assert answer.status_code == 200 and answer.content.startswith("\ufeff".encode())


def test_a_code_typed_in_lower_case_with_spaces_opens_the_dataset(desktop: Screen, web_stack: WebStack,
                                                                  dataset: dict[str, Any]) -> None:
    page = desktop.page
    page.goto(web_stack.path("/d?lang=en"))
    typed = " ".join(dataset["code"].replace("-", "").lower())  # "a b c d 2 3 4 5"
    page.fill("#code", typed)
    page.click("main form button[type=submit]")
    page.wait_for_load_state()
    assert page.url.endswith(f"/d/{dataset['code']}")
    assert page.locator("h1").inner_text() == "Spring in the schoolyard"
    assert axe_results(page) == []
    desktop.screenshot("typed")
    assert desktop.left_machine == []


def test_the_code_form_page_looks_right(screen: Screen, web_stack: WebStack) -> None:
    screen.page.goto(web_stack.path("/d?lang=lv"))
    assert screen.page.locator("#code").is_visible()
    assert axe_results(screen.page) == []
    screen.screenshot("code-form")


@pytest.mark.parametrize("locale", ["lv", "lt"])
def test_an_unknown_code_gives_a_friendly_page_in_the_reader_s_language(desktop: Screen, web_stack: WebStack,
                                                                         locale: str) -> None:
    page = desktop.page
    answer = page.goto(web_stack.path(f"/d/ZZZZ-2345?lang={locale}"))
    assert answer is not None and answer.status == 404
    expected = Translator(locale).gettext("No dataset has this code")
    assert expected != "No dataset has this code"  # translated, not the English
    assert page.locator("h1").inner_text() == expected
    assert page.locator("html").get_attribute("lang") == locale
    assert axe_results(page) == []
    desktop.screenshot(f"unknown-{locale}")


def test_too_many_wrong_codes_give_the_wait_page(desktop: Screen, influxd: Influxd,
                                                tmp_path_factory: pytest.TempPathFactory) -> None:
    database = f"class_{uuid.uuid4().hex[:10]}"
    httpx.post(f"{influxd.url}/query", data={"q": f'CREATE DATABASE "{database}"'}, timeout=30).raise_for_status()
    env = process_env(tmp_path_factory.mktemp("class-limit"), influxd.url, database, CODE_FAILURES_PER_MINUTE="1",
                      CODE_FAILURE_BURST="2")
    with api_process(env) as url:
        page = desktop.page
        statuses = []
        for attempt in range(4):
            answer = page.goto(f"{url}/d/ZZZZ-234{attempt + 2}?lang=lv")
            assert answer is not None
            statuses.append(answer.status)
        assert statuses[:2] == [404, 404] and statuses[-1] == 429
        lv = Translator("lv")
        assert page.locator("h1").inner_text() == lv.gettext("Too many tries")
        advice = page.inner_text(".lead")
        seconds = re.search(r"\d+", advice)
        assert seconds is not None and 1 <= int(seconds.group()) <= 60
        assert axe_results(page) == []
        desktop.screenshot("too-many")


def test_a_title_and_description_full_of_markup_are_shown_as_text(screen: Screen, web_stack: WebStack,
                                                                   xss_dataset: dict[str, Any]) -> None:
    page = screen.page
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    answer = page.goto(web_stack.path(f"/d/{xss_dataset['code']}?lang=en"))
    assert answer is not None and answer.status == 200
    assert page.locator("[data-title]").inner_text() == XSS_TITLE
    assert page.locator("[data-description]").inner_text() == XSS_DESCRIPTION
    assert page.locator("main img, main b, main script, header.panel svg").count() == 0
    assert XSS_TITLE in page.inner_text("#citation")
    assert "The last 7 days, updated live" in page.inner_text("main")
    assert dialogs == []
    assert page.title().startswith(XSS_TITLE)
    screen.screenshot("xss")


def test_the_series_of_an_unknown_code_is_json(web_stack: WebStack) -> None:
    answer = httpx.get(web_stack.path("/w/series/d/ZZZZ-2345"), params={"q": "temperature"})
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json()["error"] == "unknown_code"
