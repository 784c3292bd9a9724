"""The school server's mosquitto.conf, run by the real Mosquitto with its container paths and ports
moved onto this machine: plain and TLS listeners, per-kit users from `lauks deploy init`, no anonymous."""

from __future__ import annotations

import shutil
import ssl
from pathlib import Path

import pytest
from mqtt_helpers import Client, refused

from lauks.brokerauth import GATEWAY_USER, BrokerAuth
from lauks.services import Child, _tcp_open, _wait, find_program, free_port

pytestmark = pytest.mark.services
REPO = Path(__file__).resolve().parents[2]


def test_the_shipped_broker_configuration_serves_kits_over_plain_and_tls_with_their_own_users(tmp_path: Path) -> None:
    from lauks.tlsca import init_school_ca

    state = tmp_path / "state"
    auth = BrokerAuth(state)
    services = auth.ensure_service_users()
    password = auth.add_kit("school", "k01")
    ca = init_school_ca(state / "tls", ["127.0.0.1"])
    container = tmp_path / "mosquitto"  # what the entrypoint does: copy users and certificates in
    (container / "auth").mkdir(parents=True)
    (container / "data").mkdir()
    for source in (auth.password_file, auth.acl_file, ca.broker_cert, ca.broker_key):
        shutil.copy(source, container / "auth" / source.name)
    plain, tls = free_port(), free_port()
    conf = (REPO / "deploy/mosquitto/mosquitto.conf").read_text()
    conf = conf.replace("/mosquitto/", f"{container}/").replace("listener 1883", f"listener {plain} 127.0.0.1")
    conf = conf.replace("listener 8883", f"listener {tls} 127.0.0.1").replace("log_dest stdout", "log_dest stderr")
    conf += "user root\n"  # the image drops to its own user; here we stay who we are
    (container / "mosquitto.conf").write_text(conf)
    child = Child("mosquitto", [find_program("mosquitto"), "-c", str(container / "mosquitto.conf")],
                  container / "out.log")
    child.start()
    try:
        _wait(lambda: _tcp_open(plain) and _tcp_open(tls), child, "its two ports", 15)
        assert refused(plain, None, None)
        gateway = Client(plain, GATEWAY_USER, services[GATEWAY_USER]).connect()
        gateway.subscribe("lauks/v1/+/+/readings")
        kit = Client(tls, "school.k01", password, ca_certs=ca.ca_cert).connect()
        kit.publish("lauks/v1/school/k01/readings", b"hello")
        kit.publish("lauks/v1/school/k02/readings", b"not mine")
        kit.publish("lauks/v1/school/k01/readings", b"again")
        assert [gateway.next_message()[1], gateway.next_message()[1]] == [b"hello", b"again"]
        kit.close()
        gateway.close()
        other = init_school_ca(tmp_path / "other-ca", ["127.0.0.1"], "Another school")
        with pytest.raises(ssl.SSLError):
            Client(tls, "school.k01", password, ca_certs=other.ca_cert).connect()
    finally:
        child.stop()
