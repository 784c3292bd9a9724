"""`lauks kit add` and `lauks kit flash`, and how the kit treats a bad config.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from firmware.device_path import device_files
from firmware.tools import ToolError, check_config, configure_payload, flash, lan_address, loopback_warning
from lauks.brokerauth import BrokerAuth
from lauks.contract import KitConfig
from lauks.services import Mosquitto, free_port
from lauks.stack import write_stack_env

ROOT = Path(__file__).resolve().parents[2]


def lauks(*args: str, cwd: Path, state: Path, **env_vars: str) -> subprocess.CompletedProcess[str]:
    """The lauks command as a new user runs it: no LAUKS_ settings but the state folder (and ``env_vars``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAUKS_")}
    env.update(LAUKS_STATE_DIR=str(state), PYTHONPATH=str(ROOT), **env_vars)
    return subprocess.run([sys.executable, "-m", "stack", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def running_stack(state: Path, mqtt_port: int) -> None:
    """What `lauks up` leaves in its state folder while it runs (this test's process standing in for it)."""
    write_stack_env(state, {"LAUKS_STATE_DIR": str(state), "LAUKS_MQTT_HOST": "127.0.0.1",
                            "LAUKS_MQTT_PORT": str(mqtt_port)}, os.getpid())


def test_kit_add_writes_a_config_the_firmware_accepts_with_the_kits_broker_password(tmp_path: Path) -> None:
    result = lauks("kit", "add", "riga-3", "k07", "--type", "environment", "--wifi", "school:secret",
                   "--wifi", "phone:hotspot", cwd=tmp_path, state=tmp_path / "state")
    assert result.returncode == 0, result.stderr
    path = tmp_path / "kits" / "riga-3" / "k07" / "config.json"
    cfg = json.loads(path.read_text())
    assert check_config(path) == []
    assert cfg["site"] == "riga-3" and cfg["kit"] == "k07" and cfg["type"] == "environment"
    assert [w["ssid"] for w in cfg["wifi"]] == ["school", "phone"]
    assert {s["type"] for s in cfg["sensors"]} >= {"ds18b20", "soil_moisture", "sds011", "scd30", "battery"}
    assert cfg["broker"]["username"] == "riga-3.k07" and len(cfg["broker"]["password"]) >= 16
    assert path.stat().st_mode & 0o077 == 0
    assert cfg["broker"]["host"] == "127.0.0.1"  # the default: the kit itself, said in a warning
    assert loopback_warning("127.0.0.1", lan_address()) in result.stderr
    listed = lauks("kit", "list", "riga-3", cwd=tmp_path, state=tmp_path / "state")
    assert listed.returncode == 0, listed.stderr
    assert "k07" in listed.stdout and "riga-3" in listed.stdout


def test_kit_add_refuses_a_bad_name_and_an_existing_config(tmp_path: Path) -> None:
    bad = lauks("kit", "add", "Riga School", "k07", "--type", "weather", cwd=tmp_path, state=tmp_path / "s")
    assert bad.returncode == 2 and "site name 'Riga School' is not allowed" in bad.stderr
    out = tmp_path / "x"
    first = lauks("kit", "add", "demo", "k1", "--type", "weather", "--out-dir", str(out), cwd=tmp_path,
                  state=tmp_path / "s")
    assert first.returncode == 0, first.stderr
    again = lauks("kit", "add", "demo", "k1", "--type", "weather", "--out-dir", str(out), cwd=tmp_path,
                  state=tmp_path / "s")
    assert again.returncode == 2 and "already exists" in again.stderr


def test_a_loopback_broker_host_warns_with_the_machines_lan_address() -> None:
    warning = loopback_warning("localhost", "192.168.1.10")
    assert warning is not None and "--broker-host 192.168.1.10" in warning
    assert loopback_warning("::1", None) is not None and "ip -4 addr" in str(loopback_warning("127.0.1.1", None))
    assert loopback_warning("192.168.1.10", "192.168.1.10") is None
    assert loopback_warning("lauks.school.lv", "192.168.1.10") is None
    assert "listens on this machine's loopback only" in str(loopback_warning("127.0.0.1", None, True))


def test_kit_add_beside_a_running_stack_writes_the_stacks_broker_port(tmp_path: Path) -> None:
    state, port = tmp_path / "state", free_port()
    state.mkdir()
    running_stack(state, port)
    result = lauks("kit", "add", "demo", "k2", "--type", "weather", cwd=tmp_path, state=state)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "kits/demo/k2/config.json").read_text())["broker"]["port"] == port
    assert loopback_warning("127.0.0.1", lan_address(), beside_local_stack=True) in result.stderr
    (state / "stack.env").write_text((state / "stack.env").read_text().replace(f"pid {os.getpid()}", "pid 999999999"))
    stale = lauks("kit", "add", "demo", "k3", "--type", "weather", cwd=tmp_path, state=state)  # that stack is gone
    assert stale.returncode == 0, stale.stderr
    assert json.loads((tmp_path / "kits/demo/k3/config.json").read_text())["broker"]["port"] == 1883


@pytest.mark.services
def test_kit_configure_beside_a_running_stack_publishes_as_staff_on_the_stacks_broker(
        tmp_path: Path, make_mosquitto: Callable[..., Mosquitto]) -> None:
    state = tmp_path / "state"
    auth = BrokerAuth(state)
    auth.ensure_service_users()
    kit_password = auth.add_kit("demo", "k01")
    broker = make_mosquitto(password_file=auth.password_file, acl_file=auth.acl_file)  # anonymous refused
    running_stack(state, broker.port)
    result = lauks("kit", "configure", "demo", "k01", "--interval", "300", cwd=tmp_path, state=state)
    assert result.returncode == 0, result.stderr
    retained = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-u", "demo.k01",
                               "-P", kit_password, "-t", "lauks/v1/demo/k01/config", "-C", "1", "-W", "10"],
                              capture_output=True, text=True, timeout=30, check=False)
    assert json.loads(retained.stdout)["interval_s"] == 300, retained.stderr


