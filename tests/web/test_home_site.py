"""The home page and the site page in a real browser, on the real stack (API process, gateway, InfluxDB, Mosquitto).

Home lists the sites with their kits' online and silent counts, at both widths, keyboard reachable; the site page
shows a kit's reading published through the broker with its unit and decimal comma, marks a stale value with its
age and a silent kit as silent; the language chosen sticks; an XSS corpus is shown as text; unknown sites and a
store that is down give friendly pages in the reader's language.
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Dialog, expect
from web_screens import Screen
from web_stack import WebStack, axe_results

from api.app import create_app
from api.settings import ApiSettings
from metastore import registry

XSS = ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', 'javascript:alert(1)', '{{7*7}}']


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def school(web_stack: WebStack) -> dict[str, str]:
    """A site with three kits: one that publishes now through the broker, one silent for a day, one that
    reports but whose humidity sensor stopped five hours ago."""
    site = _name("hs-school")
    web_stack.add_site(site, title="Rīgas Skola Home", latitude=56.95, longitude=24.1, timezone="Europe/Riga")
    for kit in ("live", "quiet", "stale"):
        web_stack.add_kit(site, kit, kit_type="weather", description=f"The {kit} kit")
    now = time.time()
    web_stack.publish(site, "live", [{"t": now, "temperature": 21.4, "humidity": 55.2, "battery": 3.87}])
    web_stack.publish(site, "stale", [{"t": now, "temperature": 18.25}])
    web_stack.write_points([web_stack.reading_line(site, "stale", now - 5 * 3600, humidity=61.5),
                            web_stack.reading_line(site, "quiet", now - 26 * 3600, temperature=9.5)])
    # the silent kit was seen a day ago: its status point, as the gateway wrote it then
    web_stack.write_points([f"kit_status,kit=quiet,site={site} seen=1i {int((now - 26 * 3600) * 1000)}"])
    web_stack.wait_for(f"SELECT \"seen\" FROM kit_status WHERE site = '{site}'", count=3)
    return {"site": site}


def test_home_lists_the_site_with_its_kit_counts_and_nothing_leaves_the_machine(
        web_stack: WebStack, school: dict[str, str], screen: Screen) -> None:
    page = screen.page
    page.goto(web_stack.path("/?lang=en"))
    item = page.locator(f"li.site-item[data-site='{school['site']}']")
    expect(item).to_contain_text("Rīgas Skola Home")
    expect(item).to_contain_text("Online: 2")
    expect(item).to_contain_text("Silent: 1")
    expect(page.locator("form[action='/d'] input[name=code]")).to_be_visible()
    expect(page.locator("#map")).to_have_count(0)  # no tiles configured: no map, the list is the page
    screen.screenshot("home")
    assert screen.left_machine == []
    assert axe_results(page) == []


def test_the_class_code_form_opens_d_with_the_code(web_stack: WebStack, desktop: Screen) -> None:
    page = desktop.page
    page.goto(web_stack.path("/?lang=en"))
    page.fill("#code", "abcd-2345")
    with page.expect_navigation():
        page.press("#code", "Enter")
    # the class page's helper may redirect /d?code= to /d/<code>: the form's own request is what is ours
    assert any(url.endswith("/d?code=abcd-2345") for url in desktop.requested), desktop.requested


def test_tab_reaches_the_site_links(web_stack: WebStack, school: dict[str, str], desktop: Screen) -> None:
    page = desktop.page
    page.goto(web_stack.path("/?lang=en"))
    target = f"/s/{school['site']}"
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.getAttribute('href')") == target:
            break
    else:
        pytest.fail("Tab never reached the site's link")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**{target}")
    expect(page.locator("h1")).to_have_text("Rīgas Skola Home")


def test_the_site_page_shows_a_published_reading_with_its_unit_and_decimal_comma_in_latvian(
        web_stack: WebStack, school: dict[str, str], screen: Screen) -> None:
    page = screen.page
    page.goto(web_stack.path(f"/s/{school['site']}?lang=lv"))
    card = page.locator("li.kit-card[data-kit='live']")
    expect(card.locator("li[data-quantity='temperature'] .reading")).to_have_text("21,4\u00a0°C")
    expect(card.locator("li[data-quantity='humidity'] .reading")).to_have_text("55,2\u00a0%")
    expect(card.locator("[data-state]")).to_have_attribute("data-state", "online")
    expect(card).to_contain_text("Tiešsaistē")
    expect(card).to_contain_text("Baterija 3,87\u00a0V")
    expect(card).to_contain_text("Pēdējo reizi sazinājās pirms")
    expect(card.locator("svg.spark[role=img]").first).to_have_attribute("aria-label", re.compile("pēdējās 24"))
    expect(card.locator("a[href$='/live']")).to_be_visible()
    screen.screenshot("site-lv")
    assert screen.left_machine == []
    assert axe_results(page) == []


def test_a_stale_value_is_marked_with_its_age_and_a_silent_kit_is_silent(
        web_stack: WebStack, school: dict[str, str], desktop: Screen) -> None:
    page = desktop.page
    page.goto(web_stack.path(f"/s/{school['site']}?lang=en"))
    stale = page.locator("li.kit-card[data-kit='stale']")
    humidity = stale.locator("li[data-quantity='humidity'] .reading")
    expect(humidity).to_have_class(re.compile("stale-value"))
    expect(humidity).to_have_text(re.compile(r"61\.5\u00a0% · (5|4) hr?s? old"))
    expect(stale.locator("li[data-quantity='temperature'] .reading")).not_to_have_class(re.compile("stale-value"))
    quiet = page.locator("li.kit-card[data-kit='quiet']")
    expect(quiet.locator("[data-state]")).to_have_attribute("data-state", "silent")
    expect(quiet).to_contain_text("Silent")
    expect(quiet.locator(".stale-value")).to_contain_text("9.5\u00a0°C")
    page.goto(web_stack.path(f"/s/{school['site']}?lang=lv"))
    expect(page.locator("li.kit-card[data-kit='stale'] li[data-quantity='humidity'] .reading")).to_have_text(
        re.compile(r"61,5\u00a0% · pirms (5|4) st\."))


def test_the_language_chosen_sticks_on_the_next_page(web_stack: WebStack, school: dict[str, str],
                                                     desktop: Screen) -> None:
    page = desktop.page
    page.goto(web_stack.path("/"))
    page.click("nav.langs a[hreflang=lt]")
    expect(page.locator("html")).to_have_attribute("lang", "lt")
    page.goto(web_stack.path(f"/s/{school['site']}"))
    expect(page.locator("html")).to_have_attribute("lang", "lt")
    expect(page.locator("li.kit-card[data-kit='live'] li[data-quantity='temperature'] .reading")).to_have_text(
        "21,4\u00a0°C")
    expect(page.locator("li.kit-card[data-kit='live']")).to_contain_text("Veikia")


def test_an_xss_corpus_in_titles_and_descriptions_is_shown_as_text(web_stack: WebStack, screen: Screen) -> None:
    site = _name("hs-xss")
    web_stack.add_site(site, title=XSS[0], description=" ".join(XSS), latitude=56.0, longitude=24.0)
    web_stack.add_kit(site, "k1", description=" ".join(XSS))
    page = screen.page
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(web_stack.path("/?lang=en"))
    expect(page.locator(f"li.site-item[data-site='{site}'] h3")).to_have_text(XSS[0])
    page.goto(web_stack.path(f"/s/{site}?lang=en"))
    expect(page.locator("h1")).to_have_text(XSS[0])
    expect(page.locator(".site-description")).to_have_text(" ".join(XSS))
    expect(page.locator(".kit-description")).to_have_text(" ".join(XSS))
    assert page.locator("main img").count() == 0
    assert "49" not in (page.locator("main").text_content() or "")
    screen.screenshot("xss")
    page.wait_for_timeout(200)
    assert dialogs == []


def test_an_unknown_site_gives_the_friendly_page_in_latvian_with_404(web_stack: WebStack, desktop: Screen) -> None:
    answer = httpx.get(web_stack.path("/s/no-such-school"), headers={"Accept-Language": "lv"}, timeout=30)
    assert answer.status_code == 404
    assert "text/html" in answer.headers["content-type"]
    page = desktop.page
    response = page.goto(web_stack.path("/s/no-such-school?lang=lv"))
    assert response is not None and response.status == 404
    expect(page.locator("h1")).to_have_text("Šādas skolas vietas nav")
    desktop.screenshot("unknown-site")


def test_a_store_that_is_down_gives_the_friendly_503_page_and_the_home_list_stays(tmp_path: Path) -> None:
    settings = ApiSettings(state_dir=tmp_path, influx_url="http://127.0.0.1:9", influx_database="none",
                           api_public_read=True, api_database_url=None, api_timezone="UTC")
    app = create_app(settings)
    with TestClient(app) as client:
        with app.state.sessions() as db:
            registry.add_site(db, "down-school", title="Down School")
            registry.add_kit(db, "down-school", "k1")
        answer = client.get("/s/down-school", headers={"Accept-Language": "lv"})
        assert answer.status_code == 503
        assert "Mērījumu krātuve neatbild" in answer.text
        assert "Traceback" not in answer.text
        home = client.get("/?lang=ru")
        assert home.status_code == 200
        assert "Down School" in home.text and "Хранилище измерений не отвечает" in home.text


def test_home_without_public_read_offers_sign_in_and_the_code_but_no_sites(tmp_path: Path) -> None:
    settings = ApiSettings(state_dir=tmp_path, influx_url="http://127.0.0.1:9", influx_database="none",
                           api_public_read=False, api_database_url=None)
    app = create_app(settings)
    with TestClient(app) as client:
        with app.state.sessions() as db:
            registry.add_site(db, "hidden-school", title="Hidden School")
        home = client.get("/?lang=en")
        assert home.status_code == 200
        assert "Hidden School" not in home.text and 'action="/d"' in home.text
        assert client.get("/s/hidden-school").status_code == 401


def test_retired_sites_are_not_on_the_home_page_and_the_map_has_only_their_places(tmp_path: Path) -> None:
    settings = ApiSettings(state_dir=tmp_path, influx_url="http://127.0.0.1:9", influx_database="none",
                           api_public_read=True, api_database_url=None,
                           api_map_tiles_url="https://tiles.example.org/{z}/{x}/{y}.png")
    app = create_app(settings)
    with TestClient(app) as client:
        with app.state.sessions() as db:
            registry.add_site(db, "old-school", title="Old School", latitude=57.0, longitude=24.0)
            registry.retire_site(db, "old-school")
            registry.add_site(db, "new-school", title="New School", latitude=56.5, longitude=25.5)
            registry.add_kit(db, "new-school", "garden", latitude=56.512345, longitude=25.512345)
        home = client.get("/?lang=en").text
        assert "New School" in home and "Old School" not in home
        assert 'id="map"' in home and "56.5" in home
        assert "56.512345" not in home  # a kit's place is never on the page
