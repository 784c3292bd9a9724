"""`lauks broker drop-session`: a persistent session no client will resume (here the gateway's from
before client ids were bound to usernames, which no client can reach any more) is ended, so the
broker stops queueing copies of every reading for it. Real Mosquitto, its persistence file kept
across the change of configuration, as in an upgrade."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.publisher import Publisher
from lauks import brokerauth
from lauks.brokerauth import BrokerAuth
from lauks.brokerauth_cli import _connect_once
from lauks.services import Mosquitto, free_port
from stack.cli import main

pytestmark = pytest.mark.services
OLD_ID = "lauks-gateway-gateway"  # the compose gateway's client id before ids were bound


def _persistent_subscriber(port: int, client_id: str) -> None:
    with Publisher(port, client_id=client_id, clean_session=False) as client:
        client.subscribe("lauks/v1/+/+/readings")  # the SUBACK is in: the broker holds the subscription


def test_drop_session_ends_a_session_left_from_before_ids_were_bound(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    auth = BrokerAuth(state)
    auth.ensure_service_users()
    kit_password = auth.add_kit("s1", "k1")
    port = free_port()
    before = Mosquitto(state / "mosquitto", port)  # the old configuration: no users, ids not bound
    before.start()
    _persistent_subscriber(port, OLD_ID)
    before.stop()  # its session is saved in mosquitto.db with the rest
    broker = Mosquitto(state / "mosquitto", port, password_file=auth.password_file, acl_file=auth.acl_file)
    broker.start()
    try:
        with Publisher(port, "s1.k1", kit_password, client_id="s1-k1") as kit:
            kit.publish_and_wait("lauks/v1/s1/k1/readings", b"queued for a session no one can resume")

        assert main(["broker", "drop-session", OLD_ID, "--state-dir", str(state), "--port", str(port)]) == 0
        assert f"session {OLD_ID} ended: the broker had a session" in capsys.readouterr().out
        assert OLD_ID not in auth.password_file.read_text()  # the temporary user is gone again

        # Logging in as that id once more (a temporary user again) finds no session left.
        password = auth.add_session_reset_user(OLD_ID)
        brokerauth.reload_broker(state)
        deadline = time.monotonic() + 10
        while (present := _connect_once("127.0.0.1", port, OLD_ID, password, clean=True)) is None:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert present is False
    finally:
        broker.stop()


def test_drop_session_refuses_a_running_services_session_and_a_kit(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    auth = BrokerAuth(tmp_path)
    auth.ensure_service_users()
    auth.add_kit("s1", "k1")
    for client_id, words in (("lauks-gateway", "session of a running service"), ("s1.k1", "is a kit"),
                             ("a b", "cannot be a broker user")):
        assert main(["broker", "drop-session", client_id, "--state-dir", str(tmp_path), "--port", "1"]) == 1
        assert words in capsys.readouterr().err
    assert "a b" not in auth.password_file.read_text()
