"""What the browser tests share: a page at one viewport that is kept on the machine, and its screenshots."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Browser, Page, Route

from harness.command import ROOT

SCREENSHOTS = ROOT / ".artifacts" / "screenshots"
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 375, "height": 812}}
API_HOST = "127.0.0.1"  # where harness.api serves `lauks api`


@dataclass
class Screen:
    """A page at one viewport, with every request it made and those aborted for leaving the machine."""

    page: Page
    viewport: str
    test_name: str
    requested: list[str] = field(default_factory=list)
    left_machine: list[str] = field(default_factory=list)

    def screenshot(self, label: str, full_page: bool = True) -> Path:
        """The page (or only what the first screen shows) as <test>-<label>-<viewport>.png."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', self.test_name)}-{label}-{self.viewport}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


def open_screen(browser: Browser, viewport: str, test_name: str) -> Screen:
    context = browser.new_context(viewport=VIEWPORTS[viewport], service_workers="block")
    screen = Screen(context.new_page(), viewport, test_name)

    def keep_on_machine(route: Route) -> None:
        url = route.request.url
        screen.requested.append(url)
        if urlsplit(url).hostname == API_HOST:
            route.continue_()
        else:
            screen.left_machine.append(url)
            route.abort("blockedbyclient")

    context.route("**/*", keep_on_machine)
    return screen
