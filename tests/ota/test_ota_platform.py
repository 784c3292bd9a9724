"""An update the way staff run one, through the platform's own parts: `lauks kit add` writes the kit's config.json
(its broker user and update key), the broker runs with the platform's users and ACL (a kit may only read its own
update topic), `lauks fleet release` builds the release, the API serves it, and `lauks fleet update` offers it as
the staff user, the gateway stores the kits' status in InfluxDB, and `lauks fleet status` shows how it ended. The kit
runs from its own flash folder (firmware/sim/flashkit.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ota_helpers import Inbox, file_server, wait_for

from firmware.sim.flashkit import FlashKit, install
from firmware.sim.world import Clock
from gateway.settings import GatewaySettings
from harness.gateway import start_gateway
from lauks.brokerauth import GATEWAY_USER, BrokerAuth, gateway_worker_username
from lauks.services import Influxd, Mosquitto, free_port
from lauks.topics import Topics
from stack.cli import main

pytestmark = [pytest.mark.slow]


def test_kit_add_fleet_release_and_fleet_update_take_a_kit_through_the_acl_to_a_confirmed_update(
        tmp_path: Path, topics: Topics, influxd: Influxd, database: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    state, port = tmp_path / "state", free_port()
    for key, value in {"LAUKS_STATE_DIR": str(state), "LAUKS_MQTT_HOST": "127.0.0.1", "LAUKS_MQTT_PORT": str(port),
                       "LAUKS_TOPIC_ROOT": topics.root, "LAUKS_INFLUX_URL": influxd.url,
                       "LAUKS_INFLUX_DATABASE": database}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("LAUKS_UPDATE_KEY", raising=False)
    auth = BrokerAuth(state, root=topics.root)
    services = auth.ensure_service_users()
    for kit in ("k1", "k2"):
        assert main(["kit", "add", "ota", kit, "--type", "weather", "--interval", "10",
                     "--out-dir", str(tmp_path / "kits" / kit)]) == 0
    broker = Mosquitto(state / "mosquitto", port, password_file=auth.password_file, acl_file=auth.acl_file)
    broker.start()
    gateway = start_gateway(GatewaySettings(
        mqtt_host="127.0.0.1", mqtt_port=port, mqtt_username=GATEWAY_USER, mqtt_password=services[GATEWAY_USER],
        influx_url=influxd.url, influx_database=database, topic_root=topics.root, state_dir=tmp_path / "gateway",
        gateway_http_port=0, environment="development"), tmp_path / "gateway.log")
    # a gateway worker's user reads readings and status. The broker makes a client's id its user name, so it must
    # be a user nobody else logs in as: not staff (`lauks fleet update`), not the gateway's own
    inbox = Inbox(port, topics, gateway_worker_username(GATEWAY_USER, 5), services[GATEWAY_USER])
    clock = Clock(speedup=60, start_ago_s=6 * 3600)
    fleet = []
    for kit in ("k1", "k2"):
        config = json.loads((tmp_path / "kits" / kit / "config.json").read_text())
        assert len(config["update_key"]) == 64 and config["broker"]["username"] == f"ota.{kit}"
        install(tmp_path / "flash" / kit, config)
        fleet.append(FlashKit(tmp_path / "flash" / kit, config, ("127.0.0.1", port), clock, topics.root))
    try:
        assert main(["fleet", "release", "--version", "1.0.0-ota", "--format", "py"]) == 0
        with file_server(state) as url:
            for kit in fleet:
                kit.start()
            assert wait_for(lambda: inbox.fw_of_readings("k1") and inbox.fw_of_readings("k2"), 30)
            assert main(["fleet", "update", "ota", "k1", "--version", "1.0.0-ota", "--server", url]) == 0
            assert wait_for(lambda: inbox.last_update("k1") == {"version": "1.0.0-ota", "state": "confirmed"}
                            and "1.0.0-ota" in inbox.fw_of_readings("k1"), 40), inbox.updates("k1")
            before = len(inbox.of("readings", "k2"))
            assert wait_for(lambda: len(inbox.of("readings", "k2")) >= before + 2, 20)
            rows: dict[str, list[str]] = {}

            def status_rows() -> dict[str, list[str]]:
                capsys.readouterr()
                assert main(["fleet", "status", "ota"]) == 0
                rows.update({line.split()[1]: line.split() for line in capsys.readouterr().out.splitlines()[1:]})
                return rows

            assert wait_for(lambda: status_rows().get("k1", [])[2:5] == ["1.0.0-ota", "1.0.0-ota", "confirmed"], 20), \
                rows
    finally:
        for kit in fleet:
            kit.stop()
        inbox.close()
        gateway.stop(20)
        broker.stop()
    assert rows["k2"][3:5] == ["-", "-"], rows["k2"]  # never offered, no update
    assert all(kit.error is None for kit in fleet), [kit.log()[-2000:] for kit in fleet]
    assert inbox.statuses_hold_to_the_contract() >= 6
    assert [u["state"] for u in inbox.updates("k1")] == ["offered", "downloading", "staged", "trial", "confirmed"]
    assert inbox.updates("k2") == [] and set(inbox.fw_of_readings("k2")) != {"1.0.0-ota"}
    assert "no updates over the air" not in fleet[0].log()  # the ACL let the kit read its update topic
