"""``lauks fleet release|update|status``: over-the-air updates for staff (issue 14; lauks/fleet.py does the work).

Every check runs before anything is written or published, so a refused command changes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lauks import fleet, influxql, schema
from lauks.brokerauth import STAFF_USER, BrokerAuth
from lauks.fleet import FleetError
from lauks.influx import InfluxError
from lauks.settings import Settings
from lauks.topics import id_problem

# firmware/device of this checkout, found by path: the foundation imports nothing of the packages above it
DEVICE_DIR = Path(__file__).resolve().parents[1] / "firmware" / "device"
LOOKBACK_DAYS = 30  # as the fleet page: a kit not heard from in 30 days shows no firmware


def register(commands: argparse._SubParsersAction[Any], kit_commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser("fleet", help="over-the-air updates: build a release, offer it to kits, follow them")
    sub = parser.add_subparsers(dest="fleet_command", metavar="FLEET_COMMAND")
    parser.set_defaults(func=lambda args: _usage(parser))

    release = sub.add_parser("release", help="build a release from firmware/device (files compiled with mpy-cross, "
                                             "a manifest with each file's size and SHA-256)")
    release.add_argument("--version", help="the release's version (default: VERSION in lauks_kit/__init__.py)")
    release.add_argument("--format", dest="fmt", choices=fleet.FORMATS, default="mpy",
                         help="mpy for real kits (default); py, the sources as they are, for simulated kits")
    release.add_argument("--source", type=Path, default=DEVICE_DIR, help="the firmware's device folder")
    release.set_defaults(func=_release)

    update = sub.add_parser("update", help="offer a release to a site's kits (retained on each kit's update topic)")
    update.add_argument("site")
    update.add_argument("kits", nargs="*", metavar="kit", help="the kits to offer it to (default: all of the site)")
    update.add_argument("--version", required=True, help="the release to offer (`lauks fleet release` built it)")
    update.add_argument("--percent", type=int, default=100,
                        help="a staged rollout: offer it to this share of the kits (1-100, rounded up; the same "
                             "kits every time for this version)")
    update.add_argument("--server", help="the API as kits reach it, e.g. http://10.0.0.5:8000 (default "
                                         "LAUKS_API_PUBLIC_URL, else this machine's API on LAUKS_API_PORT)")
    update.set_defaults(func=_update)

    withdraw = sub.add_parser("withdraw", help="withdraw the offers to a site's kits (an empty retained message)")
    withdraw.add_argument("site")
    withdraw.add_argument("kits", nargs="*", metavar="kit", help="the kits (default: all of the site)")
    withdraw.set_defaults(func=_withdraw)

    status = sub.add_parser("status", help="each kit's firmware, the version it was offered and how its update went")
    status.add_argument("site", nargs="?")
    status.set_defaults(func=_status)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _fail(message: str) -> int:
    print(f"lauks fleet: {message}", file=sys.stderr)
    return 2


def _releases(settings: Settings) -> Path:
    return settings.state_dir / fleet.RELEASES_DIR


# --- release ------------------------------------------------------------------------------------


def _release(args: argparse.Namespace) -> int:
    settings = Settings()
    started = time.perf_counter()
    try:
        version = args.version or fleet.source_version(args.source)
        folder = fleet.build_release(args.source, _releases(settings), version, args.fmt)
        manifest = fleet.verify_release(folder)
    except FleetError as error:
        return _fail(str(error))
    took = time.perf_counter() - started
    total = sum(int(entry["size"]) for entry in manifest["files"])
    print(f"built release {version} ({args.fmt}): {len(manifest['files'])} files, {total} bytes, in {took:.2f} s")
    print(f"  {folder}")
    print(f"offer it with: lauks fleet update <site> --version {version} [--percent 10]")
    return 0


# --- update and withdraw ------------------------------------------------------------------------


def site_kits(settings: Settings, site: str, named: list[str]) -> list[str]:
    """The named kits of ``site`` (or all of them), each one that has a broker user; ``FleetError`` otherwise."""
    problem = id_problem("site", site)
    if problem:
        raise FleetError(problem)
    known = sorted(kit for kit_site, kit in BrokerAuth(settings.state_dir).kits() if kit_site == site)
    if not known:
        raise FleetError(f"site {site} has no kits: add them with `lauks kit add {site} <kit> --type ...`")
    unknown = sorted(set(named) - set(known))
    if unknown:
        raise FleetError(f"site {site} has no kit {', '.join(unknown)}: its kits are {', '.join(known)}")
    return sorted(set(named)) if named else known


def server_url(settings: Settings, given: str | None) -> tuple[str, str | None]:
    """The API's address as kits reach it, and a warning when that is this machine's loopback."""
    local = f"http://127.0.0.1:{os.environ.get('LAUKS_API_PORT', '8000')}"  # the API of `lauks up`
    base = given or os.environ.get("LAUKS_API_PUBLIC_URL") or local
    parts = urlsplit(base)
    if parts.scheme != "http" or not parts.hostname:
        raise FleetError(f"--server {base!r} must be an http:// address of the API, e.g. http://10.0.0.5:8000 (kits "
                         "fetch over plain HTTP; the offer's HMAC and the manifest's SHA-256s keep the files honest)")
    warning = None
    host = parts.hostname
    loopback = host == "localhost"
    try:
        loopback = loopback or ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    if loopback:
        warning = (f"warning: kits will fetch from {host}, which on a real kit is the kit itself: only simulated kits "
                   "on this machine reach it; pass --server with the address kits reach the API at")
    return base.rstrip("/"), warning


def _broker_user(settings: Settings) -> tuple[str | None, str | None]:
    username = settings.mqtt_username
    password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
    if username is None:  # staff's own user, the one the ACL lets write update topics
        auth = BrokerAuth(settings.state_dir)
        if auth.service_password_file(STAFF_USER).exists():
            username, password = STAFF_USER, auth.service_password(STAFF_USER)
    return username, password


def publish_retained(settings: Settings, messages: list[tuple[str, bytes]], timeout_s: float = 10.0) -> None:
    """Publish each (topic, payload) retained at QoS 1 and wait for every PUBACK; ``FleetError`` if the broker
    cannot be reached or does not confirm them."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    username, password = _broker_user(settings)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"lauks-fleet-{os.getpid()}")
    if username:
        client.username_pw_set(username, password)
    if settings.mqtt_tls:
        client.tls_set(ca_certs=str(settings.mqtt_ca_file) if settings.mqtt_ca_file else None)
    try:
        client.connect(settings.mqtt_host, settings.mqtt_port, keepalive=30)
    except OSError as error:
        raise FleetError(f"cannot reach the broker at {settings.mqtt_host}:{settings.mqtt_port} ({error}); nothing "
                         "was published") from None
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=1, retain=True) for topic, payload in messages]
        deadline = time.monotonic() + timeout_s
        for info in infos:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
        if not all(info.is_published() for info in infos):
            raise FleetError(f"the broker at {settings.mqtt_host}:{settings.mqtt_port} did not confirm the offers "
                             "(is it the staff user's broker?)")
    finally:
        client.disconnect()
        client.loop_stop()


