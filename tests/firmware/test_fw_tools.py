"""`lauks kit add` and `lauks kit flash`, and how the kit treats a bad config.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from firmware.device_path import device_files
from firmware.tools import ToolError, check_config, configure_payload, flash
from lauks.contract import KitConfig

ROOT = Path(__file__).resolve().parents[2]


def lauks(*args: str, cwd: Path, state: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LAUKS_STATE_DIR=str(state), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "lauks", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60, check=False)


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


def test_flash_copies_every_firmware_file_and_the_config(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    result = lauks("kit", "add", "demo", "k1", "--type", "weather", "--out-dir", str(tmp_path), cwd=tmp_path,
                   state=tmp_path / "s")
    assert result.returncode == 0, result.stderr
    plan = flash("/dev/ttyUSB0", config, ["logging"], dry_run=True)
    copied = [c[-1] for c in plan.commands if c[3:5] == ["fs", "cp"]]
    assert ":main.py" in copied and ":lauks_kit/core/ring.py" in copied and ":config.json" in copied
    assert len(copied) == len(device_files()) + 1
    assert ["mpremote", "connect", "/dev/ttyUSB0", "mip", "install", "logging"] in plan.commands
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
    assert ["mpremote", "connect", "/dev/ttyUSB0", "fs", "cp", str(ca), ":ca.pem"] in plan.commands


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
