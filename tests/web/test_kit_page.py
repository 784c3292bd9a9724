"""The kit page in a real browser against the real stack: a reading published by a simulated kit appears without a
reload, a rejection is explained in Latvian, gaps stay gaps, a retired kit gets a friendly page, a description
is shown as text, axe finds nothing serious, and no request leaves the machine."""

from __future__ import annotations

import time
import uuid

import httpx
from web_screens import Screen
from web_stack import WebStack, axe_results

from lauks import schema

XSS = '<script>alert(1)</script><img src=x onerror=alert(2)>"\'&'


def site_name(tag: str) -> str:
    return f"kitpage-{tag}-{uuid.uuid4().hex[:6]}"


def test_a_published_reading_appears_on_the_phone_without_reloading(web_stack: WebStack, phone: Screen) -> None:
    site = site_name("live")
    web_stack.add_site(site)
    web_stack.add_kit(site, "k1", description=XSS)
    now = time.time()
    web_stack.publish(site, "k1", [{"t": now - 60, "temperature": 11.5, "humidity": 40.0}])
    # the page charts what the kit has reported: opened before the gateway stored the first reading, it has no
    # chart (seen as a flaky failure, about one run in five, when the page was asked for 0.3 s after publishing)
    assert web_stack.wait_for(f"SELECT temperature FROM readings WHERE site = '{site}' AND temperature = 11.5")
    page = phone.page
    page.goto(web_stack.path(f"/s/{site}/k1?lang=lv"))
    page.wait_for_selector(".chart[data-drawn]", timeout=30_000)
    drawn = page.evaluate("Array.from(document.querySelectorAll('.chart')).map(e => [e.dataset.series, "
                          "e.dataset.drawn, e.innerText.slice(0, 200)])")
    assert any(state == "uplot" for _url, state, _text in drawn), drawn
    page.wait_for_selector("#live-note:not([hidden])", timeout=10_000)
    assert XSS in page.inner_text(".kit-description")  # shown as text, never run
    reading = page.locator('#latest li[data-quantity="temperature"] .reading')
    assert reading.inner_text().startswith("11,5")
    web_stack.publish(site, "k1", [{"t": time.time(), "temperature": 23.4}])
    stored = web_stack.wait_for(f"SELECT temperature FROM readings WHERE site = '{site}' AND temperature = 23.4")
    stored_at = time.monotonic()
    assert stored
    deadline = stored_at + 15  # generous: the 5 s target is bench/web.py's to measure, not this test's
    while not reading.inner_text().startswith("23,4") and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    seen_after_s = time.monotonic() - stored_at
    assert reading.inner_text().startswith("23,4")
    print(f"publish-to-visible: {seen_after_s:.2f} s after the reading was stored")
    points = int(page.get_attribute('.chart[data-live-chart="temperature"]', "data-points") or "0")
    assert points >= 2
    phone.screenshot("live")
    assert axe_results(page) == []
    assert phone.left_machine == []


def test_a_rejection_is_explained_in_latvian(web_stack: WebStack, screen: Screen) -> None:
    site = site_name("rej")
    web_stack.add_site(site)
    web_stack.add_kit(site, "k1")
    web_stack.publish(site, "k1", [{"t": time.time() - 30, "temperature": 85.3, "humidity": 50.0}])
    assert web_stack.wait_for(f"SELECT * FROM rejections WHERE site = '{site}'")
    page = screen.page
    page.goto(web_stack.path(f"/s/{site}/k1?lang=lv"))
    sentence = page.inner_text(".rejection .sentence")
    assert "Temperatūra 85,3 °C ir ārpus iespējamā diapazona (līdz 70 °C)." in sentence
    assert "Pārbaudi sensora vadus" in page.inner_text(".rejection .advice")
    assert "Reizes: 1." in page.inner_text(".rejection")
    screen.screenshot("rejection")
    assert axe_results(page) == []
    assert screen.left_machine == []


def test_a_three_hour_hole_is_null_in_the_series(web_stack: WebStack) -> None:
    site = site_name("gap")
    web_stack.add_site(site)
    web_stack.add_kit(site, "k1")
    now = time.time()
    web_stack.write_points(web_stack.reading_line(site, "k1", now - m * 60, temperature=15.0)
                           for m in range(0, 12 * 60, 5) if not 4 * 60 <= m < 7 * 60)
    body = httpx.get(web_stack.path(f"/w/series/kit/{site}/k1"), params={"q": "temperature", "width": "375"},
                     timeout=30).json()
    hole = [v for t, v in zip(body["t"], body["series"][0]["values"], strict=True)
            if now - 7 * 3600 + 600 < t < now - 4 * 3600 - 600]
    assert len(hole) >= 30 and all(v is None for v in hole)


def test_a_retired_kit_gets_a_friendly_page_in_latvian(web_stack: WebStack, screen: Screen) -> None:
    site = site_name("old")
    web_stack.add_site(site)
    web_stack.add_kit(site, "k1")
    retired = web_stack.lauks("kit", "retire", site, "k1")
    if retired.returncode != 0:  # no such command: retire through the API as staff
        answer = web_stack.api("DELETE", f"/v1/sites/{site}/kits/k1")
        assert answer.status_code in (200, 204), (retired.stderr, answer.text)
    response = screen.page.goto(web_stack.path(f"/s/{site}/k1?lang=lv"))
    assert response is not None and response.status == 410
    text = screen.page.inner_text("main")
    assert "izņemts no lietošanas" in text and "Traceback" not in text
    screen.screenshot("retired")
    assert axe_results(screen.page) == []
    assert screen.left_machine == []


def test_the_status_history_shows_a_restart_and_late_readings(web_stack: WebStack, desktop: Screen) -> None:
    site = site_name("hist")
    web_stack.add_site(site)
    web_stack.add_kit(site, "k1")
    now = time.time()
    ms = int(now * 1000)
    lines = [f"{schema.KIT_STATUS},kit=k1,site={site} seen=1i,samples=1i,late=0i,boot=3i {ms - 7200_000}",
             f"{schema.KIT_STATUS},kit=k1,site={site} seen=1i,samples=5i,late=4i,boot=4i,fw=\"1.2\" {ms - 60_000}"]
    web_stack.write_points(lines)
    web_stack.write_points([web_stack.reading_line(site, "k1", now - 60, temperature=9.0)])
    desktop.page.goto(web_stack.path(f"/s/{site}/k1?lang=en"))
    history = desktop.page.inner_text(".history")
    assert "The kit restarted (start number 4, firmware 1.2)." in history
    assert "4 readings arrived late" in history
    desktop.screenshot("history")
    assert desktop.left_machine == []
