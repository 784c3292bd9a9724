"""``lauks up``: the whole stack on this machine, for development and for a first look.

Mosquitto and InfluxDB with their state under ./.lauks/, then every Lauks service that exists
(gateway, API, simulated kits) as child processes. Ctrl-C or SIGTERM stops all of them; children
are also told by the kernel to stop if this process dies, so nothing is left behind. While it runs,
``<state dir>/stack.env`` (lauks/stack.py) tells every other ``lauks`` command where the stack is.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from firmware.tools import add_kit
from lauks import brokerauth, fleet
from lauks.influx import InfluxClient
from lauks.privatefile import private_dir, write_private
from lauks.services import Child, Influxd, Mosquitto, stop_on_signals
from lauks.stack import STACK_ENV, StackPorts, choose_ports, stack_env, write_stack_env
from metastore import registry
from metastore.db import one_session
from metastore.registry import register_kit
from metastore.settings import StoreSettings

DEMO_SITE = "demo"
HAND_KIT = "k01"  # the kit whose credentials the banner prints, for publishing by hand
SERVICE_USERS = {"gateway": brokerauth.GATEWAY_USER, "api": brokerauth.API_USER}
LAUKS_COMMAND = [sys.executable, "-m", "stack"]  # the `lauks` command, run by this interpreter


def service_commands(available: set[str], kits: int, kit_config_dir: Path | None = None) -> list[tuple[str, list[str]]]:
    """The Lauks services to start, those whose commands exist in this build. With ``kit_config_dir``
    the simulated kits are the ones whose config.json (with their own broker password) is there."""
    me = LAUKS_COMMAND
    simulate = ["--config-dir", str(kit_config_dir)] if kit_config_dir else ["--kits", str(kits)]
    wanted = [
        ("gateway", "gateway", [*me, "gateway"]),
        ("api", "api", [*me, "api"]),
        ("kits", "kit simulate", [*me, "kit", "simulate", *simulate]),
        ("alerts", "alerts", [*me, "alerts", "run"]),
    ]
    return [(name, argv) for name, command, argv in wanted if command in available]
@dataclass(frozen=True)
class StackUsers:
    """The broker users of the local stack: the same per-kit and per-service users as production."""

    auth: brokerauth.BrokerAuth
    services: dict[str, str]  # username -> password
    hand_kit_password: str
    kit_config_dir: Path | None  # the simulated kits' config.json files, None when no kit is simulated


def _write_kit_configs(auth: brokerauth.BrokerAuth, ports: StackPorts, kits: int) -> Path:
    """config.json per simulated kit, written by the same code as ``lauks kit add`` (new passwords)."""
    state_dir = auth.state_dir
    folder = private_dir(state_dir / "kits")  # every config.json in it holds a kit's password
    for old in folder.rglob("config.json"):
        old.unlink()
    for site, kit in auth.kits():  # the previous run's simulated kits
        if site == DEMO_SITE and kit.startswith("sim"):
            auth.revoke_kit(site, kit)
    for n in range(1, kits + 1):
        add_kit(DEMO_SITE, f"sim{n:02d}", "weather" if n % 2 else "environment",
                folder / DEMO_SITE / f"sim{n:02d}", state_dir, "127.0.0.1", ports.mqtt, [], 60, False, True)
    return folder


def prepare_users(state_dir: Path, ports: StackPorts, kits: int) -> StackUsers:
    auth = brokerauth.BrokerAuth(state_dir, root=os.environ.get("LAUKS_TOPIC_ROOT", "lauks"))
    services = auth.ensure_service_users()
    fleet.master_key(state_dir, create=True)  # the over-the-air update master key: kits' update keys derive from it
    hand = auth.add_kit(DEMO_SITE, HAND_KIT)
    write_private(state_dir / f"{DEMO_SITE}.{HAND_KIT}.password", hand + "\n")
    register_kit(DEMO_SITE, HAND_KIT, "weather", state_dir=state_dir)  # so the API knows the hand kit
    return StackUsers(auth, services, hand, _write_kit_configs(auth, ports, kits) if kits > 0 else None)


STAFF_TOKEN_FILE = "staff.token"  # the local stack's staff token, for signing in to the web app


def prepare_web(state_dir: Path) -> str:
    """The demo site's title, place and zone (where none is set), so the home page has something on its map;
    and a staff token for this machine, made once, kept 0600 in <state_dir>/staff.token: the one to sign in with."""
    path = state_dir / STAFF_TOKEN_FILE
    with one_session(StoreSettings(state_dir=state_dir).database_url) as session:
        site = registry.get_site(session, DEMO_SITE)
        if site.latitude is None and site.title.strip() in ("", DEMO_SITE):  # as `kit add` made it
            registry.edit_site(session, DEMO_SITE, title="Demo school", latitude=56.9496, longitude=24.1052,
                               timezone="Europe/Riga",
                               description="Three simulated kits that report every minute, and k01, the kit you "
                                           "publish as by hand.")
        token = path.read_text().strip() if path.exists() else ""
        if not token or registry.staff_for(session, token) is None:
            token = registry.create_token(session, "lauks up (this machine)")
            write_private(path, token + "\n")
    return token


DEMO_CONTACT = "teacher@example.org"  # RFC 2606's: a name for examples, whose mail nobody receives


def prepare_alerts(state_dir: Path) -> None:
    """A contact for the demo site (where it has no alert settings yet), so the alerter of the local stack has
    somebody to write to: with no LAUKS_SMTP_HOST its mails are files in <state_dir>/mail (docs/alerts.md)."""
    from metastore.db import AlertSite

    with one_session(StoreSettings(state_dir=state_dir).database_url) as session:
        if session.get(AlertSite, DEMO_SITE) is None:
            session.add(AlertSite(site=DEMO_SITE, contacts=[{"email": DEMO_CONTACT, "language": "lv"}],
                                  digest=False, digest_at="08:00", holidays=[]))
            session.commit()


def service_env(name: str, base: dict[str, str], users: StackUsers) -> dict[str, str]:
    """A service's environment: the stack's, plus its own broker user."""
    env = dict(base)
    username = SERVICE_USERS.get(name)
    if username:
        env["LAUKS_MQTT_USERNAME"] = username
        env["LAUKS_MQTT_PASSWORD"] = users.services[username]
    return env


def _banner(ports: StackPorts, state_dir: Path, started: list[str], hand_kit_password: str = "",
            staff_token: str = "") -> str:
    mq, ix = ports.mqtt, ports.influx
    lines = ["", "Lauks is up. Ctrl-C stops everything."]
    if "api" in started:
        lines += [
            f"  web app       http://127.0.0.1:{ports.api}/   <- open this: sites, kits, live charts",
            f"                teachers: sign in at http://127.0.0.1:{ports.api}/signin with the staff token in "
            f"{state_dir}/{STAFF_TOKEN_FILE}",
            f"                ({staff_token}), then build a class dataset at /teach/new",
        ]
    lines += [
        f"  MQTT broker   127.0.0.1:{mq}",
        f"  InfluxDB      http://127.0.0.1:{ix}  (database 'lauks')",
    ]
    if "api" in started:
        lines.append(f"  API           http://127.0.0.1:{ports.api}/v1 (interactive docs at /docs)")
    if "gateway" in started:
        lines.append(f"  gateway       http://127.0.0.1:{ports.gateway_http}/metrics and /healthz")
    if "alerts" in started:
        smtp = os.environ.get("LAUKS_SMTP_HOST")
        lines.append(f"  alert mail    to {smtp} (LAUKS_SMTP_HOST)" if smtp else
                     f"  alert mail    written to {state_dir}/mail/*.eml (set LAUKS_SMTP_HOST to send it); "
                     f"contacts: lauks site alerts {DEMO_SITE}")
    lines += [
        f"  logs          {state_dir}/logs/",
        f"  settings      {state_dir}/{STACK_ENV}: lauks commands run beside the stack follow it",
        "",
        f"Publish a reading as kit {DEMO_SITE}/{HAND_KIT} (every kit has its own user; the password is also in "
        f"{state_dir}/{DEMO_SITE}.{HAND_KIT}.password):",
        f"  mosquitto_pub -h 127.0.0.1 -p {mq} -u {DEMO_SITE}.{HAND_KIT} -P {hand_kit_password} -q 1 "
        f"-t lauks/v1/{DEMO_SITE}/{HAND_KIT}/readings \\",
        "    -m '{\"v\":1,\"kit\":\"k01\",\"boot\":1,\"seq\":'$(date +%s)',\"samples\":[{\"age\":0,"
        "\"temperature\":21.5}]}'",
        "Query it:",
        f"  curl -s 'http://127.0.0.1:{ix}/query?db=lauks&pretty=true' "
        "--data-urlencode 'q=SELECT * FROM readings ORDER BY time DESC LIMIT 5'",
        "",
    ]
    return "\n".join(lines)


async def _create_database(url: str, name: str) -> None:
    async with InfluxClient(url) as client:
        await client.create_database(name)


def up(state_dir: Path, available: set[str], kits: int = 3) -> int:
    # it holds the broker's users, kits' passwords and the API's database; a folder named with --state-dir
    # that exists already keeps its mode (the secrets' own folders inside it are made private)
    private_dir(state_dir, tighten_existing=False)
    logs = state_dir / "logs"
    ports = choose_ports()
    env_values = stack_env(state_dir, ports)

    stopping = stop_on_signals()

    try:
        users = prepare_users(state_dir, ports, kits)
        staff_token = prepare_web(state_dir)
        prepare_alerts(state_dir)
    except brokerauth.BrokerAuthError as error:
        print(f"cannot set up the broker's users: {error}", file=sys.stderr)
        return 1
    broker = Mosquitto(state_dir / "mosquitto", ports.mqtt, password_file=users.auth.password_file,
                       acl_file=users.auth.acl_file)
    store = Influxd(state_dir / "influxdb", ports.influx)
    children: list[Child] = []
    try:
        print(f"starting Mosquitto on 127.0.0.1:{ports.mqtt} and InfluxDB on 127.0.0.1:{ports.influx} ...",
              flush=True)
        broker.start()
        store.start()
        asyncio.run(_create_database(store.url, "lauks"))
        write_stack_env(state_dir, env_values, os.getpid())  # removed again below, when the stack stops
        # on this machine the pages are open to anybody who can reach them (loopback), as a school's would be
        env = dict(os.environ, **env_values)
        env.setdefault("LAUKS_API_PUBLIC_READ", "true")
        for name, argv in service_commands(available, kits, users.kit_config_dir):
            if name == "kits" and kits <= 0:
                continue
            child = Child(name, argv, logs / f"{name}.log", env=service_env(name, env, users))
            child.start()
            children.append(child)
        print(_banner(ports, state_dir, [c.name for c in children], users.hand_kit_password, staff_token),
              flush=True)
        while not stopping.is_set():
            watched = [c for c in (broker.child, store.child) if c is not None] + children
            for child in watched:
                if not child.running:
                    print(f"{child.name} stopped unexpectedly; its log ends with:\n{child.log_tail()}",
                          file=sys.stderr, flush=True)
                    return 1
            stopping.wait(0.3)
        return 0
    finally:
        print("stopping ...", flush=True)
        for child in reversed(children):  # services first, so the gateway can flush into InfluxDB
            child.stop()
        store.stop()
        broker.stop()
        with contextlib.suppress(FileNotFoundError):  # no stack runs here any more: commands stop following it
            (state_dir / STACK_ENV).unlink()
        print("stopped.", flush=True)
