"""`lauks up` runs with the same per-kit and per-service broker users as production."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from mqtt_helpers import Client, refused

from lauks.brokerauth import STAFF_USER, BrokerAuth
from lauks.services import free_port

pytestmark = pytest.mark.services


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_local_stack_refuses_anonymous_clients_and_stores_a_kits_reading(tmp_path: Path) -> None:
    state = tmp_path / "state"
    ports = {"LAUKS_UP_MQTT_PORT": free_port(), "LAUKS_UP_INFLUX_PORT": free_port(),
             "LAUKS_UP_API_PORT": free_port(), "LAUKS_UP_GATEWAY_PORT": free_port()}
    env = dict(os.environ, **{k: str(v) for k, v in ports.items()}, PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "-m", "stack", "up", "--state-dir", str(state), "--kits", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        assert process.stdout is not None
        banner = []
        for line in process.stdout:
            banner.append(line)
            if line.startswith("Query it"):
                break
        text = "".join(banner)
        assert "Lauks is up" in text, text
        port = ports["LAUKS_UP_MQTT_PORT"]
        password = (state / "demo.k01.password").read_text().strip()
        assert f"-u demo.k01 -P {password}" in text

        assert refused(port, None, None)
        assert refused(port, "demo.k01", "wrong")
        auth = BrokerAuth(state)
        assert {"lauks-gateway", "lauks-api", "demo.k01", "demo.sim01"} <= set(auth.users())
        config = json.loads((state / "kits" / "demo" / "sim01" / "config.json").read_text())
        assert config["broker"]["username"] == "demo.sim01" and config["broker"]["password"]
        # every file with a password is the owner's alone, and so are the folders that hold them
        for secret in (state / "kits" / "demo" / "sim01" / "config.json", state / "demo.k01.password",
                       auth.password_file, auth.acl_file, auth.registry_file,
                       *auth.dir.glob("*.password")):
            assert mode(secret) == 0o600, f"{secret} is {mode(secret):o}"
        for folder in (state, state / "kits", auth.dir):
            assert mode(folder) == 0o700, f"{folder} is {mode(folder):o}"

        # Staff, not the gateway's user: the broker binds client ids to users, so a second client logged in
        # as lauks-gateway would take the running gateway's session.
        watcher = Client(port, STAFF_USER, auth.service_password(STAFF_USER)).connect()
        watcher.subscribe("lauks/v1/demo/k01/readings")
        kit = Client(port, "demo.k01", password).connect()
        payload = json.dumps({"v": 1, "kit": "k01", "boot": 1, "seq": 424242,
                              "samples": [{"age": 0, "temperature": 12.25}]})
        kit.publish("lauks/v1/demo/k01/readings", payload)
        assert watcher.next_message()[1] == payload.encode()
        kit.close()
        watcher.close()

        if "gateway" in text:  # the gateway runs with its own user, and stores what the kit sent
            # The gateway may not have subscribed yet (a fresh broker keeps no session for it): resend.
            url = f"http://127.0.0.1:{ports['LAUKS_UP_INFLUX_PORT']}/query"
            deadline = time.monotonic() + 30
            kit = Client(port, "demo.k01", password).connect()
            for seq in range(1, 10_000):
                kit.publish("lauks/v1/demo/k01/readings", payload.replace("424242", str(seq)))
                rows = httpx.get(url, params={"db": "lauks", "q": "SELECT temperature FROM readings "
                                              "WHERE kit = 'k01' AND temperature = 12.25"}, timeout=5).json()
                if rows["results"][0].get("series"):
                    break
                assert time.monotonic() < deadline, "the gateway did not store the kit's reading in 30 s"
                time.sleep(0.5)
            kit.close()
            broker_log = (state / "mosquitto" / "mosquitto.log").read_text()
            assert "as lauks-gateway (" in broker_log and "u'lauks-gateway'" in broker_log  # id = username
        if (state / "sim-kits").exists():  # the simulated kits' flash, with copies of their config.json
            assert mode(state / "sim-kits") == 0o700
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0
