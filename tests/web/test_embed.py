"""Embeds: a kit's chart and a dataset's chart render inside an iframe on a page of another origin (a school's
web site), set no cookie, and are the only pages that may be framed: the others refuse it."""

from __future__ import annotations

import http.server
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from web_screens import Screen
from web_stack import WebStack

from lauks.services import free_port


class SchoolSite:
    """A page on another origin (another port of loopback is another origin) with the iframe in it."""

    def __init__(self) -> None:
        self.body = b""
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(owner.body)

            def log_message(self, *args: object) -> None:
                pass

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def show(self, *frames: str) -> str:
        self.body = ("<!DOCTYPE html><html lang='en'><head><title>Our school</title></head><body><h1>Our school</h1>"
                     + "".join(f"<iframe src='{src}' width='600' height='320' title='f{n}'></iframe>"
                               for n, src in enumerate(frames))
                     + "</body></html>").encode()
        return f"http://127.0.0.1:{self.port}/"


@pytest.fixture
def school() -> Iterator[SchoolSite]:
    made = SchoolSite()
    yield made
    made.server.shutdown()


def _seeded(web_stack: WebStack) -> str:
    site = f"embed-{uuid.uuid4().hex[:6]}"
    web_stack.add_site(site)
    web_stack.add_kit(site, "k1")
    now = time.time()
    web_stack.write_points(web_stack.reading_line(site, "k1", now - 600 * i, temperature=10 + i % 7)
                           for i in range(60))
    return site


def _frame(screen: Screen, src_part: str) -> object:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for frame in screen.page.frames:
            if src_part in frame.url:
                return frame
        screen.page.wait_for_timeout(100)
    raise AssertionError(f"no frame loaded {src_part}: {[f.url for f in screen.page.frames]}")


def test_a_kit_chart_renders_in_an_iframe_on_another_origin(web_stack: WebStack, screen: Screen,
                                                            school: SchoolSite) -> None:
    site = _seeded(web_stack)
    embed = web_stack.path(f"/embed/kit/{site}/k1/temperature?lang=lv")
    screen.page.goto(school.show(embed))
    frame = _frame(screen, "/embed/kit/")
    frame.wait_for_selector('.chart[data-drawn="uplot"] canvas', timeout=15_000)  # type: ignore[attr-defined]
    assert "Temperatūra" in frame.inner_text("figcaption")  # type: ignore[attr-defined]
    screen.screenshot("kit-embed")
    answer = httpx.get(embed)
    assert answer.status_code == 200 and "set-cookie" not in answer.headers
    assert "frame-ancestors *" in answer.headers["content-security-policy"]
    assert "x-frame-options" not in answer.headers
    assert screen.left_machine == []


def test_a_dataset_chart_renders_in_an_iframe_by_its_code(web_stack: WebStack, desktop: Screen,
                                                         school: SchoolSite) -> None:
    site = _seeded(web_stack)
    now = time.time()
    made = web_stack.api("POST", "/v1/datasets", json={
        "title": "Our thermometer", "site": site, "kits": ["k1"], "quantities": ["temperature"],
        "start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 86_400)),
        "end": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 60))})
    assert made.status_code == 201, made.text
    code = made.json()["code"]
    desktop.page.goto(school.show(web_stack.path(f"/embed/d/{code.lower()}")))
    frame = _frame(desktop, "/embed/d/")
    frame.wait_for_selector('.chart[data-drawn="uplot"] canvas', timeout=15_000)  # type: ignore[attr-defined]
    assert "Our thermometer" in frame.inner_text("body")  # type: ignore[attr-defined]
    assert "set-cookie" not in httpx.get(web_stack.path(f"/embed/d/{code}")).headers


@pytest.mark.parametrize("path", ["/", "/s/{site}", "/s/{site}/k1", "/signin", "/d"])
def test_every_other_page_refuses_to_be_framed(web_stack: WebStack, desktop: Screen, school: SchoolSite,
                                               path: str) -> None:
    site = _seeded(web_stack)
    target = web_stack.path(path.format(site=site))
    answer = httpx.get(target)
    assert answer.status_code == 200
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY"
    desktop.page.goto(school.show(target))
    desktop.page.wait_for_timeout(1500)
    framed = [f for f in desktop.page.frames if f != desktop.page.main_frame]
    assert framed, "the iframe is there"
    # Chromium refuses the frame: it shows its own error document, never the page
    texts = []
    for frame in framed:
        try:
            texts.append(frame.inner_text("body", timeout=2000))
        except Exception:  # the blocked frame has no body Playwright can read
            texts.append("")
    assert all("Lauks" not in text for text in texts), texts
