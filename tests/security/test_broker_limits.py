"""What the broker enforces, in every configuration we ship: the limits of lauks.services.BROKER_LIMITS
(queue bytes and messages, packet size, session expiry, memory), and client ids bound to usernames on
every listener of an authenticated broker. The real Mosquitto must accept them and act on them."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from mqtt_helpers import Client

from lauks.brokerauth import STAFF_USER, BrokerAuth
from lauks.contract import MAX_PAYLOAD_BYTES
from lauks.services import BROKER_LIMITS, Mosquitto, TlsListener, mosquitto_conf
from lauks.topics import Topics

REPO = Path(__file__).resolve().parents[2]
BIND = "use_username_as_clientid true"


def _settings(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _option(lines: list[str], name: str) -> int:
    return int(next(line.split()[1] for line in lines if line.split()[0] == name))


def test_the_limits_fit_the_contract_and_a_school_server() -> None:
    lines = list(BROKER_LIMITS)
    assert MAX_PAYLOAD_BYTES + 1024 <= _option(lines, "max_packet_size") <= 4 * MAX_PAYLOAD_BYTES
    # a night of 280 kits at one 300-byte message a minute fits in the gateway's queue, many times over
    night = 280 * 60 * 14 * 300
    assert 2 * night <= _option(lines, "max_queued_bytes") <= 512 * 1024 * 1024
    assert _option(lines, "max_queued_messages") >= 280 * 60 * 14
    assert _option(lines, "max_queued_bytes") < _option(lines, "memory_limit")


def test_every_config_we_ship_carries_the_limits_and_binds_client_ids_on_every_listener(tmp_path: Path) -> None:
    deploy = _settings((REPO / "deploy/mosquitto/mosquitto.conf").read_text())
    tls = TlsListener(1884, tmp_path / "broker.crt", tmp_path / "broker.key")
    authenticated = _settings(mosquitto_conf(tmp_path, 1883, tmp_path / "passwd", tmp_path / "acl", tls=tls))
    anonymous = _settings(mosquitto_conf(tmp_path, 1883))
    for lines in (deploy, authenticated, anonymous):
        assert set(BROKER_LIMITS) <= set(lines)
        assert "max_queued_bytes 0" not in lines and "message_size_limit" not in " ".join(lines)
    for lines in (deploy, authenticated):
        listeners = [i for i, line in enumerate(lines) if line.startswith("listener ")]
        assert len(listeners) == 2
        assert all(lines[i + 1] == BIND for i in listeners), lines  # a listener option: after each listener
        assert "allow_anonymous false" in lines
    # Mosquitto refuses every client without a username when ids are bound: not for the anonymous test broker
    assert BIND not in anonymous and "allow_anonymous true" in anonymous


@pytest.fixture
def broker(tmp_path: Path, make_mosquitto: Callable[..., Mosquitto]) -> tuple[Mosquitto, BrokerAuth, dict[str, str]]:
    auth = BrokerAuth(tmp_path / "state", root="lim")
    services = auth.ensure_service_users()
    services["s1.k1"] = auth.add_kit("s1", "k1")
    return make_mosquitto(password_file=auth.password_file, acl_file=auth.acl_file), auth, services


def test_mosquitto_takes_the_packet_limit_passes_a_full_readings_message_and_drops_a_bigger_sender(
        broker: tuple[Mosquitto, BrokerAuth, dict[str, str]]) -> None:
    mosquitto, _, services = broker
    topics = Topics("lim")
    staff = Client(mosquitto.port, STAFF_USER, services[STAFF_USER], mqtt5=True).connect()
    assert staff.connack_properties.MaximumPacketSize == 32768  # Mosquitto tells MQTT 5 clients its limit
    staff.subscribe(topics.filter("readings"))
    kit = Client(mosquitto.port, "s1.k1", services["s1.k1"]).connect()
    largest = b"x" * MAX_PAYLOAD_BYTES  # the contract's limit reaches the gateway, which can say why it is refused
    kit.publish(topics.readings("s1", "k1"), largest)
    assert staff.next_message() == (topics.readings("s1", "k1"), largest)
    kit.client.publish(topics.readings("s1", "k1"), b"y" * 40_000, qos=1)
    assert kit.disconnected.wait(5), "a 40 kB packet was accepted"
    time.sleep(0.2)
    assert staff.drain() == []
    log = (mosquitto.state_dir / "mosquitto.log").read_text()
    assert "Error" not in log and "Warning" not in log, log
    kit.close()
    staff.close()
