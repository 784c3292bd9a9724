"""`lauks kit add` writes the kit's own update key into its config.json, derived from the master key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from firmware.tools import ToolError, add_kit
from lauks import fleet
from lauks.brokerauth import BrokerAuth


def add(state: Path, kit: str = "kit-01") -> dict[str, object]:
    path = add_kit("school-1", kit, "weather", state / "out" / kit, state, "10.0.0.5", 1883, [], register=False)
    return dict(json.loads(path.read_text()))


def test_a_new_kit_gets_its_own_update_key_from_the_master(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAUKS_UPDATE_KEY", raising=False)
    monkeypatch.delenv("LAUKS_ENVIRONMENT", raising=False)
    first, second = add(tmp_path, "kit-01"), add(tmp_path, "kit-02")
    master = fleet.master_key(tmp_path, create=False)  # made on first need in development
    assert first["update_key"] == fleet.kit_update_key(master, "school-1", "kit-01").hex()
    assert second["update_key"] != first["update_key"]


def test_in_production_a_missing_master_key_stops_kit_add_before_anything_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAUKS_ENVIRONMENT", "production")
    monkeypatch.setenv("LAUKS_MQTT_PASSWORD", "a-real-secret-for-this-test")
    monkeypatch.delenv("LAUKS_UPDATE_KEY", raising=False)
    with pytest.raises(ToolError, match="no update master key"):
        add(tmp_path)
    assert not fleet.master_key_path(tmp_path).exists()
    assert BrokerAuth(tmp_path).kits() == [] and not (tmp_path / "out").exists()


def test_a_master_key_given_in_the_environment_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAUKS_UPDATE_KEY", "ab" * 32)
    assert add(tmp_path)["update_key"] == fleet.kit_update_key(bytes([0xAB]) * 32, "school-1", "kit-01").hex()


def test_production_refuses_an_update_key_that_is_not_64_hex_digits(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from lauks.settings import Settings

    monkeypatch.setenv("LAUKS_MQTT_PASSWORD", "a-real-secret-for-this-test")
    with pytest.raises(ValidationError, match="LAUKS_UPDATE_KEY"):
        Settings(environment="production", update_key="lauks-dev")
    assert Settings(environment="production", update_key="0f" * 32).update_key is not None


def test_deploy_init_makes_the_master_key_and_a_forced_init_keeps_it(tmp_path: Path) -> None:
    import stat

    from lauks.deploy import init_deployment

    state = tmp_path / "state"
    said = init_deployment(tmp_path / ".env", state, ["lauks.test"])
    key = fleet.master_key(state, create=False)
    assert any(str(fleet.master_key_path(state)) in sentence for sentence in said)
    assert stat.S_IMODE(fleet.master_key_path(state).stat().st_mode) == 0o600
    assert (state / "releases").is_dir()
    init_deployment(tmp_path / ".env", state, ["lauks.test"], force=True)
    assert fleet.master_key(state, create=False) == key  # the kits out there hold keys derived from it