def _update(args: argparse.Namespace) -> int:
    settings = Settings()
    try:
        problem = fleet.version_problem(args.version) or fleet.percent_problem(args.percent)
        if problem:
            raise FleetError(problem)
        kits = site_kits(settings, args.site, args.kits)
        folder = fleet.release_dir(_releases(settings), args.version)
        fleet.verify_release(folder)  # a release altered on disk is refused before anything is published
        base, warning = server_url(settings, args.server)
        url = f"{base}/v1/firmware/{args.version}/"
        master = fleet.settings_master_key(settings, create=False)
        chosen = fleet.choose_kits(args.site, kits, args.version, args.percent)
        topics = settings.topics
        messages = [(topics.update(args.site, kit),
                     fleet.offer_payload(folder, args.version, url, fleet.kit_update_key(master, args.site, kit)))
                    for kit in chosen]
        if warning:
            print(warning, file=sys.stderr)
        publish_retained(settings, messages)
        fleet.record_offers(settings.state_dir, args.site, chosen, args.version)
    except FleetError as error:
        return _fail(str(error))
    print(f"offered {args.version} to {len(chosen)} of {len(kits)} kits of {args.site}: {', '.join(chosen)}")
    print(f"  from {url}; follow them with: lauks fleet status {args.site}")
    return 0


