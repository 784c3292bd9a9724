"""The local stack's description: the ports and settings ``lauks up`` chose, in ``<state dir>/stack.env``.

``lauks up`` (stack/up.py) writes the file when it starts and removes it when it stops; every other
command run beside it reads it, so ``lauks kit add`` writes the broker port the stack really uses
and ``lauks kit simulate`` talks to the stack's broker, not to whatever else listens on 1883.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path

from lauks.services import free_port, port_is_free

STACK_ENV = "stack.env"
DEFAULT_STATE_DIR = Path(".lauks")  # Settings.state_dir's default, where `make run` keeps the stack
_PID_PREFIX = "# pid "


@dataclass(frozen=True)
class StackPorts:
    mqtt: int
    influx: int
    api: int
    gateway_http: int


def _pick(preferred: int) -> int:
    return preferred if port_is_free(preferred) else free_port()


def choose_ports() -> StackPorts:
    """The usual ports where they are free, any free loopback port where they are not."""
    return StackPorts(
        mqtt=_pick(int(os.environ.get("LAUKS_UP_MQTT_PORT", 1883))),
        influx=_pick(int(os.environ.get("LAUKS_UP_INFLUX_PORT", 8086))),
        api=_pick(int(os.environ.get("LAUKS_UP_API_PORT", 8000))),
        gateway_http=_pick(int(os.environ.get("LAUKS_UP_GATEWAY_PORT", 9108))),
    )


def stack_env(state_dir: Path, ports: StackPorts) -> dict[str, str]:
    """The environment every service of the stack gets: where the broker and the store are."""
    return {
        "LAUKS_ENVIRONMENT": "development",
        "LAUKS_STATE_DIR": str(state_dir.resolve()),
        "LAUKS_MQTT_HOST": "127.0.0.1",
        "LAUKS_MQTT_PORT": str(ports.mqtt),
        "LAUKS_INFLUX_URL": f"http://127.0.0.1:{ports.influx}",
        "LAUKS_INFLUX_DATABASE": "lauks",
        "LAUKS_API_PORT": str(ports.api),
        "LAUKS_GATEWAY_HTTP_PORT": str(ports.gateway_http),
    }


def write_stack_env(state_dir: Path, values: dict[str, str], pid: int) -> Path:
    """``stack.env``: the values as KEY=VALUE lines (a shell can source it), and the pid of ``lauks up``."""
    path = state_dir / STACK_ENV
    lines = ["# written by `lauks up`, removed when it stops; other lauks commands run beside it read it\n",
             f"{_PID_PREFIX}{pid}\n", *(f"{key}={value}\n" for key, value in values.items())]
    path.write_text("".join(lines))
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def read_running_stack(state_dir: Path) -> dict[str, str] | None:
    """The settings of the stack whose ``stack.env`` is in ``state_dir``, if its ``lauks up`` still runs;
    None when there is no file, or it was left by one that was killed."""
    try:
        text = (state_dir / STACK_ENV).read_text()
    except OSError:
        return None
    values: dict[str, str] = {}
    pid = None
    for line in text.splitlines():
        if line.startswith(_PID_PREFIX) and line[len(_PID_PREFIX):].strip().isdigit():
            pid = int(line[len(_PID_PREFIX):])
        elif line.strip() and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    if pid is None or not _alive(pid):
        return None
    return values


def follow_running_stack(environ: MutableMapping[str, str]) -> dict[str, str]:
    """Fill in from the running stack's ``stack.env`` (under ``$LAUKS_STATE_DIR``, or ./.lauks) every setting
    the environment does not set itself; what was filled in."""
    state_dir = Path(environ.get("LAUKS_STATE_DIR") or DEFAULT_STATE_DIR)
    values = read_running_stack(state_dir) or {}
    added = {key: value for key, value in values.items() if key not in environ}
    environ.update(added)
    return added
