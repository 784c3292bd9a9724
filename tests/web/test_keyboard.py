"""Keyboard use: on every page the first Tab reaches "skip to the content", and Tab alone reaches every link,
button and field of the page's content, in both widths; nothing a mouse can use is out of a keyboard's reach."""

from __future__ import annotations

import time
import uuid

import pytest
from web_screens import Screen
from web_stack import WebStack

# every element a mouse can use in <main>, that is neither hidden nor disabled
FOCUSABLE = """() => Array.from(document.querySelectorAll(
  'main a[href], main button, main input:not([type=hidden]), main select, main textarea, main summary'))
  .filter(e => !e.disabled && e.offsetParent !== null && e.getAttribute('tabindex') !== '-1')
  .map(e => e.outerHTML.slice(0, 120))"""


@pytest.fixture(scope="module")
def places(web_stack: WebStack) -> dict[str, str]:
    site = f"keys-{uuid.uuid4().hex[:6]}"
    web_stack.add_site(site, title="Keyboard School")
    web_stack.add_kit(site, "k1")
    now = time.time()
    web_stack.write_points(web_stack.reading_line(site, "k1", now - 300 * i, temperature=5 + i % 4) for i in range(24))
    made = web_stack.api("POST", "/v1/datasets", json={"title": "Keys", "site": site, "kits": ["k1"],
                                                       "quantities": ["temperature"], "rolling_days": 2})
    assert made.status_code == 201, made.text
    return {"site": site, "code": made.json()["code"]}


@pytest.mark.parametrize(("path", "staff"), [
    ("/", False), ("/s/{site}", False), ("/s/{site}/k1", False), ("/d", False), ("/d/{code}", False),
    ("/signin", False), ("/teach", True), ("/teach/new", True), ("/teach/{code}", True), ("/fleet", True),
])
def test_tab_reaches_the_skip_link_first_and_then_everything_in_the_page(
        web_stack: WebStack, screen: Screen, places: dict[str, str], path: str, staff: bool) -> None:
    page = screen.page
    if staff:
        web_stack.sign_in(page)
    page.goto(web_stack.path(path.format(**places)))
    page.wait_for_load_state("networkidle")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")  # the skip link moves the reader to the content
    assert page.evaluate("location.hash") == "#main"
    wanted = page.evaluate(FOCUSABLE)
    assert wanted, "the page has something to use"
    reached: set[str] = set()
    for _ in range(len(wanted) * 3 + 40):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement.outerHTML.slice(0, 120)"))
        if set(wanted) <= reached:
            break
    assert set(wanted) - reached == set()
    visible = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert visible != "none"  # focus can be seen
