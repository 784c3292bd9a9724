"""The teacher's pages: build a dataset in the form and get its code, link and QR; list, edit, extend and delete it;
every form is refused without this browser's CSRF token; signing out ends the session."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, Page
from web_screens import Screen, open_screen
from web_stack import WebStack, axe_results

SITE = "teach-web"
CODE = re.compile(r"^[0-9A-Z]{4}-[0-9A-Z]{4}$")
XSS = '<img src=x onerror=alert(1)><script>alert("t")</script>'


@pytest.fixture(scope="module")
def site(web_stack: WebStack) -> str:
    web_stack.add_site(SITE, title="Hill School")
    for kit in ("north", "south"):
        web_stack.add_kit(SITE, kit)
    now_s = datetime.now(UTC).timestamp()
    web_stack.write_points(web_stack.reading_line(SITE, kit, now_s - i * 300, temperature=10 + i % 7)
                           for kit in ("north", "south") for i in range(200))
    return SITE


def sign_in(web_stack: WebStack, page: Page) -> None:
    """As WebStack.sign_in, which calls a Playwright method that does not exist (wait_load_state)."""
    page.goto(web_stack.path("/signin"))
    page.fill("#token", web_stack.staff_token)
    page.click("form.stack button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("form[action='/signout']").count() == 1


def made(web_stack: WebStack, title: str, **fields: Any) -> dict[str, Any]:
    body = {"title": title, "site": SITE, "quantities": ["temperature"], "rolling_days": 7, **fields}
    answer = web_stack.api("POST", "/v1/datasets", json=body)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def stored(web_stack: WebStack, code: str) -> dict[str, Any] | None:
    found = [d for d in web_stack.api("GET", "/v1/datasets").json() if d["code"] == code]
    return found[0] if found else None


def test_a_teacher_builds_a_rolling_dataset_and_gets_a_code_and_a_qr(screen: Screen, web_stack: WebStack,
                                                                     site: str) -> None:
    page = screen.page
    sign_in(web_stack, page)
    page.goto(web_stack.path("/teach/new?lang=en"))
    page.select_option("#site", site)
    page.click("form.site-step button")
    page.wait_for_load_state()
    assert page.locator("input[name=kits]:checked").count() == 2
    page.check("input[name=quantities][value=humidity]")
    page.check("input[name=quantities][value=dew_point]")  # derived: chosen like a measured one, not charted
    page.fill("#rolling_days", "14")
    page.fill("#title", "Two weeks on the hill")
    page.click("button[value=preview]")
    page.wait_for_load_state()
    charts = page.locator("#preview-charts .chart")
    assert charts.count() == 2
    assert "rolling_days=14" in (charts.first.get_attribute("data-series") or "")
    assert page.input_value("#title") == "Two weeks on the hill"  # the form comes back as it was left
    assert axe_results(page) == []
    screen.screenshot("builder")
    page.click("button[value=publish]")
    page.wait_for_load_state()
    code = page.locator(".code-big").inner_text()
    assert CODE.match(code), code
    assert page.url.endswith(f"/teach/{code}?done=published")
    assert page.locator(".share-url a").inner_text() == web_stack.path(f"/d/{code}")
    assert page.locator(".qr svg path").count() >= 1
    assert page.locator(".qr svg").get_attribute("role") == "img"
    dataset = stored(web_stack, code)
    assert dataset is not None
    assert dataset["rolling_days"] == 14 and dataset["created_by"] == "Test Teacher"
    assert dataset["kits"] == ["north", "south"] and dataset["quantities"] == ["temperature", "humidity", "dew_point"]
    assert axe_results(page) == []
    screen.screenshot("published")
    assert screen.left_machine == []


def test_the_builder_refuses_a_missing_title_in_the_reader_s_language(desktop: Screen, web_stack: WebStack,
                                                                      site: str) -> None:
    page = desktop.page
    sign_in(web_stack, page)
    page.goto(web_stack.path(f"/teach/new?site={site}&lang=lv"))
    page.click("button[value=publish]")
    page.wait_for_load_state()
    assert page.locator("[data-problem]").inner_text() == "Dod datu kopai nosaukumu, lai skolēni zina, kas tā ir."


def test_the_teacher_lists_edits_extends_and_deletes_a_dataset(screen: Screen, web_stack: WebStack,
                                                               site: str) -> None:
    expires = (datetime.now(UTC) + timedelta(days=10)).replace(microsecond=0)
    dataset = made(web_stack, f"Listed {screen.viewport}", expires_at=expires.isoformat())
    code = dataset["code"]
    page = screen.page
    sign_in(web_stack, page)
    page.goto(web_stack.path("/teach?lang=en"))
    card = page.locator(f".dataset[data-code='{code}']")
    assert card.count() == 1 and f"Listed {screen.viewport}" in card.inner_text()
    assert "The last 7 days, updated live" in card.inner_text()
    assert axe_results(page) == []
    screen.screenshot("list")

    card.get_by_role("link", name="Edit").click()
    page.wait_for_load_state()
    page.fill("#title", "Renamed")
    page.click("form[action$='/edit'] button")
    page.wait_for_load_state()
    assert page.locator("[data-done]").inner_text() == "Your changes are saved."
    after = stored(web_stack, code)
    assert after is not None and after["title"] == "Renamed"
    assert after["expires_at"] is not None  # the expiry kept, as the form held it
    screen.screenshot("edit")

    before = datetime.fromisoformat(after["expires_at"])
    page.get_by_role("button", name="+7 days").click()
    page.wait_for_load_state()
    extended = stored(web_stack, code)
    assert extended is not None
    assert timedelta(days=6, hours=20) <= datetime.fromisoformat(extended["expires_at"]) - before <= timedelta(days=8)

    page.get_by_role("link", name="Delete this dataset…").click()
    page.wait_for_load_state()
    assert stored(web_stack, code) is not None  # the first step only asks
    page.get_by_role("button", name="Yes, delete it").click()
    page.wait_for_load_state()
    assert page.url.endswith("/teach?done=deleted")
    assert stored(web_stack, code) is None
    assert page.locator(f".dataset[data-code='{code}']").count() == 0
    assert screen.left_machine == []


def test_a_form_post_without_the_csrf_token_is_refused_and_changes_nothing(desktop: Screen, web_stack: WebStack,
                                                                          site: str) -> None:
    code = made(web_stack, "Guarded")["code"]
    page = desktop.page
    sign_in(web_stack, page)
    for path, form in ((f"/teach/{code}/edit", {"title": "Hijacked"}), (f"/teach/{code}/delete", {"confirm": "yes"}),
                       (f"/teach/{code}/extend", {"days": "30"})):
        answer = page.request.post(web_stack.path(path), form=form, max_redirects=0)
        assert answer.status == 403, path
    after = stored(web_stack, code)
    assert after is not None and after["title"] == "Guarded" and after["expires_at"] is None


def test_a_token_from_another_browser_s_cookie_is_refused(browser: Browser, desktop: Screen, web_stack: WebStack,
                                                          site: str) -> None:
    code = made(web_stack, "Guarded too")["code"]
    sign_in(web_stack, desktop.page)
    other = open_screen(browser, "desktop", "other-browser")
    try:
        other.page.goto(web_stack.path("/signin"))
        foreign = other.page.locator("input[name=csrf]").first.input_value()
    finally:
        other.page.context.close()
    desktop.page.goto(web_stack.path(f"/teach/{code}"))
    own = desktop.page.locator("form[action$='/edit'] input[name=csrf]").input_value()
    assert foreign != own
    answer = desktop.page.request.post(web_stack.path(f"/teach/{code}/edit"),
                                       form={"csrf": foreign, "title": "Hijacked"}, max_redirects=0)
    assert answer.status == 403
    after = stored(web_stack, code)
    assert after is not None and after["title"] == "Guarded too"
    # and this browser's own token works, so the refusal was the token's
    answer = desktop.page.request.post(web_stack.path(f"/teach/{code}/edit"),
                                       form={"csrf": own, "title": "Mine"}, max_redirects=0)
    assert answer.status == 303
    mine = stored(web_stack, code)
    assert mine is not None and mine["title"] == "Mine"


def test_signing_out_ends_the_session(desktop: Screen, web_stack: WebStack, site: str) -> None:
    page = desktop.page
    sign_in(web_stack, page)
    assert page.goto(web_stack.path("/teach?lang=en")).status == 200  # type: ignore[union-attr]
    page.click("form[action='/signout'] button")
    page.wait_for_load_state()
    answer = page.goto(web_stack.path("/teach?lang=en"))
    assert answer is not None and answer.status == 401
    assert page.locator("h1").inner_text() == "Please sign in"
    preview = page.request.get(web_stack.path(f"/w/series/preview?site={SITE}&q=temperature&rolling_days=1"))
    assert preview.status == 401


def test_markup_in_a_title_is_shown_as_text_on_the_teacher_s_pages(screen: Screen, web_stack: WebStack,
                                                                   site: str) -> None:
    code = made(web_stack, XSS, description=XSS)["code"]
    page = screen.page
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(web_stack, page)
    page.goto(web_stack.path("/teach?lang=en"))
    assert page.locator(f".dataset[data-code='{code}'] h2").inner_text() == XSS
    page.goto(web_stack.path(f"/teach/{code}?lang=en&confirm=delete"))
    assert page.locator("[data-title]").inner_text() == XSS
    assert page.input_value("#description") == XSS
    assert page.locator("main img, main script").count() == 0
    assert dialogs == []
    assert axe_results(page) == []
    screen.screenshot("xss")
