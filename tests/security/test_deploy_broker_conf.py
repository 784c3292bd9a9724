"""The school server's mosquitto.conf, run by the real Mosquitto with its container paths and ports
moved onto this machine: plain and TLS listeners, per-kit users from `lauks deploy init`, no anonymous."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from mqtt_helpers import Client, refused

from lauks.brokerauth import GATEWAY_USER, STAFF_USER, BrokerAuth
from lauks.services import Child, _tcp_open, _wait, find_program, free_port

pytestmark = pytest.mark.services
REPO = Path(__file__).resolve().parents[2]


class ShippedBroker:
    """deploy/mosquitto/mosquitto.conf run by the real Mosquitto, its paths and ports moved onto this machine."""

    def __init__(self, tmp_path: Path) -> None:
        from lauks.tlsca import init_school_ca

        state = tmp_path / "state"
        self.auth = BrokerAuth(state)
        self.services = self.auth.ensure_service_users()
        self.kits = {kit: self.auth.add_kit("school", kit) for kit in ("k01", "k02")}
        self.ca = init_school_ca(state / "tls", ["127.0.0.1"])
        container = tmp_path / "mosquitto"  # what the entrypoint does: copy users and certificates in
        (container / "auth").mkdir(parents=True)
        (container / "data").mkdir()
        for source in (self.auth.password_file, self.auth.acl_file, self.ca.broker_cert, self.ca.broker_key):
            shutil.copy(source, container / "auth" / source.name)
        self.plain, self.tls = free_port(), free_port()
        conf = (REPO / "deploy/mosquitto/mosquitto.conf").read_text()
        conf = conf.replace("/mosquitto/", f"{container}/").replace("listener 1883", f"listener {self.plain} 127.0.0.1")
        conf = conf.replace("listener 8883", f"listener {self.tls} 127.0.0.1").replace("log_dest stdout",
                                                                                      "log_dest stderr")
        conf += "user root\n"  # the image drops to its own user; here we stay who we are
        (container / "mosquitto.conf").write_text(conf)
        self.child = Child("mosquitto", [find_program("mosquitto"), "-c", str(container / "mosquitto.conf")],
                           container / "out.log")

    def __enter__(self) -> ShippedBroker:
        self.child.start()
        _wait(lambda: _tcp_open(self.plain) and _tcp_open(self.tls), self.child, "its two ports", 15)
        return self

    def __exit__(self, *exc: object) -> None:
        self.child.stop()

    def kit(self, kit: str, *, tls: bool = False, client_id: str | None = None) -> Client:
        port, ca = (self.tls, self.ca.ca_cert) if tls else (self.plain, None)
        return Client(port, f"school.{kit}", self.kits[kit], ca_certs=ca, client_id=client_id).connect()


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShippedBroker]:
    with ShippedBroker(tmp_path_factory.mktemp("shipped")) as broker:
        yield broker


def test_the_shipped_broker_configuration_serves_kits_over_plain_and_tls_with_their_own_users(
        shipped: ShippedBroker, tmp_path: Path) -> None:
    from lauks.tlsca import init_school_ca

    assert refused(shipped.plain, None, None)
    gateway = Client(shipped.plain, GATEWAY_USER, shipped.services[GATEWAY_USER]).connect()
    gateway.subscribe("lauks/v1/+/+/readings")
    kit = shipped.kit("k01", tls=True)
    kit.publish("lauks/v1/school/k01/readings", b"hello")
    kit.publish("lauks/v1/school/k02/readings", b"not mine")
    kit.publish("lauks/v1/school/k01/readings", b"again")
    assert [gateway.next_message()[1], gateway.next_message()[1]] == [b"hello", b"again"]
    kit.close()
    gateway.close()
    other = init_school_ca(tmp_path / "other-ca", ["127.0.0.1"], "Another school")
    with pytest.raises(ssl.SSLError):
        Client(shipped.tls, "school.k01", shipped.kits["k01"], ca_certs=other.ca_cert).connect()


def test_on_both_shipped_listeners_a_kit_cannot_take_another_clients_session(shipped: ShippedBroker) -> None:
    gateway = Client(shipped.plain, GATEWAY_USER, shipped.services[GATEWAY_USER], client_id="lauks-gateway-gateway")
    gateway.connect()
    victim = shipped.kit("k02", client_id="school-k02")
    for tls in (False, True):
        for client_id in ("lauks-gateway-gateway", GATEWAY_USER, "school-k02", "school.k02"):
            shipped.kit("k01", tls=tls, client_id=client_id).close()
    assert not gateway.disconnected.wait(0.3) and not victim.disconnected.is_set()
    gateway.close()
    victim.close()


def test_the_compose_health_check_passes_as_its_own_user_and_knocks_no_staff_session_off(
        shipped: ShippedBroker) -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    kind, command = compose["services"]["mosquitto"]["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    command = command.replace("$$", "$").replace("-p 1883", f"-p {shipped.plain}")
    staff = Client(shipped.plain, STAFF_USER, shipped.services[STAFF_USER]).connect()
    env = dict(os.environ, LAUKS_STAFF_MQTT_PASSWORD=shipped.services[STAFF_USER])
    result = subprocess.run(["sh", "-c", command], env=env, capture_output=True, text=True, timeout=20, check=False)
    assert result.returncode == 0, result.stderr
    assert not staff.disconnected.wait(0.3)
    staff.close()
