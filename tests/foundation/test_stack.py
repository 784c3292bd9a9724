"""`lauks up`: the stack comes up on loopback, and Ctrl-C (or its own death) leaves no process behind;
commands run beside it follow it; and the foundation it is built on imports nothing above it."""

from __future__ import annotations

import ast
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
from lauks.stack import follow_running_stack, read_running_stack, write_stack_env

ROOT = Path(__file__).resolve().parents[2]
# Every package that builds on lauks/; stack is the `lauks` command, which puts them all together.
ABOVE_THE_FOUNDATION = {"api", "metastore", "gateway", "firmware", "dashboards", "bench", "harness", "stack",
                        "alerting"}


def _imports(path: Path) -> list[str]:
    """Every module ``path`` imports, by its full name, and ``importlib``/``__import__`` wherever it is used."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
        elif isinstance(node, ast.Name) and node.id in ("__import__", "importlib"):
            found.append(node.id)
    return found


def test_the_foundation_imports_no_package_above_it_and_no_module_by_name() -> None:
    files = sorted((ROOT / "lauks").rglob("*.py"))
    assert len(files) > 10
    wrong = [f"{path.name} imports {name}" for path in files for name in _imports(path)
             if name.split(".")[0] in ABOVE_THE_FOUNDATION or name.split(".")[0] in ("importlib", "__import__")]
    assert wrong == []


def test_the_layering_check_sees_every_kind_of_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import api.app\nfrom gateway import cli\nfrom . import topics\n"
                      "def f():\n    import importlib\n    return __import__('firmware.tools')\n")
    assert _imports(module) == ["api.app", "gateway", "importlib", "__import__"]


def test_commands_follow_a_running_stack_but_not_one_that_is_gone_and_never_over_the_environment(
        tmp_path: Path) -> None:
    values = {"LAUKS_STATE_DIR": str(tmp_path), "LAUKS_MQTT_PORT": "41883", "LAUKS_API_PORT": "48000"}
    write_stack_env(tmp_path, values, os.getpid())
    assert read_running_stack(tmp_path) == values
    environ = {"LAUKS_STATE_DIR": str(tmp_path), "LAUKS_API_PORT": "8001"}  # set by the person: kept
    assert follow_running_stack(environ) == {"LAUKS_MQTT_PORT": "41883"}
    assert environ["LAUKS_MQTT_PORT"] == "41883" and environ["LAUKS_API_PORT"] == "8001"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    write_stack_env(tmp_path, values, int(gone.stdout))  # left by a `lauks up` that was killed
    assert read_running_stack(tmp_path) is None
    assert follow_running_stack({"LAUKS_STATE_DIR": str(tmp_path)}) == {}


def _start_stack(state_dir: Path, banner: list[str] | None = None) -> tuple[subprocess.Popen[str], dict[str, int]]:
    ports = {"LAUKS_UP_MQTT_PORT": free_port(), "LAUKS_UP_INFLUX_PORT": free_port(),
             "LAUKS_UP_API_PORT": free_port(), "LAUKS_UP_GATEWAY_PORT": free_port()}
    env = dict(os.environ, **{k: str(v) for k, v in ports.items()}, PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "-m", "stack", "up", "--state-dir", str(state_dir), "--kits", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.monotonic() + 60
    assert process.stdout is not None
    for output_line in process.stdout:
        if "Lauks is up" in output_line:
            if banner is not None:
                banner += [process.stdout.readline() for _ in range(3)]
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


@pytest.mark.services
def test_ctrl_c_stops_every_process_the_stack_started(tmp_path: Path) -> None:
    process, ports = _start_stack(tmp_path / "state")
    try:
        children = [c.pid for c in psutil.Process(process.pid).children(recursive=True)]
        assert len(children) >= 2  # at least Mosquitto and InfluxDB
        assert not port_is_free(ports["LAUKS_UP_MQTT_PORT"])
        ping = httpx.get(f"http://127.0.0.1:{ports['LAUKS_UP_INFLUX_PORT']}/ping", timeout=5)
        assert ping.status_code == 204
        assert (tmp_path / "state" / "stack.env").read_text().count("LAUKS_") >= 5
        listed = subprocess.run([sys.executable, "-m", "stack", "kit", "list", "demo"], capture_output=True, text=True,
                                env=dict(os.environ, LAUKS_STATE_DIR=str(tmp_path / "state")), timeout=60, check=False)
        assert listed.returncode == 0, listed.stderr
        assert "k01" in listed.stdout and "sim01" in listed.stdout  # the API knows the demo kits
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0
    assert _wait_gone(children) == []
    assert not (tmp_path / "state" / "stack.env").exists()  # commands no longer follow a stack that stopped


@pytest.mark.services
def test_lauks_up_prints_the_web_address_first_and_its_staff_token_signs_in(tmp_path: Path) -> None:
    banner: list[str] = []
    process, ports = _start_stack(tmp_path / "state", banner)
    try:
        web = f"http://127.0.0.1:{ports['LAUKS_UP_API_PORT']}/"
        assert banner[0].split() == ["web", "app", web, "<-", "open", "this:", "sites,", "kits,", "live", "charts"]
        token = (tmp_path / "state" / "staff.token").read_text().strip()
        assert token in banner[2] and (tmp_path / "state" / "staff.token").stat().st_mode & 0o077 == 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{web}v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        with httpx.Client(base_url=web, timeout=10) as client:
            home = client.get("/", headers={"Accept-Language": "lv"})
            assert home.status_code == 200 and home.headers["content-type"].startswith("text/html")
            assert "Demo school" in home.text  # the demo site, public on this machine
            form = client.get("/signin").text
            csrf = form.split('name="csrf" value="')[1].split('"')[0]
            signed = client.post("/signin", data={"token": token, "csrf": csrf}, follow_redirects=False)
            assert signed.status_code == 303 and "lauks_session" in client.cookies
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0


@pytest.mark.services
def test_children_die_with_the_stack_even_when_it_is_killed(tmp_path: Path) -> None:
    process, _ = _start_stack(tmp_path / "state")
    children = [c.pid for c in psutil.Process(process.pid).children(recursive=True)]
    process.kill()
    process.wait(10)
    assert _wait_gone(children) == []
    assert read_running_stack(tmp_path / "state") is None  # its stack.env is left, and known to be stale
