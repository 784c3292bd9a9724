"""Client ids are bound to usernames (``use_username_as_clientid``): a kit's credentials with another
client's id cannot take over that client's session, neither the gateway's nor another kit's. Real
Mosquitto with per-kit users, the real gateway as a child process, real InfluxDB."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mqtt_helpers import Client

from harness.gateway import start_gateway
from lauks.brokerauth import API_USER, GATEWAY_USER, STAFF_USER, BrokerAuth, kit_username
from lauks.influx import InfluxClient
from lauks.services import Influxd, Mosquitto
from lauks.topics import Topics

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gateway"))  # the gateway tests' helpers
from gateway_helpers import readings, settings, wait_for_count

pytestmark = pytest.mark.services
KITS = ("k1", "k2", "k3")


class Site:
    """Broker users for one test's topic root, and a broker that knows them."""

    def __init__(self, state: Path, topics: Topics, make_mosquitto: Callable[..., Mosquitto]) -> None:
        self.auth = BrokerAuth(state, root=topics.root)
        self.services = self.auth.ensure_service_users()
        self.kits = {kit: self.auth.add_kit("s1", kit) for kit in (*KITS, "attacker")}
        self.broker = make_mosquitto(password_file=self.auth.password_file, acl_file=self.auth.acl_file)

    def kit(self, kit: str, client_id: str | None = None) -> Client:
        return Client(self.broker.port, kit_username("s1", kit), self.kits[kit], client_id=client_id).connect()


def _connects(log: Path) -> int:
    return log.read_text(errors="replace").count("connected to MQTT")


async def test_a_kit_using_the_gateways_client_id_cannot_take_its_session_and_no_reading_is_lost(
        tmp_path: Path, topics: Topics, make_mosquitto: Callable[..., Mosquitto], influxd: Influxd,
        influx: InfluxClient, database: str) -> None:
    site = Site(tmp_path / "broker-state", topics, make_mosquitto)
    config = settings(tmp_path, site.broker.port, influxd.url, database, topics,
                      mqtt_username=GATEWAY_USER, mqtt_password=site.services[GATEWAY_USER])
    assert config.client_id == GATEWAY_USER  # the id the broker keeps the session under anyway
    log = tmp_path / "gateway.log"
    with start_gateway(config, log) as gateway:
        kits = {kit: site.kit(kit) for kit in KITS}
        # The attack of issue 10: a kit's own credentials with the gateway's client id (and the
        # predictable one from before ids were bound), over and over, while the other kits publish.
        stop = threading.Event()
        attempts: list[str] = []

        def attack() -> None:
            while not stop.is_set():
                for client_id in (config.client_id, f"lauks-gateway-{config.gateway_instance}"):
                    attacker = site.kit("attacker", client_id=client_id)
                    attacker.publish(topics.readings("s1", "attacker"), b"x")
                    attacker.close()
                    attempts.append(client_id)
                stop.wait(0.1)

        health: list[dict[str, Any]] = []
        attacker_thread = threading.Thread(target=attack, daemon=True)
        attacker_thread.start()
        sent = 0
        started = time.monotonic()
        while time.monotonic() - started < 3.0:  # during the attack
            for kit, client in kits.items():
                client.publish(topics.readings("s1", kit), readings(kit, 1, sent))
                sent += 1
            if sent % 30 == 0:
                health.append(await asyncio.to_thread(gateway.health) or {})
            await asyncio.sleep(0.01)
        stop.set()
        attacker_thread.join(10)
        for seq in range(sent, sent + 30):  # and after it
            kit = KITS[seq % len(KITS)]
            kits[kit].publish(topics.readings("s1", kit), readings(kit, 1, seq))
        sent += 30
        health.append(await asyncio.to_thread(gateway.health) or {})
        for client in kits.values():
            client.close()

        stored = await wait_for_count(influx, database, "SELECT count(temperature) FROM readings", sent, 30)
        assert stored == sent, f"{stored} of {sent} readings stored"
        assert all(h.get("ok") is True and h.get("mqtt_connected") is True for h in health), health
        assert (await asyncio.to_thread(gateway.metrics))["lauks_gateway_mqtt_connected"] == 1.0
        assert _connects(log) == 1, "the gateway was knocked off the broker:\n" + log.read_text()
        assert len(attempts) >= 10
        assert f"as {GATEWAY_USER}" in log.read_text()  # it logs the id it is known by