def _withdraw(args: argparse.Namespace) -> int:
    settings = Settings()
    try:
        kits = site_kits(settings, args.site, args.kits)
        publish_retained(settings, [(settings.topics.update(args.site, kit), b"") for kit in kits])
        fleet.record_offers(settings.state_dir, args.site, kits, None)
    except FleetError as error:
        return _fail(str(error))
    print(f"withdrew the offers to {len(kits)} kits of {args.site}; a kit already updating finishes what it began")
    return 0


# --- status -------------------------------------------------------------------------------------


def status_statements(site: str | None) -> str:
    """Each kit's last firmware and its last reported update, over the fleet page's 30 days."""
    where = f"time > now() - {LOOKBACK_DAYS}d"
    if site:
        where += f" AND {influxql.identifier(schema.SITE)} = {influxql.string(site)}"
    by = f"GROUP BY {influxql.identifier(schema.SITE)}, {influxql.identifier(schema.KIT)}"
    measurement = influxql.identifier(schema.KIT_STATUS)
    fw = f"SELECT last({influxql.identifier(schema.FW)}) FROM {measurement} WHERE {where} {by}"
    update = (f"SELECT last({influxql.identifier(schema.UPDATE_STATE)}), {influxql.identifier(schema.UPDATE_VERSION)}, "
              f"{influxql.identifier(schema.UPDATE_REASON)} FROM {measurement} WHERE {where} {by}")
    return f"{fw}; {update}"


async def kit_facts(settings: Settings, site: str | None) -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    async with settings.influx_client() as client:
        async for series in client.query(status_statements(site), database=settings.influx_database):
            if not series.values:
                continue
            key = (series.tags.get(schema.SITE, ""), series.tags.get(schema.KIT, ""))
            row = series.values[0]
            facts = found.setdefault(key, {})
            if series.statement_id == 0:
                facts["fw"] = row[1]
            else:
                facts.update(state=row[1], version=row[2], reason=row[3])
    return found


def status_rows(kits: list[tuple[str, str]], offers: dict[tuple[str, str], dict[str, Any]],
                facts: dict[tuple[str, str], dict[str, Any]]) -> list[list[str]]:
    rows = []
    for key in sorted(set(kits) | set(offers) | set(facts)):
        offer, fact = offers.get(key, {}), facts.get(key, {})
        update = fact.get("state") or "-"
        if fact.get("state") and fact.get("version"):
            update = f"{fact['state']} ({fact['version']})"
        rows.append([key[0], key[1], fact.get("fw") or "-", offer.get("version") or "-", update,
                     fact.get("reason") or ""])
    return rows


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip()
             for row in [header, *rows]]
    return "\n".join(lines)


def _status(args: argparse.Namespace) -> int:
    settings = Settings()
    if args.site and id_problem("site", args.site):
        return _fail(str(id_problem("site", args.site)))
    try:
        kits = [k for k in BrokerAuth(settings.state_dir).kits() if not args.site or k[0] == args.site]
        offers = {k: o for k, o in fleet.last_offers(settings.state_dir).items() if not args.site or k[0] == args.site}
        facts = asyncio.run(kit_facts(settings, args.site))
    except FleetError as error:
        return _fail(str(error))
    except (InfluxError, OSError) as error:
        return _fail(f"cannot read the kits' status from InfluxDB at {settings.influx_url} ({error})")
    rows = status_rows(kits, offers, facts)
    if not rows:
        return _fail(f"no kits{' at site ' + args.site if args.site else ''}: add them with `lauks kit add`")
    print(table(["SITE", "KIT", "FW", "OFFERED", "UPDATE", "REASON"], rows))
    return 0
