"""Host tools for people: write a kit's config.json, flash a kit, publish a kit's settings."""

from __future__ import annotations

import ipaddress
import json
import shlex
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firmware.device_path import DEVICE_DIR, device_files
from firmware.kitconfig import KIT_TYPES, kit_config
from lauks import brokerauth, fleet
from lauks.contract import KitConfig
from lauks.fleet import FleetError
from lauks.privatefile import private_dir, write_private
from lauks.settings import Settings
from lauks.topics import Topics, id_problem
from metastore.registry import register_kit


class ToolError(Exception):
    """A problem the person at the keyboard can fix; the message says how."""


def broker_username(site: str, kit: str) -> str:
    return f"{site}.{kit}"  # the user lauks.brokerauth creates for a kit


def add_kit(site: str, kit: str, kit_type: str, out_dir: Path | None, state_dir: Path, host: str, port: int,
            wifi: list[tuple[str, str]], interval_s: int = 60, tls: bool = False, force: bool = False,
            *, register: bool = True) -> Path:
    """Write kits/<site>/<kit>/config.json (with the kit's broker password when per-kit users exist); with
    ``register``, record the kit in the metadata store of ``state_dir`` too."""
    for what, value in (("site", site), ("kit", kit)):
        problem = id_problem(what, value)
        if problem:
            raise ToolError(problem)
    if kit_type not in KIT_TYPES:
        raise ToolError(f"kit type {kit_type!r} is not known: use weather or environment")
    folder = out_dir if out_dir is not None else Path("kits") / site / kit
    path = folder / "config.json"
    if path.exists() and not force:
        raise ToolError(f"{path} already exists: pass --force to replace it (the kit then needs flashing again)")
    try:  # before the broker user: a refused key must leave everything as it was
        master = fleet.settings_master_key(Settings(state_dir=state_dir))
    except FleetError as error:
        raise ToolError(str(error)) from None
    password = brokerauth.add_kit_credentials(state_dir, site, kit)
    username = broker_username(site, kit)
    cfg = kit_config(site, kit, kit_type, host, port, username, password, interval_s, tls=tls, wifi=wifi)
    # the kit's own key for its update offers (lauks.fleet): it refuses every offer without one
    cfg["update_key"] = fleet.kit_update_key(master, site, kit).hex()
    # it holds the kit's broker password: created 0600, never readable by others, in a folder made 0700
    # (one given with --out-dir that exists already keeps its mode)
    private_dir(folder, tighten_existing=out_dir is None)
    write_private(path, json.dumps(cfg, indent=2) + "\n")
    if register:  # so the API and `lauks kit list` know the kit at once
        register_kit(site, kit, kit_type, state_dir=state_dir)
    return path


