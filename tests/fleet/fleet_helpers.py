"""The fleet tests' parts: a broker with the platform's own users and ACL (lauks.brokerauth), as `lauks up` runs
it, and the API app on a real InfluxDB and SQLite store. Imported by name (a conftest.py here would shadow the
top one for `from conftest import`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.settings import ApiSettings
from harness.publisher import WAIT_S, Publisher
from lauks import brokerauth
from lauks.brokerauth import BrokerAuth
from lauks.services import Influxd, Mosquitto, free_port
from lauks.topics import Topics

ROOT = "fleet"


class Client(Publisher):
    """The harness's publisher, each publish waiting for its PUBACK, a refused one left refused."""

    def __init__(self, port: int, username: str, password: str) -> None:
        super().__init__(port, username, password, reconnect=False, start=False)

    def connect(self) -> Client:
        self.start()
        self.wait_connected(WAIT_S)
        return self

    def publish(self, topic: str, payload: bytes | str, retain: bool = False) -> None:  # type: ignore[override]
        self.publish_and_wait(topic, payload, retain)


@dataclass
class Broker:
    state_dir: Path
    auth: BrokerAuth
    mosquitto: Mosquitto
    services: dict[str, str]
    kits: dict[tuple[str, str], str]
    topics: Topics

    def kit(self, site: str, kit: str) -> Client:
        return Client(self.mosquitto.port, brokerauth.kit_username(site, kit), self.kits[site, kit]).connect()

    def service(self, username: str) -> Client:
        return Client(self.mosquitto.port, username, self.services[username]).connect()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    state_dir = tmp_path_factory.mktemp("state")
    auth = BrokerAuth(state_dir, root=ROOT)
    services = auth.ensure_service_users()
    kits = {(site, kit): auth.add_kit(site, kit)
            for site, kit in [("school-1", f"kit-{i:02d}") for i in range(20)] + [("school-2", "kit-00")]}
    mosquitto = Mosquitto(state_dir / "mosquitto", free_port(), password_file=auth.password_file,
                          acl_file=auth.acl_file)
    mosquitto.start()
    yield Broker(state_dir, auth, mosquitto, services, kits, Topics(ROOT))
    mosquitto.stop()


@dataclass
class Api:
    client: httpx.AsyncClient
    settings: ApiSettings
    token: str

    @property
    def staff(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
async def api(tmp_path: Path, influxd: Influxd, database: str) -> AsyncIterator[Api]:
    """The real app with its state folder in ``tmp_path`` (releases go in tmp_path/releases), rate limits off."""
    from metastore import registry

    settings = ApiSettings(state_dir=tmp_path, influx_url=influxd.url, influx_database=database,
                           api_rate_limit_per_minute=1_000_000, api_rate_burst=1_000_000, api_timezone="UTC",
                           api_public_read=False, api_database_url=None)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        with app.state.sessions() as session:
            token = registry.create_token(session, "Fleet Staff")
            registry.add_site(session, "school-1")
            for name in ("kit-01", "kit-02"):
                registry.add_kit(session, "school-1", name, kit_type="weather")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://lauks.test") as client:
            yield Api(client, settings, token)