def test_kit_simulate_refuses_kits_without_users_where_the_broker_has_a_user_per_kit(tmp_path: Path) -> None:
    state = tmp_path / "state"
    BrokerAuth(state).ensure_service_users()  # as `lauks up` and `lauks deploy init` leave it
    result = lauks("kit", "simulate", "--kits", "1", "--duration", "1", cwd=tmp_path, state=state)
    assert result.returncode == 2 and "--config-dir" in result.stderr, result.stderr


def test_kit_flash_runs_the_venvs_mpremote_when_the_venv_is_not_on_path(tmp_path: Path) -> None:
    added = lauks("kit", "add", "demo", "k1", "--type", "weather", "--wifi", "a:b", cwd=tmp_path, state=tmp_path / "s")
    assert added.returncode == 0, added.stderr
    result = lauks("kit", "flash", "--port", str(tmp_path / "no-such-port"), cwd=tmp_path, state=tmp_path / "s",
                   PATH="/usr/bin:/bin")
    # mpremote ran (from next to the interpreter) and could not open the port: a sentence, not a traceback
    assert result.returncode == 2, result.stderr
    assert "failed" in result.stderr and "is the kit plugged in" in result.stderr
    assert "Traceback" not in result.stderr


def test_flash_copies_every_firmware_file_and_the_config(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    result = lauks("kit", "add", "demo", "k1", "--type", "weather", "--out-dir", str(tmp_path), cwd=tmp_path,
                   state=tmp_path / "s")
    assert result.returncode == 0, result.stderr
    plan = flash("/dev/ttyUSB0", config, ["logging"], dry_run=True)
    copied = [c[-1] for c in plan.commands if c[3:5] == ["fs", "cp"]]
    assert ":main.py" in copied and ":lauks_kit/core/ring.py" in copied and ":config.json" in copied
    assert len(copied) == len(device_files()) + 1
    mpremote = str(Path(sys.executable).parent / "mpremote")  # the venv's, installed with Lauks
    assert [mpremote, "connect", "/dev/ttyUSB0", "mip", "install", "logging"] in plan.commands
    assert plan.commands[-1][-1] == "reset"


def test_a_tls_kit_is_flashed_with_the_schools_ca_and_refused_without_it(tmp_path: Path) -> None:
    result = lauks("kit", "add", "demo", "k1", "--type", "weather", "--tls", "--out-dir", str(tmp_path), cwd=tmp_path,
                   state=tmp_path / "s")
    assert result.returncode == 0, result.stderr
    config = tmp_path / "config.json"
    with pytest.raises(ToolError, match="needs the school's CA"):
        flash("/dev/ttyUSB0", config, [], dry_run=True)
    with pytest.raises(ToolError, match="no CA certificate"):
        flash("/dev/ttyUSB0", config, [], dry_run=True, ca=tmp_path / "missing.crt")
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    plan = flash("/dev/ttyUSB0", config, [], dry_run=True, ca=ca)
    assert [plan.commands[0][0], "connect", "/dev/ttyUSB0", "fs", "cp", str(ca), ":ca.pem"] in plan.commands


def test_flash_refuses_a_config_the_kit_could_not_start_with(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"site": "demo", "kit": "k1", "type": "weather", "wifi": []}))
    with pytest.raises(ToolError, match="'wifi' must be a list of networks"):
        flash("/dev/ttyUSB0", config, [], dry_run=True)
    with pytest.raises(ToolError, match="no config at"):
        flash("/dev/ttyUSB0", tmp_path / "missing.json", [], dry_run=True)


def test_configure_payload_is_a_kit_config_and_refuses_a_bad_interval() -> None:
    assert KitConfig.model_validate_json(configure_payload(300)).interval_s == 300
    with pytest.raises(ValueError):
        configure_payload(5)


class BadConfigBoard:
    """Just enough of a board for Kit.start to find a broken config.json."""

    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self.lines: list[str] = []
        self.patterns: list[Any] = []

    def random(self) -> float:
        return 0.5

    def log(self, text: str) -> None:
        self.lines.append(text)

    def led_pattern(self, pattern: Any) -> None:
        self.patterns.append(pattern)


@pytest.mark.parametrize(("content", "words"), [
    (None, "no "),
    ("{not json", "is not valid JSON"),
    (json.dumps({"site": "demo", "kit": "k1", "type": "weather", "wifi": [{"ssid": "a"}],
                 "broker": {"host": "b"}, "interval_s": 3}), "'interval_s' must be"),
])
def test_a_bad_or_missing_config_is_reported_with_a_log_line_and_an_led_pattern(
        tmp_path: Path, content: str | None, words: str) -> None:
    from lauks_kit.app import LED_BAD_CONFIG, Kit

    if content is not None:
        (tmp_path / "config.json").write_text(content)
    board = BadConfigBoard(tmp_path)
    assert Kit(board).start() is False
    assert words in board.lines[0] and board.patterns == [LED_BAD_CONFIG]
