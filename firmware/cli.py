"""``lauks kit add|flash|simulate|configure``: the firmware's commands."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from lauks.brokerauth import STAFF_USER, BrokerAuth
from lauks.settings import Settings
from lauks.stack import read_running_stack


def register(commands: argparse._SubParsersAction[Any], kit_commands: argparse._SubParsersAction[Any]) -> None:
    """Add this part's subcommands to ``lauks`` and to ``lauks kit``."""
    add = kit_commands.add_parser("add", help="write a new kit's config.json (and its broker password)")
    add.add_argument("site")
    add.add_argument("kit")
    add.add_argument("--type", dest="kit_type", required=True, choices=["weather", "environment"])
    add.add_argument("--out-dir", type=Path, help="where to write config.json (default ./kits/<site>/<kit>/)")
    add.add_argument("--wifi", action="append", default=[], metavar="SSID:PASSWORD",
                     help="a Wi-Fi network, tried in the order given (repeat for several)")
    add.add_argument("--broker-host", help="the broker as the kit reaches it (default LAUKS_MQTT_HOST)")
    add.add_argument("--broker-port", type=int, help="default LAUKS_MQTT_PORT")
    add.add_argument("--tls", action="store_true", help="the kit connects with TLS")
    add.add_argument("--interval", type=int, default=60, help="seconds between samples (10..86400)")
    add.add_argument("--force", action="store_true", help="replace an existing config.json")
    add.add_argument("--no-register", dest="register", action="store_false",
                     help="leave the metadata store alone: on a school server the API's store is in its container, "
                          "where 'docker compose exec api lauks kit register' records the kit (docs/deploy.md)")
    add.set_defaults(func=_add)

    flash = kit_commands.add_parser("flash", help="copy the firmware and a kit's config.json onto an ESP32")
    flash.add_argument("--port", required=True, help="the kit's serial port, e.g. /dev/ttyUSB0")
    flash.add_argument("--config", type=Path, help="the kit's config.json (default: the only one under ./kits)")
    flash.add_argument("--mip", action="append", default=[], help="also install this micropython-lib package")
    flash.add_argument("--ca", type=Path, help="the school's CA certificate, for a kit that uses TLS "
                       "(lauks tls init writes it to <state dir>/tls/ca.crt)")
    flash.add_argument("--dry-run", action="store_true", help="print the mpremote commands, run nothing")
    flash.set_defaults(func=_flash)

    sim = kit_commands.add_parser("simulate", help="run simulated kits (the real firmware) against the broker")
    sim.add_argument("--kits", type=int, default=3, help="how many kits (ignored with --config-dir)")
    sim.add_argument("--config-dir", type=Path, help="simulate the kits whose config.json files are under DIR")
    sim.add_argument("--site", default="demo")
    sim.add_argument("--interval", type=int, default=60, help="seconds between samples of the generated kits")
    sim.add_argument("--speedup", type=float, default=1.0, help="world seconds per real second")
    sim.add_argument("--start-ago", type=float, default=None,
                     help="world clock starts this many seconds in the past (default: enough for --duration)")
    sim.add_argument("--duration", type=float, default=None, help="stop after this many real seconds")
    sim.add_argument("--state-dir", type=Path, help="the kits' flash (default $LAUKS_STATE_DIR/sim-kits)")
    sim.add_argument("--wifi-drop", metavar="AT:FOR", help="Wi-Fi outage at AT world seconds, FOR seconds long")
    sim.add_argument("--reboot-at", type=float, help="power loss at this many world seconds")
    sim.add_argument("--no-ntp", action="store_true", help="the clock is never set (samples carry 'age')")
    sim.add_argument("--dead-sensor", metavar="NAME[:AT]", help="sensor NAME stops answering at AT world seconds")
    sim.add_argument("--quiet", action="store_true", help="no log lines from the kits")
    sim.set_defaults(func=_simulate)

    conf = kit_commands.add_parser("configure", help="publish a kit's settings (retained) without reflashing")
    conf.add_argument("site")
    conf.add_argument("kit")
    conf.add_argument("--interval", type=int, required=True, help="seconds between samples (10..86400)")
    conf.set_defaults(func=_configure)


def _fail(message: str) -> int:
    print(f"lauks kit: {message}", file=sys.stderr)
    return 2


def _add(args: argparse.Namespace) -> int:
    from firmware.tools import ToolError, add_kit, lan_address, loopback_warning

    settings = Settings()  # beside `lauks up`, its broker port and state (stack/cli.py follows .lauks/stack.env)
    wifi = []
    for item in args.wifi:
        ssid, sep, password = item.partition(":")
        if not ssid or not sep:
            return _fail(f"--wifi {item!r}: write it as SSID:PASSWORD")
        wifi.append((ssid, password))
    host = args.broker_host or settings.mqtt_host
    try:
        path = add_kit(args.site, args.kit, args.kit_type, args.out_dir, settings.state_dir,
                       host, args.broker_port or settings.mqtt_port, wifi, args.interval, args.tls, args.force,
                       register=args.register)
    except ToolError as e:
        return _fail(str(e))
    # a real kit: simulated ones are written by `lauks up`
    warning = loopback_warning(host, lan_address(), read_running_stack(settings.state_dir) is not None)
    if warning:
        print(f"lauks kit: {warning}", file=sys.stderr)
    if args.register:
        print(f"wrote {path}; kit {args.site}/{args.kit} registered (.venv/bin/lauks kit edit adds its location)")
    else:
        print(f"wrote {path}; the broker knows kit {args.site}/{args.kit}. Record it in the API's store: "
              f"docker compose exec api lauks kit register {args.site} {args.kit} --type {args.kit_type}")
    if not wifi:
        print("  it lists a placeholder Wi-Fi network: edit 'wifi' in it, or run again with --wifi SSID:PASSWORD")
    print(f"  next: .venv/bin/lauks kit flash --port /dev/ttyUSB0 --config {path}")
    return 0