def test_kit_a_with_kit_bs_client_id_does_not_knock_kit_b_off(tmp_path: Path, topics: Topics,
                                                                make_mosquitto: Callable[..., Mosquitto]) -> None:
    site = Site(tmp_path, topics, make_mosquitto)
    staff = Client(site.broker.port, STAFF_USER, site.services[STAFF_USER]).connect()
    staff.subscribe(topics.filter("readings"))
    b = site.kit("k2", client_id="s1-k2")  # the id the firmware uses: <site>-<kit>
    for client_id in ("s1-k2", kit_username("s1", "k2")):  # its own, and the username the broker now uses
        a = site.kit("k1", client_id=client_id)
        a.publish(topics.readings("s1", "k1"), b"from a")
        a.close()
    assert not b.disconnected.wait(0.5), "kit B was knocked off by kit A's credentials"
    b.publish(topics.readings("s1", "k2"), b"from b, still connected")
    got = [staff.next_message()[1] for _ in range(3)]
    assert got == [b"from a", b"from a", b"from b, still connected"]
    b.close()
    staff.close()


async def test_gateway_workers_log_in_as_their_own_users_and_do_not_knock_each_other_off(
        tmp_path: Path, topics: Topics, make_mosquitto: Callable[..., Mosquitto], influxd: Influxd,
        influx: InfluxClient, database: str) -> None:
    site = Site(tmp_path / "broker-state", topics, make_mosquitto)
    config = settings(tmp_path, site.broker.port, influxd.url, database, topics, gateway_workers=2,
                      gateway_share_group=f"w{topics.root}",
                      mqtt_username=GATEWAY_USER, mqtt_password=site.services[GATEWAY_USER])
    log = tmp_path / "gateway.log"
    with start_gateway(config, log):  # ready when both workers' /healthz say connected
        kit = site.kit("k1")
        for seq in range(200):
            kit.publish(topics.readings("s1", "k1"), readings("k1", 1, seq))
        kit.close()
        assert await wait_for_count(influx, database, "SELECT count(temperature) FROM readings", 200, 30) == 200
        await asyncio.sleep(1.0)  # two workers under one user would have knocked each other off by now
        text = log.read_text()
        assert _connects(log) == 2, text
        assert f"as {GATEWAY_USER}-w0" in text and f"as {GATEWAY_USER}-w1" in text


def test_kit_configure_publishes_through_a_broker_that_binds_ids(tmp_path: Path, topics: Topics,
                                                                 make_mosquitto: Callable[..., Mosquitto]) -> None:
    from firmware.tools import configure

    site = Site(tmp_path, topics, make_mosquitto)
    kit = site.kit("k1", client_id="s1-k1")
    kit.subscribe(topics.config("s1", "k1"))
    assert configure("s1", "k1", 300, "127.0.0.1", site.broker.port, topics, API_USER,
                     site.services[API_USER]) == topics.config("s1", "k1")
    topic, payload = kit.next_message()
    assert topic == topics.config("s1", "k1") and json.loads(payload)["interval_s"] == 300
    kit.close()


def test_each_worker_gets_its_own_broker_user_and_more_workers_than_users_are_refused(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from gateway.cli import run_gateway, worker_env
    from gateway.settings import GatewaySettings
    from lauks.brokerauth import GATEWAY_WORKER_USERS

    config = GatewaySettings(mqtt_username=GATEWAY_USER, gateway_instance="gw", gateway_workers=2)
    env = worker_env(config, 1)
    assert env["LAUKS_MQTT_USERNAME"] == f"{GATEWAY_USER}-w1" == env["LAUKS_GATEWAY_CLIENT_ID"]
    assert "LAUKS_MQTT_USERNAME" not in worker_env(GatewaySettings(gateway_instance="gw"), 1)  # no users: no change
    monkeypatch.setenv("LAUKS_MQTT_USERNAME", GATEWAY_USER)
    monkeypatch.setenv("LAUKS_GATEWAY_WORKERS", str(GATEWAY_WORKER_USERS + 1))
    assert run_gateway(argparse.Namespace(log_level="INFO")) == 2
    assert f"the broker has users for {GATEWAY_WORKER_USERS} workers" in capsys.readouterr().err