def is_loopback(host: str) -> bool:
    """Whether ``host`` names the machine it is used on: on a kit, the kit itself."""
    if host.lower().rstrip(".") in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def lan_address() -> str | None:
    """This machine's address on its network (the interface of its default route), or None without one.
    Connecting a UDP socket sends nothing; it only makes the kernel choose the interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 1883))  # TEST-NET-1: never reached, only routed
            address = str(sock.getsockname()[0])
        except OSError:
            return None
    return None if is_loopback(address) or address == "0.0.0.0" else address


def loopback_warning(host: str, lan: str | None, beside_local_stack: bool = False) -> str | None:
    """The warning for a real kit given a loopback broker host, naming ``lan`` (this machine's LAN address)."""
    if not is_loopback(host):
        return None
    instead = (f"this machine is {lan} on its network: pass --broker-host {lan} (or its name)" if lan else
               "pass --broker-host with this machine's address on the kits' network (`ip -4 addr` shows it)")
    warning = (f"warning: the kit will look for the broker at {host}, which on the kit is the kit itself, so it "
               f"will never connect; {instead}, then add the kit again with --force")
    if beside_local_stack:  # lauks.services.Mosquitto listens on loopback only, on purpose
        warning += (". The broker of `lauks up` listens on this machine's loopback only: a real kit needs a "
                    "school server's (docs/deploy.md)")
    return warning


def mpremote_program() -> str:
    """mpremote from this interpreter's environment (installed with Lauks), else from PATH."""
    beside = Path(sys.executable).parent / "mpremote"  # the venv's bin, whether or not it is on PATH
    if beside.is_file():
        return str(beside)
    found = shutil.which("mpremote")
    if found is None:
        raise ToolError("mpremote is not installed: run `make deps` (it installs Lauks and mpremote into .venv)")
    return found


@dataclass(frozen=True)
class FlashPlan:
    commands: list[list[str]]

    def describe(self) -> str:
        return "\n".join(shlex.join(c) for c in self.commands)


def flash_plan(port: str, config: Path, mip: list[str], mpremote: str | None = None,
               ca: Path | None = None) -> FlashPlan:
    """The mpremote commands that put the firmware and the kit's config.json onto an ESP32."""
    if not config.is_file():
        raise ToolError(f"no config at {config}: write one with 'lauks kit add <site> <kit> --type ...'")
    base = [mpremote or mpremote_program(), "connect", port]
    commands: list[list[str]] = []
    folders = sorted({p.parent.relative_to(DEVICE_DIR) for p in device_files()} - {Path(".")})
    for folder in folders:
        commands.append([*base, "fs", "mkdir", f":{folder.as_posix()}"])
    for file in device_files():
        commands.append([*base, "fs", "cp", str(file), f":{file.relative_to(DEVICE_DIR).as_posix()}"])
    commands.append([*base, "fs", "cp", str(config), ":config.json"])
    if ca is not None:  # the school's CA, which a TLS kit verifies the broker against (board_esp32 reads /ca.pem)
        commands.append([*base, "fs", "cp", str(ca), ":ca.pem"])
    for package in mip:
        commands.append([*base, "mip", "install", package])
    commands.append([*base, "reset"])
    return FlashPlan(commands)


def check_config(config: Path) -> list[str]:
    """The firmware's own checks of a config.json (the same code runs on the kit)."""
    from firmware.device_path import use_device_code

    use_device_code()
    from lauks_kit.core.config import problems

    try:
        data: Any = json.loads(config.read_text())
    except (OSError, ValueError) as e:
        return [f"{config} cannot be read as JSON: {e}"]
    return list(problems(data))


def flash(port: str, config: Path, mip: list[str], dry_run: bool = False, ca: Path | None = None) -> FlashPlan:
    if not config.is_file():
        raise ToolError(f"no config at {config}: write one with 'lauks kit add <site> <kit> --type ...'")
    found = check_config(config)
    if found:
        raise ToolError(f"{config} would not start the kit: " + "; ".join(found))
    uses_tls = bool(json.loads(config.read_text()).get("broker", {}).get("tls"))
    if uses_tls and ca is None:
        raise ToolError(f"{config} connects with TLS, so the kit needs the school's CA: "
                        "add --ca <state dir>/tls/ca.crt (made by 'lauks tls init')")
    if ca is not None and not ca.is_file():
        raise ToolError(f"no CA certificate at {ca}: run 'lauks tls init' first")
    plan = flash_plan(port, config, mip, ca=ca)
    if dry_run:
        return plan
    for command in plan.commands:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0 and not (command[3:5] == ["fs", "mkdir"] and "EEXIST" in result.stderr):
            raise ToolError(f"'{shlex.join(command)}' failed: {result.stderr.strip() or result.stdout.strip()}"
                            " (is the kit plugged in, and is the port right?)")
    return plan


def configure_payload(interval_s: int) -> bytes:
    """The retained config message; ValueError if the interval is outside 10 s .. 1 day."""
    return KitConfig(interval_s=interval_s).model_dump_json().encode()


def configure(site: str, kit: str, interval_s: int, host: str, port: int, topics: Topics,
              username: str | None = None, password: str | None = None, timeout_s: float = 10.0) -> str:
    """Publish the kit's retained config and wait for the broker's PUBACK; returns the topic."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    try:
        payload = configure_payload(interval_s)
    except ValueError:
        raise ToolError(f"interval {interval_s} s is not allowed: use 10 to 86400 seconds") from None
    topic = topics.config(site, kit)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"lauks-configure-{site}-{kit}")
    if username:
        client.username_pw_set(username, password)
    try:
        client.connect(host, port, keepalive=30)
    except OSError as e:
        raise ToolError(f"cannot reach the broker at {host}:{port}: {e}") from None
    client.loop_start()
    try:
        info = client.publish(topic, payload, qos=1, retain=True)
        info.wait_for_publish(timeout_s)
        if not info.is_published():
            raise ToolError(f"the broker at {host}:{port} did not confirm the config (check user and ACL)")
    finally:
        client.disconnect()
        client.loop_stop()
    return topic
