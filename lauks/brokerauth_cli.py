"""Commands for the broker's users and certificates and the school server's first run:
``lauks kit revoke``, ``lauks broker users``, ``lauks tls init`` and ``lauks deploy init``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from lauks import brokerauth
from lauks.topics import id_problem


def default_state_dir() -> Path:
    return Path(os.environ.get("LAUKS_STATE_DIR", ".lauks"))


def _state_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", type=Path, default=None,
                        help="where the broker's users live (default: $LAUKS_STATE_DIR or .lauks; "
                             "deploy/state on a school server)")


def _state_dir(args: argparse.Namespace) -> Path:
    return Path(args.state_dir) if args.state_dir is not None else default_state_dir()


def register(commands: argparse._SubParsersAction[Any], kit_commands: argparse._SubParsersAction[Any]) -> None:
    revoke = kit_commands.add_parser("revoke", help="remove a kit's broker user; the broker reloads, no restart")
    revoke.add_argument("site")
    revoke.add_argument("kit")
    _state_dir_option(revoke)
    revoke.set_defaults(func=_revoke)

    broker = commands.add_parser("broker", help="the MQTT broker's users")
    broker_commands = broker.add_subparsers(dest="broker_command", metavar="BROKER_COMMAND")
    users = broker_commands.add_parser("users", help="list the broker's users and what each may do")
    _state_dir_option(users)
    users.set_defaults(func=_users)
    drop = broker_commands.add_parser(
        "drop-session", help="end a persistent session no client will resume (an old client id, a worker "
        "no longer run), so the broker stops queueing messages for it")
    drop.add_argument("client_id", help="the session's client id, as the broker's log shows it")
    drop.add_argument("--host", default=None, help="the broker (default LAUKS_MQTT_HOST)")
    drop.add_argument("--port", type=int, default=None, help="the broker's plain MQTT port (default LAUKS_MQTT_PORT)")
    _state_dir_option(drop)
    drop.set_defaults(func=_drop_session)
    broker.set_defaults(func=lambda args: _usage(broker))

    tls = commands.add_parser("tls", help="the school's own certificate authority for the broker's TLS listener")
    tls_commands = tls.add_subparsers(dest="tls_command", metavar="TLS_COMMAND")
    tls_init = tls_commands.add_parser(
        "init", help="make the school's CA (once) and issue the broker a certificate for the given names")
    tls_init.add_argument("--host", action="append", required=True, dest="hosts",
                          help="a name or IP address kits use to reach the broker (repeat for several)")
    tls_init.add_argument("--school", default="Lauks school", help="the organisation named in the certificates")
    _state_dir_option(tls_init)
    tls_init.set_defaults(func=_tls_init)
    tls.set_defaults(func=lambda args: _usage(tls))

    deploy = commands.add_parser("deploy", help="the school server (docker compose)")
    deploy_commands = deploy.add_subparsers(dest="deploy_command", metavar="DEPLOY_COMMAND")
    init = deploy_commands.add_parser(
        "init", help="first run: generate .env with random secrets, the broker's users and the TLS certificates")
    init.add_argument("--host", action="append", dest="hosts", default=None,
                      help="a name or IP address of the server that kits and browsers use (repeat for several)")
    init.add_argument("--env-file", type=Path, default=Path(".env"))
    init.add_argument("--state-dir", type=Path, default=Path("deploy/state"),
                      help="the host folder the containers share for broker users and certificates")
    init.add_argument("--force", action="store_true",
                      help="replace an existing .env: new service passwords; the update key, ports, web and SMTP "
                           "settings and lines someone added are kept")
    init.set_defaults(func=_deploy_init)
    deploy.set_defaults(func=lambda args: _usage(deploy))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _revoke(args: argparse.Namespace) -> int:
    for what, value in (("site", args.site), ("kit", args.kit)):
        problem = id_problem(what, value)
        if problem:
            print(problem, file=sys.stderr)
            return 2
    state_dir = _state_dir(args)
    auth = brokerauth.BrokerAuth(state_dir)
    if not auth.registry_file.exists():
        print(f"no broker users under {state_dir}: is this the right --state-dir?", file=sys.stderr)
        return 1
    if not auth.revoke_kit(args.site, args.kit):
        print(f"kit {args.site}/{args.kit} has no broker user under {state_dir}; nothing to revoke", file=sys.stderr)
        return 1
    reloaded = brokerauth.reload_broker(state_dir)
    print(f"revoked {args.site}/{args.kit}: user {brokerauth.kit_username(args.site, args.kit)} removed")
    if reloaded:
        print("the broker reloaded its users; the kit can no longer connect")
    else:
        print("no local broker found to reload: under docker compose the broker reloads by itself within a few "
              "seconds; otherwise send it SIGHUP (or restart it)")
    return 0


def _users(args: argparse.Namespace) -> int:
    auth = brokerauth.BrokerAuth(_state_dir(args))
    if not auth.registry_file.exists():
        print(f"no broker users under {auth.state_dir}", file=sys.stderr)
        return 1
    users = auth.users()
    for name, user in sorted(users.items()):
        if user["role"] == "kit":
            print(f"{name:32} kit {user['site']}/{user['kit']}")
        else:
            role = brokerauth.SERVICE_ROLES.get(name)
            kind = "no rights: made by `lauks broker drop-session`" if user["role"] == "session-reset" else "service"
            print(f"{name:32} {role.description if role else kind}")
    if brokerauth.GATEWAY_USER in users:
        workers = (f"{brokerauth.gateway_worker_username(brokerauth.GATEWAY_USER, 0)} .. "
                   f"-w{brokerauth.GATEWAY_WORKER_USERS - 1}")
        print(f"{workers:32} the gateway's workers (LAUKS_GATEWAY_WORKERS), with {brokerauth.GATEWAY_USER}'s "
              "password and rights")
    if brokerauth.STAFF_USER in users:
        print(f"{brokerauth.HEALTH_USER:32} the broker's health check: reads <root>/v1/healthcheck only, "
              f"with {brokerauth.STAFF_USER}'s password")
    return 0


def _drop_session(args: argparse.Namespace) -> int:
    """Log in as the session's client id with a clean session, which makes the broker discard it and
    what it queued. The broker uses usernames as client ids, so that takes a user of that name: the
    service user's own, or a temporary one without rights, removed again afterwards."""
    from lauks.settings import Settings

    settings = Settings()
    host, port = args.host or settings.mqtt_host, args.port or settings.mqtt_port
    state_dir = _state_dir(args)
    auth = brokerauth.BrokerAuth(state_dir)
    if not auth.registry_file.exists():
        print(f"no broker users under {state_dir}: is this the right --state-dir?", file=sys.stderr)
        return 1
    user = auth.users().get(args.client_id)
    if user and user["role"] == "kit":
        print(f"{args.client_id} is a kit: kits connect with a clean session, so the broker keeps none for them",
              file=sys.stderr)
        return 1
    if args.client_id in (brokerauth.GATEWAY_USER, brokerauth.API_USER):
        print(f"{args.client_id} is the session of a running service: ending it would discard what the broker "
              "holds for it", file=sys.stderr)
        return 1
    password = auth.password_of(args.client_id)
    temporary = password is None
    try:
        if temporary:
            password = auth.add_session_reset_user(args.client_id)
            brokerauth.reload_broker(state_dir)
        assert password is not None
        ended = _end_session(host, port, args.client_id, password)
    except (brokerauth.BrokerAuthError, OSError) as error:
        print(f"lauks broker drop-session: {error}", file=sys.stderr)
        return 1
    finally:
        if temporary:
            auth.remove_session_reset_user(args.client_id)
            brokerauth.reload_broker(state_dir)
    if ended is None:
        print(f"the broker at {host}:{port} did not let {args.client_id} log in within 20 s (it reloads its users "
              "within a few seconds; is this its --state-dir?)", file=sys.stderr)
        return 1
    print(f"session {args.client_id} ended: the broker had {'a' if ended else 'no'} session for it "
          "and keeps none now")
    return 0


