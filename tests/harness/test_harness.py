"""The harness the tests and benchmarks share: a gateway child gets exactly the settings it was given, and
one that cannot start or cannot connect fails the test at once with the reason from its log."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.settings import GatewaySettings
from harness.gateway import settings_env, start_gateway
from harness.process import ProcessFailed
from lauks.services import free_port


def test_the_environment_made_from_settings_gives_back_the_same_settings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = GatewaySettings(state_dir=tmp_path, mqtt_port=1884, mqtt_password="secret", gateway_http_port=0,
                             gateway_fsync=False, gateway_kit_rate=2.5, gateway_share_group="g")
    for name, value in settings_env(config).items():
        monkeypatch.setenv(name, value)
    assert GatewaySettings().model_dump() == config.model_dump()


def test_a_gateway_that_exits_fails_at_once_with_its_log(tmp_path: Path) -> None:
    config = GatewaySettings(state_dir=tmp_path, mqtt_port=free_port())
    with pytest.raises(ProcessFailed, match=r"(?s)exited with 2.*the settings are not valid"):
        start_gateway(config, tmp_path / "gateway.log", env={"LAUKS_GATEWAY_BATCH_POINTS": "0"})


def test_a_gateway_that_does_not_connect_fails_with_what_healthz_said_and_is_stopped(tmp_path: Path) -> None:
    config = GatewaySettings(state_dir=tmp_path, mqtt_port=free_port(), gateway_instance="h")  # no broker there
    with pytest.raises(ProcessFailed, match=r"(?s)did not connect.*'mqtt_connected': False.*cannot connect to MQTT") \
            as failed:
        start_gateway(config, tmp_path / "gateway.log", timeout_s=2)
    assert failed.value.process.returncode is not None, "the gateway was left running"