def _flash(args: argparse.Namespace) -> int:
    from firmware.tools import ToolError, flash

    config = args.config
    if config is None:
        found = sorted(Path("kits").glob("*/*/config.json"))
        if len(found) != 1:
            return _fail("say which kit with --config kits/<site>/<kit>/config.json"
                         + (f" (found {len(found)})" if found else " (none under ./kits: run 'lauks kit add')"))
        config = found[0]
    try:
        plan = flash(args.port, config, args.mip, args.dry_run, ca=args.ca)
    except ToolError as e:
        return _fail(str(e))
    if args.dry_run:
        print(plan.describe())
    else:
        print(f"flashed {config} onto {args.port}; the kit restarts and reports within a minute")
    return 0


def _simulate(args: argparse.Namespace) -> int:
    import json

    from firmware.kitconfig import kit_config
    from firmware.sim.board import Faults
    from firmware.sim.runner import SimKit, Simulation
    from lauks.privatefile import private_dir

    settings = Settings()
    faults = Faults(no_ntp=args.no_ntp, reboot_at=args.reboot_at)
    if args.wifi_drop:
        try:
            at, length = (float(x) for x in args.wifi_drop.split(":"))
        except ValueError:
            return _fail("--wifi-drop wants AT:FOR in seconds, e.g. 600:3600")
        faults.wifi_drop_at, faults.wifi_drop_for = at, length
    if args.dead_sensor:
        name, _, at_text = args.dead_sensor.partition(":")
        faults.dead_sensor, faults.dead_at = name, float(at_text or 0)
    # The kits' flash: each holds a copy of its config.json, with the kit's broker password.
    state = private_dir(args.state_dir or (settings.state_dir / "sim-kits"), tighten_existing=not args.state_dir)
    kits: list[SimKit] = []
    if args.config_dir:
        for n, path in enumerate(sorted(args.config_dir.rglob("config.json"))):
            cfg = json.loads(path.read_text())
            kits.append(SimKit(state / f"{cfg['site']}-{cfg['kit']}", cfg, faults, seed=n))
        if not kits:
            return _fail(f"no config.json under {args.config_dir}")
    else:
        if not 1 <= args.kits <= 500:
            return _fail("--kits must be 1 to 500")
        username = settings.mqtt_username
        password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
        if not username and BrokerAuth(settings.state_dir).registry_file.exists():
            return _fail(f"the broker of {settings.state_dir} has a user per kit and refuses kits without one: "
                         f"simulate kits added with 'lauks kit add' with --config-dir (`lauks up` writes its own "
                         f"under {settings.state_dir / 'kits'})")
        if username and args.kits > 1:
            return _fail(f"{args.kits} kits cannot share the broker user {username}: the broker keeps one session "
                         "per user, so they would knock each other off. Give each kit its own user with "
                         "'lauks kit add' and simulate them with --config-dir")
        for n in range(1, args.kits + 1):
            name = f"sim{n:02d}"
            cfg = kit_config(args.site, name, "weather" if n % 2 else "environment", settings.mqtt_host,
                             settings.mqtt_port, username, password, args.interval)
            kits.append(SimKit(state / f"{args.site}-{name}", cfg, faults, seed=n))
    start_ago = args.start_ago
    if start_ago is None:
        start_ago = (args.duration or 3600) * (args.speedup - 1) if args.speedup > 1 else 0.0
    sim = Simulation(kits, (settings.mqtt_host, settings.mqtt_port), settings.topic_root, args.speedup, start_ago,
                     args.quiet)
    from lauks.services import event_on_signals

    done = event_on_signals()  # SIGTERM or SIGINT (lauks.services says why not a handler that sets it)
    print(f"simulating {len(kits)} kit(s) against {settings.mqtt_host}:{settings.mqtt_port} "
          f"(speed-up {args.speedup:g}, flash under {state})", flush=True)
    sim.start()
    deadline = time.monotonic() + args.duration if args.duration else None
    while not done.is_set() and (deadline is None or time.monotonic() < deadline):
        done.wait(0.2)
        if all(not t.is_alive() for t in sim.threads):
            break
    sim.shutdown()
    crashed = [k for k in kits if k.error is not None]
    for k in crashed:
        print(f"kit {k.config['site']}/{k.config['kit']} crashed: {k.error!r}", file=sys.stderr)
    return 1 if crashed else 0


def _configure(args: argparse.Namespace) -> int:
    from firmware.tools import ToolError, configure

    settings = Settings()
    username = settings.mqtt_username
    password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
    try:
        if username is None:  # a staff tool: staff's broker user where the state holds the broker's users
            auth = BrokerAuth(settings.state_dir)
            if auth.service_password_file(STAFF_USER).exists():
                username, password = STAFF_USER, auth.service_password(STAFF_USER)
        topic = configure(args.site, args.kit, args.interval, settings.mqtt_host, settings.mqtt_port,
                          settings.topics, username, password)
    except (ToolError, ValueError) as e:
        return _fail(str(e))
    print(f"published interval {args.interval} s on {topic} (retained); the kit applies it when it next listens")
    return 0


