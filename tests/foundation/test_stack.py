"""`lauks up`: the stack comes up on loopback, and Ctrl-C (or its own death) leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from lauks.services import free_port, port_is_free

pytestmark = pytest.mark.services


def _start_stack(state_dir: Path) -> tuple[subprocess.Popen[str], dict[str, int]]:
    ports = {"LAUKS_UP_MQTT_PORT": free_port(), "LAUKS_UP_INFLUX_PORT": free_port(),
             "LAUKS_UP_API_PORT": free_port(), "LAUKS_UP_GATEWAY_PORT": free_port()}
    env = dict(os.environ, **{k: str(v) for k, v in ports.items()}, PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "-m", "lauks", "up", "--state-dir", str(state_dir), "--kits", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.monotonic() + 60
    assert process.stdout is not None
    for output_line in process.stdout:
        if "Lauks is up" in output_line:
            break
        assert time.monotonic() < deadline, "lauks up did not come up in 60 s"
    else:
        pytest.fail(f"lauks up exited with {process.wait()} before it was up")
    return process, ports


def _wait_gone(pids: list[int], timeout_s: float = 20) -> list[int]:
    deadline = time.monotonic() + timeout_s
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        time.sleep(0.1)
    return alive


def test_ctrl_c_stops_every_process_the_stack_started(tmp_path: Path) -> None:
    process, ports = _start_stack(tmp_path / "state")
    try:
        children = [c.pid for c in psutil.Process(process.pid).children(recursive=True)]
        assert len(children) >= 2  # at least Mosquitto and InfluxDB
        assert not port_is_free(ports["LAUKS_UP_MQTT_PORT"])
        ping = httpx.get(f"http://127.0.0.1:{ports['LAUKS_UP_INFLUX_PORT']}/ping", timeout=5)
        assert ping.status_code == 204
        assert (tmp_path / "state" / "stack.env").read_text().count("LAUKS_") >= 5
        listed = subprocess.run([sys.executable, "-m", "lauks", "kit", "list", "demo"], capture_output=True, text=True,
                                env=dict(os.environ, LAUKS_STATE_DIR=str(tmp_path / "state")), timeout=60, check=False)
        assert listed.returncode == 0, listed.stderr
        assert "k01" in listed.stdout and "sim01" in listed.stdout  # the API knows the demo kits
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0
    assert _wait_gone(children) == []


def test_children_die_with_the_stack_even_when_it_is_killed(tmp_path: Path) -> None:
    process, _ = _start_stack(tmp_path / "state")
    children = [c.pid for c in psutil.Process(process.pid).children(recursive=True)]
    process.kill()
    process.wait(10)
    assert _wait_gone(children) == []
