"""Browser tests: Debian's chromium (installed by `make`, scripts/install-system-deps.sh) driven by Playwright for
Python, against the real `lauks api` process. Every page is kept on the machine: a request to any host but the
API's loopback address is aborted and recorded. Screenshots go to .artifacts/screenshots/ (gitignored)."""

from __future__ import annotations

import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright
from web_screens import API_HOST, VIEWPORTS, Screen, open_screen

from lauks.services import Influxd, Mosquitto

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))  # the API process of the API's own tests
from api_fixtures import api_process, process_env, staff_token
from web_stack import WebStack

from gateway.settings import GatewaySettings
from harness.gateway import start_gateway
from lauks.topics import Topics

# Playwright's own browser download cannot work here, so it drives the system's Chromium.
CHROMIUM_PATHS = ("chromium", "/usr/bin/chromium", "chromium-browser")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the browser tests, and run them after every other test: Playwright's sync API keeps an event loop
    running in this thread once the session's browser is up, and an asyncio test after it could not start its own."""
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)  # stable: order kept otherwise


def chromium_path() -> str:
    for name in CHROMIUM_PATHS:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("no chromium on this machine: `make system-deps` installs Debian's (scripts/install-system-deps.sh)")


@pytest.fixture(scope="session")
def web_api(influxd: Influxd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`lauks api` on its own InfluxDB database and SQLite store, one for the whole session: the URL."""
    database = f"test_{uuid.uuid4().hex[:12]}"
    httpx.post(f"{influxd.url}/query", data={"q": f'CREATE DATABASE "{database}"'}, timeout=30).raise_for_status()
    with api_process(process_env(tmp_path_factory.mktemp("web-api"), influxd.url, database)) as url:
        assert urlsplit(url).hostname == API_HOST
        yield url


@pytest.fixture(scope="session")
def web_stack(influxd: Influxd, mosquitto: Mosquitto, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebStack]:
    """The API with its pages (public read on, no map tiles: nothing may leave the machine), a gateway into the
    same InfluxDB database, and a staff token "Test Teacher". One for the session: tests use their own sites."""
    database = f"web_{uuid.uuid4().hex[:12]}"
    httpx.post(f"{influxd.url}/query", data={"q": f'CREATE DATABASE "{database}"'}, timeout=30).raise_for_status()
    root = tmp_path_factory.mktemp("web-stack")
    topics = Topics(f"lauks-web-{uuid.uuid4().hex[:6]}")
    config = GatewaySettings(state_dir=root / "gateway", mqtt_port=mosquitto.port, influx_url=influxd.url,
                             influx_database=database, topic_root=topics.root, gateway_http_port=0,
                             gateway_instance="web", gateway_batch_ms=20, gateway_client_id=f"gw-{topics.root}",
                             gateway_stats_interval_s=1.0)
    env = process_env(root / "api", influxd.url, database, PUBLIC_READ="true", MAP_TILES_URL="",
                      TIMEZONE="Europe/Riga")
    env["LAUKS_TOPIC_ROOT"] = topics.root
    with start_gateway(config, root / "gateway.log"), api_process(env) as url:
        yield WebStack(url, database, influxd.url, mosquitto.port, topics, staff_token(env, "Test Teacher"), env)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
    yield launched
    launched.close()


@pytest.fixture
def desktop(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Screen]:
    screen = open_screen(browser, "desktop", request.node.name)
    yield screen
    screen.page.context.close()


@pytest.fixture
def phone(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Screen]:
    screen = open_screen(browser, "phone", request.node.name)
    yield screen
    screen.page.context.close()


@pytest.fixture(params=list(VIEWPORTS))
def screen(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Screen]:
    """The same test at 1280x800 and at 375x812 (a phone)."""
    made = open_screen(browser, request.param, request.node.originalname)
    yield made
    made.page.context.close()