def _end_session(host: str, port: int, client_id: str, password: str, timeout_s: float = 20.0) -> bool | None:
    """Connect as ``client_id`` with a clean session until the broker lets us in (it may still be
    reloading its users); whether it had a session for that id, None if it never let us in."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        # First without a clean session, only to learn whether there is one; then clean, which ends it.
        probe = _connect_once(host, port, client_id, password, clean=False)
        if probe is not None and _connect_once(host, port, client_id, password, clean=True) is not None:
            return probe
        time.sleep(0.3)
    return None


def _connect_once(host: str, port: int, client_id: str, password: str, *, clean: bool) -> bool | None:
    """One MQTT 3.1.1 connection: the CONNACK's session-present flag, or None if refused."""
    import socket
    import struct

    def text(value: str) -> bytes:
        raw = value.encode()
        return struct.pack(">H", len(raw)) + raw

    flags = 0xC0 | (0x02 if clean else 0)  # user name, password, clean session
    body = text("MQTT") + bytes([4, flags]) + struct.pack(">H", 30) + text(client_id) + text(client_id) + text(password)
    packet = bytes([0x10]) + _varint(len(body)) + body
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(packet)
        connack = _read_exactly(sock, 4)
        sock.sendall(b"\xe0\x00")  # DISCONNECT
    if connack[0] != 0x20 or connack[3] != 0:
        return None
    return bool(connack[2] & 0x01)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value % 128, value // 128
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_exactly(sock: Any, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise OSError("the broker closed the connection before its CONNACK")
        data += chunk
    return data


def _tls_init(args: argparse.Namespace) -> int:
    from lauks.tlsca import TlsError, init_school_ca, normalise_hosts

    tls_dir = _state_dir(args) / "tls"
    try:
        hosts = normalise_hosts(args.hosts)
        ca = init_school_ca(tls_dir, hosts, args.school)
    except TlsError as error:
        print(f"lauks tls init: {error}", file=sys.stderr)
        return 1
    print(f"CA certificate (copy onto every kit as ca.crt): {ca.ca_cert}")
    print(f"broker certificate for {', '.join(hosts)}: {ca.broker_cert}")
    print(f"keep {ca.ca_key} secret and backed up: losing it means re-flashing every kit with a new CA")
    return 0


def _deploy_init(args: argparse.Namespace) -> int:
    from lauks.deploy import DeployError, init_deployment

    try:
        written = init_deployment(args.env_file, args.state_dir, args.hosts or [], force=args.force)
    except DeployError as error:
        print(error, file=sys.stderr)
        return 1
    for line in written:
        print(line)
    return 0
