"""An update the way staff run one, through the platform's own parts: `lauks kit add` writes the kit's config.json
(its broker user and update key), the broker runs with the platform's users and ACL (a kit may only read its own
update topic), `lauks fleet release` builds the release, the API serves it, and `lauks fleet update` offers it as
the staff user. The kit runs from its own flash folder (firmware/sim/flashkit.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ota_helpers import Inbox, file_server, wait_for

from firmware.sim.flashkit import FlashKit, install
from firmware.sim.world import Clock
from lauks.brokerauth import GATEWAY_USER, BrokerAuth
from lauks.services import Mosquitto, free_port
from lauks.topics import Topics
from stack.cli import main

pytestmark = [pytest.mark.slow]


def test_kit_add_fleet_release_and_fleet_update_take_a_kit_through_the_acl_to_a_confirmed_update(
        tmp_path: Path, topics: Topics, monkeypatch: pytest.MonkeyPatch) -> None:
    state, port = tmp_path / "state", free_port()
    for key, value in {"LAUKS_STATE_DIR": str(state), "LAUKS_MQTT_HOST": "127.0.0.1", "LAUKS_MQTT_PORT": str(port),
                       "LAUKS_TOPIC_ROOT": topics.root}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("LAUKS_UPDATE_KEY", raising=False)
    auth = BrokerAuth(state, root=topics.root)
    services = auth.ensure_service_users()
    for kit in ("k1", "k2"):
        assert main(["kit", "add", "ota", kit, "--type", "weather", "--interval", "10",
                     "--out-dir", str(tmp_path / "kits" / kit)]) == 0
    broker = Mosquitto(state / "mosquitto", port, password_file=auth.password_file, acl_file=auth.acl_file)
    broker.start()
    # the gateway's user reads readings and status; not staff's, whose client id (the broker takes the user name)
    # `lauks fleet update` uses, taking the session over
    inbox = Inbox(port, topics, GATEWAY_USER, services[GATEWAY_USER])
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
    finally:
        for kit in fleet:
            kit.stop()
        inbox.close()
        broker.stop()
    assert all(kit.error is None for kit in fleet), [kit.log()[-2000:] for kit in fleet]
    assert inbox.statuses_hold_to_the_contract() >= 6
    assert [u["state"] for u in inbox.updates("k1")] == ["offered", "downloading", "staged", "trial", "confirmed"]
    assert inbox.updates("k2") == [] and set(inbox.fw_of_readings("k2")) != {"1.0.0-ota"}
    assert "no updates over the air" not in fleet[0].log()  # the ACL let the kit read its update topic
