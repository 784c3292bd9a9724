"""The whole stack for the browser tests: the real `lauks api` process (with the pages), InfluxDB, Mosquitto and a
gateway process into the same database, a staff token, and a simulated kit that publishes through the broker.

One ``WebStack`` for the session (``web_stack`` in conftest.py); tests keep apart by using site names of their own.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page

from harness.command import ROOT, lauks_command
from harness.publisher import Publisher
from lauks import lineprotocol, schema
from lauks.topics import Topics


@dataclass
class WebStack:
    url: str  # the API's base URL: pages at /, the JSON API at /v1
    database: str
    influx_url: str
    mqtt_port: int
    topics: Topics
    staff_token: str  # a staff token named "Test Teacher"
    env: dict[str, str]  # the API process's environment, for `lauks` commands on its store
    _seq: dict[tuple[str, str], int] = field(default_factory=dict)

    # --- the store, as staff ----------------------------------------------------------------------

    @property
    def staff(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.staff_token}"}

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("headers", self.staff)
        return httpx.request(method, f"{self.url}{path}", timeout=30, **kwargs)

    def add_site(self, name: str, **fields: Any) -> dict[str, Any]:
        fields.setdefault("title", name.replace("-", " ").title())
        fields.setdefault("timezone", "Europe/Riga")
        answer = self.api("POST", "/v1/sites", json={"name": name, **fields})
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    def add_kit(self, site: str, kit: str, **fields: Any) -> dict[str, Any]:
        answer = self.api("POST", f"/v1/sites/{site}/kits", json={"name": kit, **fields})
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    def lauks(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(lauks_command(*args), env=self.env, cwd=ROOT, capture_output=True, text=True,
                              timeout=60)

    # --- readings --------------------------------------------------------------------------------

    def write_points(self, lines: Iterable[str]) -> None:
        """Line protocol (ms precision) straight into InfluxDB: history that no kit need send."""
        body = "\n".join(lines)
        answer = httpx.post(f"{self.influx_url}/write", params={"db": self.database, "precision": "ms"},
                            content=body.encode(), timeout=60)
        assert answer.status_code == 204, answer.text

    def reading_line(self, site: str, kit: str, at_s: float, **values: float) -> str:
        return lineprotocol.line(schema.READINGS, {schema.SITE: site, schema.KIT: kit},
                                 {k: float(v) for k, v in values.items()}, int(at_s * 1000))

    def publish(self, site: str, kit: str, samples: list[dict[str, Any]], *, boot: int = 1, fw: str = "web-test",
                seq: int | None = None) -> None:
        """A readings message from the kit, through the broker and the gateway; returns once PUBACKed
        (the gateway acknowledges a message only once it is stored)."""
        if seq is None:
            seq = self._seq.get((site, kit), 0)
            self._seq[(site, kit)] = seq + 1
        payload = {"v": 1, "kit": kit, "boot": boot, "seq": seq, "fw": fw, "samples": samples}
        self._publish(self.topics.readings(site, kit), json.dumps(payload).encode())

    def publish_raw(self, site: str, kit: str, payload: bytes) -> None:
        self._publish(self.topics.readings(site, kit), payload)

    def publish_status(self, site: str, kit: str, **status: Any) -> None:
        status = {"v": 1, "state": "online", **status}
        self._publish(self.topics.status(site, kit), json.dumps(status).encode(), retain=True)

    def _publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        with Publisher(self.mqtt_port) as publisher:
            publisher.publish_and_wait(topic, payload, retain=retain)

    def query(self, statement: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.influx_url}/query", params={"db": self.database, "q": statement,
                                                                "epoch": "ms"}, timeout=30)
        answer.raise_for_status()
        series = answer.json()["results"][0].get("series", [])
        return [dict(zip(s["columns"], row, strict=True)) for s in series for row in s["values"]]

    def wait_for(self, statement: str, count: int = 1, timeout_s: float = 15) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while True:
            rows = self.query(statement)
            if len(rows) >= count or time.monotonic() > deadline:
                return rows
            time.sleep(0.1)

    # --- the browser -----------------------------------------------------------------------------

    def sign_in(self, page: Page, token: str | None = None) -> None:
        """Sign ``page`` in as staff through the sign-in form, as a teacher does."""
        page.goto(f"{self.url}/signin")
        page.fill("#token", token or self.staff_token)
        page.click("form.stack button[type=submit]")
        page.wait_for_load_state()

    def path(self, tail: str) -> str:
        return f"{self.url}{tail}"


def axe_results(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations of the page as it is now (axe from web/node_modules)."""
    source = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
    page.evaluate(source.read_text() + "\n;true")  # through DevTools, so the page's CSP (no inline script) holds
    found = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [n["target"] for n in v["nodes"]][:5]} for v in found if v["impact"] in ("serious", "critical")]


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text().splitlines()[-lines:])
    except FileNotFoundError:
        return ""
