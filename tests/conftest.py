"""Fixtures for every test: the golden messages, and a real Mosquitto, InfluxDB and PostgreSQL.

The broker and the store are started once per test session on free loopback ports with their
state in a temporary folder. Each test gets its own topic root and its own database, so tests
never see each other's data. A test that uses them is marked ``services`` automatically; tests
that need a private broker or store to stop and restart use ``make_mosquitto``/``make_influxd``.
The metadata store's tests take ``store_url``; marked ``both_stores`` they run once on SQLite and once
on PostgreSQL (one server per session, a database of their own per test).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from golden_set import Golden, load_golden

from lauks.influx import InfluxClient
from lauks.services import Influxd, Mosquitto, Postgres, free_port
from lauks.topics import Topics

SERVICE_FIXTURES = {"mosquitto", "influxd", "influx", "database", "make_mosquitto", "make_influxd", "mqtt_port",
                    "influx_url", "postgres", "postgres_url"}
STORES = ["sqlite", "postgresql"]  # the engines of the metadata store


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "both_stores: run once with store_url on SQLite, once on PostgreSQL")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("both_stores") and "store_url" in metafunc.fixturenames:
        metafunc.parametrize("store_url", STORES, indirect=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and callspec.params.get("store_url") == "postgresql"
        if on_postgres or SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.services)


@pytest.fixture(scope="session")
def golden() -> Golden:
    return load_golden()


# --- real services --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def services_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("services")


@pytest.fixture(scope="session")
def mosquitto(services_dir: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(services_dir / "mosquitto", free_port())
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def influxd(services_dir: Path) -> Iterator[Influxd]:
    store = Influxd(services_dir / "influxdb", free_port())
    store.start()
    yield store
    store.stop()


@pytest.fixture(scope="session")
def postgres(services_dir: Path) -> Iterator[Postgres]:
    server = Postgres(services_dir / "postgres", free_port(), durable=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres: Postgres) -> Iterator[str]:
    """The SQLAlchemy URL of a PostgreSQL database of this test's own, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    postgres.create_database(name)
    yield postgres.url(name)
    postgres.drop_database(name)


@pytest.fixture
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The metadata store of this test: SQLite at ``tmp_path/lauks.db`` (where ``LAUKS_STATE_DIR=tmp_path`` puts
    it), or, in a test marked ``both_stores``, a fresh PostgreSQL database too."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return f"sqlite:///{tmp_path / 'lauks.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def mqtt_port(mosquitto: Mosquitto) -> int:
    return mosquitto.port


@pytest.fixture
def influx_url(influxd: Influxd) -> str:
    return influxd.url


@pytest.fixture
def topics() -> Topics:
    """A topic root of this test's own, e.g. ``t3fa9c1/v1/<site>/<kit>/readings``."""
    return Topics(f"t{uuid.uuid4().hex[:10]}")


def _influx_statement(url: str, statement: str) -> None:
    response = httpx.post(f"{url}/query", data={"q": statement}, timeout=30)
    response.raise_for_status()
    assert "error" not in response.text, response.text


@pytest.fixture
def database(influxd: Influxd) -> Iterator[str]:
    """A database of this test's own, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    _influx_statement(influxd.url, f'CREATE DATABASE "{name}"')
    yield name
    _influx_statement(influxd.url, f'DROP DATABASE "{name}"')


@pytest.fixture
async def influx(influxd: Influxd) -> AsyncIterator[InfluxClient]:
    async with InfluxClient(influxd.url) as client:
        yield client


@pytest.fixture
def make_mosquitto(tmp_path: Path) -> Iterator[Callable[..., Mosquitto]]:
    """Start a private broker (to stop, restart or configure) that is stopped after the test."""
    started: list[Mosquitto] = []

    def make(**options: Any) -> Mosquitto:
        broker = Mosquitto(tmp_path / f"mosquitto{len(started)}", options.pop("port", None) or free_port(),
                           **options)
        broker.start()
        started.append(broker)
        return broker

    yield make
    for broker in started:
        broker.stop()


@pytest.fixture
def make_influxd(tmp_path: Path) -> Iterator[Callable[..., Influxd]]:
    """Start a private InfluxDB (to stop and start again) that is stopped after the test."""
    started: list[Influxd] = []

    def make(environment: dict[str, str] | None = None, **options: Any) -> Influxd:
        """``environment``: influxd's INFLUXDB_<SECTION>_<KEY> settings, for its first start."""
        store = Influxd(tmp_path / f"influxdb{len(started)}", options.pop("http_port", None) or free_port(),
                        **options)
        with pytest.MonkeyPatch.context() as patch:
            for name, value in (environment or {}).items():
                patch.setenv(name, value)
            store.start()
        started.append(store)
        return store

    yield make
    for store in started:
        store.stop()


# --- a real full disk -----------------------------------------------------------------------------


class SmallFilesystem:
    """A tmpfs of a few hundred KiB mounted for one test: a real ENOSPC, not a patched write."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._filler = path / ".filler"

    def fill(self) -> None:
        """Take every free byte, so the next write anywhere on this filesystem fails with ENOSPC."""
        fd = os.open(self._filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (65536, 4096, 512, 1):
                try:
                    while os.write(fd, b"\0" * size):
                        pass
                except OSError:
                    continue
        finally:
            os.close(fd)

    def free(self) -> None:
        self._filler.unlink(missing_ok=True)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Callable[..., SmallFilesystem]]:
    """Mount a tmpfs (``size_kib``) under tmp_path; skipped with the reason where mounting is not allowed."""
    mounted: list[Path] = []

    def make(size_kib: int = 512) -> SmallFilesystem:
        where = tmp_path / f"fs{len(mounted)}"
        where.mkdir()
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0700", "tmpfs", str(where)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here to make a real full disk (needs root): {result.stderr.strip()}")
        mounted.append(where)
        return SmallFilesystem(where)

    yield make
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], check=False)
