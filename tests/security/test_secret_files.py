"""Every file with a secret that a command writes (``.env``, broker passwords and users, kits'
config.json, TLS keys) is created with its final mode 0600, never readable by others for a moment,
in folders of mode 0700; and one that an older version left readable is tightened.

"Never for a moment" is checked on the system calls: the command runs under strace, and no secret
file (or the temporary file renamed onto it) may be created with a mode that lets others read it."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from lauks.brokerauth import BrokerAuth

ROOT = Path(__file__).resolve().parents[2]
SECRET_NAMES = {".env", "passwd", "acl", "users.json", "config.json", ".lock"}
CREATE = re.compile(r'open(?:at)?\((?:AT_FDCWD, )?"(?P<path>[^"]+)", (?P<flags>[A-Z_|]+), (?P<mode>0\d+)\) = \d+')
TEMPORARY = re.compile(r"^\.(?P<name>.+)\.[^.]+\.tmp$")  # lauks.privatefile's mkstemp names


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def is_secret(name: str) -> bool:
    found = TEMPORARY.match(name)
    name = found.group("name") if found else name
    return name in SECRET_NAMES or name.endswith((".password", ".key"))


def lauks(*args: str, cwd: Path, trace: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LAUKS_STATE_DIR=str(cwd / "state"), PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "stack", *args]
    if trace is not None:
        command = ["strace", "-f", "-qq", "-e", "trace=open,openat,creat", "-e", "signal=none", "-o", str(trace),
                   *command]
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result


def secrets_created_readable_by_others(trace: Path, under: Path) -> list[str]:
    """Secret files that were created with group or other bits in their mode (the umask aside)."""
    found = []
    for line in trace.read_text().splitlines():
        match = CREATE.search(line)
        if not match or "O_CREAT" not in match["flags"]:
            continue
        path = Path(match["path"]) if match["path"].startswith("/") else under / match["path"]
        if is_secret(path.name) and int(match["mode"], 8) & 0o077 and str(under) in str(path.resolve()):
            found.append(f"{path} created with mode {match['mode']}")
    return found


@pytest.fixture
def strace(tmp_path: Path) -> None:
    if not shutil.which("strace"):
        pytest.skip("strace is not installed (apt-get install strace): cannot watch how files are created")
    probe = subprocess.run(["strace", "-qq", "-o", str(tmp_path / "probe"), "true"], capture_output=True, text=True,
                           check=False)
    if probe.returncode != 0:
        pytest.skip(f"strace cannot trace here: {probe.stderr.strip()}")


def test_deploy_init_creates_env_broker_users_and_keys_owner_only_from_the_first_byte(tmp_path: Path,
                                                                                        strace: None) -> None:
    trace = tmp_path / "trace"
    lauks("deploy", "init", "--host", "127.0.0.1", "--env-file", ".env", "--state-dir", "state", cwd=tmp_path,
          trace=trace)
    assert secrets_created_readable_by_others(trace, tmp_path) == []
    state = tmp_path / "state"
    auth = BrokerAuth(state)
    for secret in (tmp_path / ".env", auth.password_file, auth.acl_file, auth.registry_file,
                   *auth.dir.glob("*.password"), state / "tls" / "ca.key", state / "tls" / "broker.key"):
        assert mode(secret) == 0o600, f"{secret} is {mode(secret):o}"
    assert len(list(auth.dir.glob("*.password"))) == 3
    for folder in (state, auth.dir, state / "tls"):
        assert mode(folder) == 0o700, f"{folder} is {mode(folder):o}"
    assert [p.name for p in tmp_path.glob(".*.tmp")] == []  # nothing half-written left behind


def test_kit_add_writes_the_kits_config_owner_only_from_the_first_byte(tmp_path: Path, strace: None) -> None:
    trace = tmp_path / "trace"
    lauks("kit", "add", "riga-3", "k07", "--type", "weather", cwd=tmp_path, trace=trace)
    assert secrets_created_readable_by_others(trace, tmp_path) == []
    config = tmp_path / "kits" / "riga-3" / "k07" / "config.json"
    assert mode(config) == 0o600 and mode(config.parent) == 0o700


def test_files_an_older_version_left_readable_are_tightened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stack.cli import main

    state, env_file, kit_dir = tmp_path / "state", tmp_path / ".env", tmp_path / "kits" / "k1"
    monkeypatch.setenv("LAUKS_STATE_DIR", str(state))
    init = ["deploy", "init", "--host", "127.0.0.1", "--env-file", str(env_file), "--state-dir", str(state)]
    add = ["kit", "add", "s", "k1", "--type", "weather", "--out-dir", str(kit_dir)]
    assert main(init) == 0 and main(add) == 0
    auth = BrokerAuth(state)
    loose = [env_file, kit_dir / "config.json", auth.password_file, auth.acl_file, auth.registry_file,
             *auth.dir.glob("*.password")]
    for path in loose:
        path.chmod(0o644)
    for folder in (auth.dir, state / "tls"):
        folder.chmod(0o755)
    kit_dir.chmod(0o755)  # named with --out-dir: its mode is the person's choice, only the file is tightened

    assert main([*add, "--force"]) == 0  # any change to the broker's users tightens all of their files
    assert main([*init, "--force"]) == 0
    for path in loose:
        assert mode(path) == 0o600, f"{path} is still {mode(path):o}"
    for folder in (auth.dir, state / "tls"):
        assert mode(folder) == 0o700, f"{folder} is still {mode(folder):o}"
    assert mode(kit_dir) == 0o755
