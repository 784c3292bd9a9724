"""The broker's TLS listener with a school's own CA (``lauks tls init``), on loopback: a kit that
trusts the school's CA connects; one that trusts another CA refuses the broker."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from mqtt_helpers import Client

from lauks.brokerauth import GATEWAY_USER, BrokerAuth
from lauks.services import Mosquitto, TlsListener, free_port
from lauks.tlsca import SchoolCa, TlsError, init_school_ca, subject_alt_names
from lauks.topics import Topics
from stack.cli import main

pytestmark = pytest.mark.services
T = Topics("tls")


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Mosquitto, SchoolCa, BrokerAuth, str]]:
    state = tmp_path_factory.mktemp("tls")
    assert main(["tls", "init", "--state-dir", str(state), "--host", "127.0.0.1", "--host", "lauks.local"]) == 0
    ca = SchoolCa(state / "tls")
    auth = BrokerAuth(state, root="tls")
    auth.ensure_service_users()
    password = auth.add_kit("s1", "k1")
    broker = Mosquitto(state / "mosquitto", free_port(), password_file=auth.password_file, acl_file=auth.acl_file,
                       tls=TlsListener(free_port(), ca.broker_cert, ca.broker_key))
    broker.start()
    yield broker, ca, auth, password
    broker.stop()


def test_a_kit_trusting_the_schools_ca_connects_over_tls_and_publishes(tls_broker: tuple[
        Mosquitto, SchoolCa, BrokerAuth, str]) -> None:
    broker, ca, auth, password = tls_broker
    assert broker.tls is not None
    gateway = Client(broker.port, GATEWAY_USER, auth.service_password(GATEWAY_USER)).connect()
    gateway.subscribe(T.filter("readings"))
    kit = Client(broker.tls.port, "s1.k1", password, ca_certs=ca.ca_cert).connect()
    kit.publish(T.readings("s1", "k1"), b"over tls")
    assert gateway.next_message() == (T.readings("s1", "k1"), b"over tls")
    kit.close()
    gateway.close()


def test_a_kit_trusting_another_ca_refuses_the_broker(tls_broker: tuple[Mosquitto, SchoolCa, BrokerAuth, str],
                                                      tmp_path: Path) -> None:
    broker, _, _, password = tls_broker
    assert broker.tls is not None
    other = init_school_ca(tmp_path / "other", ["127.0.0.1"], "Another school")
    with pytest.raises(ssl.SSLCertVerificationError):
        Client(broker.tls.port, "s1.k1", password, ca_certs=other.ca_cert).connect()


def test_the_tls_listener_still_asks_for_a_password(tls_broker: tuple[Mosquitto, SchoolCa, BrokerAuth, str]) -> None:
    from mqtt_helpers import refused

    broker, ca, _, _ = tls_broker
    assert broker.tls is not None
    assert refused(broker.tls.port, "s1.k1", "wrong", ca_certs=ca.ca_cert)


def test_the_broker_certificate_names_every_host_and_is_signed_by_the_ca(
        tls_broker: tuple[Mosquitto, SchoolCa, BrokerAuth, str]) -> None:
    _, ca, _, _ = tls_broker
    text = subprocess.run(["openssl", "x509", "-in", str(ca.broker_cert), "-noout", "-text"], capture_output=True,
                          text=True, check=True).stdout
    assert "IP Address:127.0.0.1" in text and "DNS:lauks.local" in text
    verify = subprocess.run(["openssl", "verify", "-CAfile", str(ca.ca_cert), str(ca.broker_cert)],
                            capture_output=True, text=True, check=False)
    assert verify.returncode == 0, verify.stderr
    assert ca.ca_key.stat().st_mode & 0o077 == 0  # the CA's key is readable by its owner only


def test_running_tls_init_again_keeps_the_ca_so_kits_keep_trusting_the_broker(tmp_path: Path) -> None:
    first = init_school_ca(tmp_path, ["10.0.0.5"])
    ca_before = first.ca_cert.read_bytes()
    cert_before = first.broker_cert.read_bytes()
    again = init_school_ca(tmp_path, ["10.0.0.5", "server.school.lv"])
    assert again.ca_cert.read_bytes() == ca_before
    assert again.broker_cert.read_bytes() != cert_before
    verify = subprocess.run(["openssl", "verify", "-CAfile", str(again.ca_cert), str(again.broker_cert)],
                            capture_output=True, text=True, check=False)
    assert verify.returncode == 0, verify.stderr


def test_host_names_become_dns_or_ip_entries_and_nonsense_is_refused() -> None:
    assert subject_alt_names(["192.168.1.10", "lauks.school.lv", "::1"]) == \
        "IP:192.168.1.10,DNS:lauks.school.lv,IP:::1"
    assert subject_alt_names(["Lauks.School.LV.", "bücher.example", "Rīga.lv", "fd00:0::10", "lauks.school.lv"]) == \
        "DNS:lauks.school.lv,DNS:xn--bcher-kva.example,DNS:xn--rga-uta.lv,IP:fd00::10"
    refused = {
        "a+CN=evil.example": "'a+CN=evil' is not a label of letters, digits and hyphens",
        "a/CN=evil": "is not a label", "x,y": "is not a label", "a b": "is not a label",
        "-lauks.lv": "'-lauks' is not a label", "lauks_1.lv": "is not a label", "*.school.lv": "is not a label",
        "a..b": "a part between dots is empty", "x" * 64 + ".lv": "longer than 63",
        "10.0.0.300": "looks like an IP address but is not one", "010.1.2.3": "looks like an IP address",
        "[::1]": "without brackets, port or zone", "fe80::1%eth0": "without brackets, port or zone",
        "lauks\nINFLUXDB_ADMIN_PASSWORD=x": "contains control characters", "": "an empty --host",
    }
    for host, words in refused.items():
        with pytest.raises(TlsError) as caught:
            subject_alt_names([host])
        assert words in str(caught.value), (host, str(caught.value))
    with pytest.raises(TlsError):
        subject_alt_names([])


def test_tls_init_refuses_a_host_that_would_add_a_name_and_writes_nothing(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tls", "init", "--state-dir", str(tmp_path), "--host", "a+CN=evil.example"]) == 1
    assert "lauks tls init: 'a+CN=evil.example' is not a valid host name" in capsys.readouterr().err
    assert not (tmp_path / "tls").exists()


def test_the_certificate_holds_punycode_and_ip_names_and_the_schools_name_adds_no_attribute(tmp_path: Path) -> None:
    ca = init_school_ca(tmp_path, ["bücher.example", "::1"], "Evil/CN=evil.example+OU=x")
    text = subprocess.run(["openssl", "x509", "-in", str(ca.broker_cert), "-noout", "-text", "-nameopt", "RFC2253"],
                          capture_output=True, text=True, check=True).stdout
    assert "DNS:xn--bcher-kva.example, IP Address:0:0:0:0:0:0:0:1" in text
    subject = next(line for line in text.splitlines() if line.strip().startswith("Subject:"))
    # one organisation holding the whole name (RFC 2253 escapes its +), and the first host as the only CN
    assert subject.strip() == "Subject: CN=xn--bcher-kva.example,O=Evil/CN=evil.example\\+OU=x", subject


async def _gateway_over_tls(broker: Mosquitto, auth: BrokerAuth, kit_password: str, ca_file: Path, state: Path,
                            influx_url: str, database: str, seconds: float) -> tuple[int, bool]:
    """Run the gateway against the TLS listener for up to ``seconds``: (connects, whether a kit's reading
    sent over TLS reached InfluxDB)."""
    import asyncio
    import json
    import time

    from gateway.service import Gateway
    from gateway.settings import GatewaySettings
    from lauks.influx import InfluxClient

    assert broker.tls is not None
    config = GatewaySettings(state_dir=state, mqtt_port=broker.tls.port, mqtt_tls=True, mqtt_ca_file=ca_file,
                             mqtt_username=GATEWAY_USER, mqtt_password=auth.service_password(GATEWAY_USER),
                             influx_url=influx_url, influx_database=database, topic_root="tls",
                             gateway_http_port=None, gateway_instance="tls", gateway_reconnect_max_s=0.5)
    gateway = Gateway(config)
    stop = asyncio.Event()
    task = asyncio.create_task(gateway.run(stop))
    stored = False
    deadline = time.monotonic() + seconds
    try:
        while not gateway.source.connected and time.monotonic() < deadline:  # noqa: ASYNC110 (a flag)
            await asyncio.sleep(0.05)
        if gateway.source.connected:
            kit = Client(broker.tls.port, "s1.k1", kit_password, ca_certs=ca_file).connect()
            kit.publish(T.readings("s1", "k1"), json.dumps({"v": 1, "kit": "k1", "boot": 1, "seq": 1, "samples": [
                {"t": 1_780_000_000, "temperature": 12.5}]}))
            kit.close()
            async with InfluxClient(influx_url) as influx:
                while not stored and time.monotonic() < deadline:
                    rows = await influx.query_rows("SELECT temperature FROM readings", database=database)
                    stored = [row["temperature"] for row in rows] == [12.5]
                    await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
    return gateway.source.connects, stored


async def test_the_gateway_trusting_the_schools_ca_ingests_over_tls(
        tls_broker: tuple[Mosquitto, SchoolCa, BrokerAuth, str], tmp_path: Path, influx_url: str,
        database: str) -> None:
    broker, ca, auth, password = tls_broker
    connects, stored = await _gateway_over_tls(broker, auth, password, ca.ca_cert, tmp_path, influx_url, database, 20)
    assert connects == 1 and stored


async def test_the_gateway_trusting_another_ca_does_not_connect(
        tls_broker: tuple[Mosquitto, SchoolCa, BrokerAuth, str], tmp_path: Path, influx_url: str,
        database: str) -> None:
    broker, _, auth, password = tls_broker
    other = init_school_ca(tmp_path / "other", ["127.0.0.1"], "Another school")
    connects, stored = await _gateway_over_tls(broker, auth, password, other.ca_cert, tmp_path / "state",
                                               influx_url, database, 3)
    assert (connects, stored) == (0, False)
