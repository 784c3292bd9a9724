"""Fixtures and helpers of the API's tests: the real app on a real InfluxDB database and a metadata store
(SQLite, or PostgreSQL in tests marked ``both_stores``), a staff token, data.

Imported by name from the test modules: a second conftest.py would shadow the top one for `from conftest import`.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from api.settings import ApiSettings
from harness.api import start_api
from harness.command import ROOT, lauks_command
from harness.process import inherited_env
from lauks import lineprotocol, schema
from lauks.influx import InfluxClient
from lauks.services import Influxd, free_port
from metastore import registry


@dataclass
class Api:
    client: httpx.AsyncClient
    app: FastAPI
    settings: ApiSettings
    token: str
    influx: InfluxClient

    @property
    def staff(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("headers", self.staff)
        return await self.client.get(path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("headers", self.staff)
        return await self.client.post(path, **kwargs)

    def session(self) -> Any:
        return self.app.state.sessions()

    def add_site(self, name: str, **fields: Any) -> None:
        with self.session() as session:
            registry.add_site(session, name, **fields)

    def add_kits(self, site: str, *names: str) -> None:
        with self.session() as session:
            for name in names:
                registry.add_kit(session, site, name)

    async def write(self, lines: Iterable[str]) -> None:
        await self.influx.write(self.settings.influx_database, list(lines), precision="ms")


def point(site: str, kit: str, moment: datetime, **values: float) -> str:
    """One ``readings`` point as the gateway writes it: tags site and kit, float fields, ms time."""
    return lineprotocol.line(schema.READINGS, {schema.SITE: site, schema.KIT: kit},
                             {k: float(v) for k, v in values.items()}, int(moment.timestamp() * 1000))


def api_settings_for(tmp_path: Path, influx_url: str, database: str, **overrides: Any) -> ApiSettings:
    options: dict[str, Any] = {"state_dir": tmp_path, "influx_url": influx_url, "influx_database": database,
                               "api_rate_limit_per_minute": 1_000_000, "api_rate_burst": 1_000_000,
                               "api_timezone": "UTC", "api_public_read": False, "api_database_url": None}
    options.update(overrides)
    return ApiSettings(**options)


@pytest.fixture
async def service(tmp_path: Path, influxd: Influxd, database: str, store_url: str) -> AsyncIterator[Api]:
    """The app on SQLite; in a test marked ``both_stores``, on PostgreSQL too."""
    settings = api_settings_for(tmp_path, influxd.url, database, api_database_url=store_url)
    async for made in running(settings):
        yield made


async def running(settings: ApiSettings) -> AsyncIterator[Api]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        with app.state.sessions() as session:
            token = registry.create_token(session, "Test Teacher")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://lauks.test") as client, \
                InfluxClient(settings.influx_url) as influx:
            yield Api(client, app, settings, token, influx)


# --- `lauks api` as a process (harness.api) ---------------------------------------------------------


def lauks(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(lauks_command(*args), env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)


def process_env(state_dir: Path, influx_url: str, database: str, **settings: str) -> dict[str, str]:
    """The environment of a `lauks api` process; ``settings`` are LAUKS_API_* without the prefix, e.g.
    ``RATE_BURST="10"`` or ``DATABASE_URL=store_url``. The rate limits are off unless given; nothing else
    of LAUKS_* comes from the shell that runs the tests."""
    limits = {"RATE_LIMIT_PER_MINUTE": "1000000", "RATE_BURST": "1000000", "CODE_FAILURES_PER_MINUTE": "1000000",
              "CODE_FAILURE_BURST": "1000000"}
    return {**inherited_env(), "LAUKS_STATE_DIR": str(state_dir), "LAUKS_INFLUX_URL": influx_url,
            "LAUKS_INFLUX_DATABASE": database, "LAUKS_API_PORT": str(free_port()),
            **{f"LAUKS_API_{k}": v for k, v in {**limits, **settings}.items()}}


@contextmanager
def api_process(env: dict[str, str]) -> Iterator[str]:
    """`lauks api` running with ``env``, answering at the URL yielded."""
    with start_api(env) as api:
        yield api.url


def staff_token(env: dict[str, str], name: str = "Ms Ozola") -> str:
    made = lauks(env, "token", "create", "--name", name)
    token = made.stdout.strip()
    assert made.returncode == 0 and token.startswith("lauks_"), made.stderr
    return token
