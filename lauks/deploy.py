"""First run of a school server: ``lauks deploy init`` writes ``.env`` with random secrets (no default
secret ships), the broker's service users, and the school's CA and broker certificate.

``docker-compose.yml`` reads every secret from ``.env``; the broker's users and certificates live in
the host folder ``deploy/state`` that the containers share, so ``lauks kit add`` on the server changes
the broker's users and the broker's container reloads them by itself. The over-the-air releases are built
there too (``deploy/state/releases``, which the API's container mounts read-only and serves to kits), beside
the update master key (``deploy/state/fleet``, which no container mounts: offers are made on the host).

``--force`` makes new random passwords for the services, and keeps what is not ours to make up or what kits
and people already hold: the update master key, the school's mail settings (alert mail), the ports and the
web app's address.
"""

from __future__ import annotations

import datetime
import os
import secrets
import socket
from collections.abc import Mapping
from pathlib import Path

from lauks.brokerauth import API_USER, GATEWAY_USER, STAFF_USER, BrokerAuth
from lauks.fleet import RELEASES_DIR, master_key, master_key_path
from lauks.privatefile import private_dir, write_private

# The secrets that .env must hold: docker-compose.yml refuses to start without each of them.
SECRET_NAMES = (
    "INFLUXDB_ADMIN_PASSWORD",  # InfluxDB's admin: backups, creating databases
    "INFLUXDB_GATEWAY_PASSWORD",  # InfluxDB user lauks_gateway: all rights on database lauks
    "INFLUXDB_READER_PASSWORD",  # InfluxDB user lauks_reader: reads lauks (the API and Grafana)
    "GRAFANA_ADMIN_PASSWORD",
    "LAUKS_GATEWAY_MQTT_PASSWORD",  # broker user lauks-gateway (and its workers' lauks-gateway-w<i>)
    "LAUKS_API_MQTT_PASSWORD",  # broker user lauks-api
    "LAUKS_STAFF_MQTT_PASSWORD",  # broker user lauks-staff (and lauks-health, the broker's own health check)
)
MQTT_SECRETS = {GATEWAY_USER: "LAUKS_GATEWAY_MQTT_PASSWORD", API_USER: "LAUKS_API_MQTT_PASSWORD",
                STAFF_USER: "LAUKS_STAFF_MQTT_PASSWORD"}

# Settings that are not secret, with their defaults; edit them in .env.
PORT_DEFAULTS = {"MQTT_PORT": "1883", "MQTT_TLS_PORT": "8883", "API_PORT": "8000", "GRAFANA_PORT": "3000"}
WEB_SETTINGS = ("LAUKS_API_PUBLIC_URL", "LAUKS_API_PUBLIC_READ", "LAUKS_API_MAP_TILES_URL")

# Alert mail (alerting/settings.py), written empty: the mail account is the school's, not ours to make up.
# docker-compose.yml starts the alerts service only with COMPOSE_PROFILES=alerts, left commented out for a
# person to switch on once LAUKS_SMTP_HOST names a server: without one the alerter refuses to start in
# production, and compose would restart it for ever.
SMTP_DEFAULTS = {"LAUKS_SMTP_HOST": "", "LAUKS_SMTP_PORT": "587", "LAUKS_SMTP_SECURITY": "starttls",
                 "LAUKS_SMTP_USERNAME": "", "LAUKS_SMTP_PASSWORD": "", "LAUKS_SMTP_FROM": ""}
PROFILES = "COMPOSE_PROFILES"
ALERTS_PROFILE = "alerts"

# Written from this run's arguments every time; the rest of an old .env that is not a generated secret is kept
FROM_ARGUMENTS = ("LAUKS_HOSTS", "LAUKS_STATE_HOST_DIR")


class DeployError(RuntimeError):
    pass


def random_secret() -> str:
    return secrets.token_urlsafe(24)


def parse_env(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def compose_path(path: Path) -> str:
    """A host path as docker compose needs it in a bind mount: a bare name would be a named volume."""
    text = str(path)
    return text if text.startswith(("/", ".")) else f"./{text}"


def alerts_on(values: Mapping[str, str]) -> bool:
    return ALERTS_PROFILE in values.get(PROFILES, "").replace(" ", "").split(",")


def render_env(hosts: list[str], state_dir: Path, secrets_by_name: dict[str, str],
               kept: Mapping[str, str] | None = None) -> str:
    """.env's text: ``kept`` holds an old .env's settings (``--force``), written in place of the defaults."""
    old = dict(kept or {})
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")

    def setting(name: str, default: str) -> str:
        return f"{name}={old.pop(name, default)}"

    web_defaults = {"LAUKS_API_PUBLIC_URL": f"http://{hosts[0] if hosts else 'localhost'}:{PORT_DEFAULTS['API_PORT']}",
                    "LAUKS_API_PUBLIC_READ": "false",
                    "LAUKS_API_MAP_TILES_URL": "https://tile.openstreetmap.org/{z}/{x}/{y}.png"}
    profile = setting(PROFILES, "") if PROFILES in old else f"# {PROFILES}={ALERTS_PROFILE}"
    lines = [
        f"# Written by `lauks deploy init` on {now}. It holds this server's secrets: keep it private",
        "# (mode 0600) and back it up together with deploy/state/. Never commit it.",
        "",
        "# The names kits and browsers use to reach this server (the broker's certificate is made for them).",
        f"LAUKS_HOSTS={','.join(hosts)}",
        "# The host folder with the broker's users, the TLS certificates, the update master key and the",
        "# over-the-air releases (relative to docker-compose.yml).",
        f"LAUKS_STATE_HOST_DIR={compose_path(state_dir)}",
        "",
        "# Ports published on the server.",
        *(setting(name, value) for name, value in PORT_DEFAULTS.items()),
        "",
        "# The web app: the address pupils type or scan (share links and QR codes; kits fetch updates from it",
        "# too: `lauks fleet update --server`), whether the sites and kits are open to anybody who reaches the",
        "# server (false: staff sign in, classes use a dataset's code; kits' places are blurred to about 1 km",
        "# either way unless set exact), and the map's tiles (empty: no map).",
        *(setting(name, web_defaults[name]) for name in WEB_SETTINGS),
        "",
        "# Alert mail to each site's contacts (docs/deploy.md, \"Alert mail\"): name the school's mail server",
        "# here, then switch the alerts service on by removing the # before COMPOSE_PROFILES. The password is a",
        "# secret like the ones below.",
        profile,
        *(setting(name, value) for name, value in SMTP_DEFAULTS.items()),
        "",
        "# Secrets, generated at random.",
        *(f"{name}={secrets_by_name[name]}" for name in SECRET_NAMES),
        "",
    ]
    for name in (*SECRET_NAMES, *FROM_ARGUMENTS):
        old.pop(name, None)
    if old:
        lines += ["# Kept from the .env before `lauks deploy init --force`.",
                  *(f"{name}={value}" for name, value in old.items()), ""]
    return "\n".join(lines)


def kept_settings(env_file: Path) -> dict[str, str]:
    """The settings of an existing .env that ``--force`` keeps: all but the generated secrets and what this
    run's arguments set."""
    try:
        old = parse_env(env_file.read_text())
    except FileNotFoundError:
        return {}
    return {name: value for name, value in old.items() if name not in (*SECRET_NAMES, *FROM_ARGUMENTS)}


def init_deployment(env_file: Path, state_dir: Path, hosts: list[str], *, force: bool = False) -> list[str]:
    """Write ``env_file``, the broker's service users and the TLS files; sentences saying what was done."""
    if env_file.exists() and not force:
        raise DeployError(
            f"{env_file} exists already; this server is set up. `lauks deploy init --force` makes new passwords "
            "for the services (then InfluxDB's and Grafana's volumes must be re-created); it keeps the update "
            "master key, the mail settings, the ports and the web app's address")
    from lauks.tlsca import TlsError, init_school_ca, normalise_hosts

    try:  # checked before anything is written: a name also goes into .env and the certificate
        hosts = normalise_hosts(hosts or [socket.gethostname(), "localhost"])
    except TlsError as error:
        raise DeployError(f"lauks deploy init: {error}") from error
    values = {name: random_secret() for name in SECRET_NAMES}
    kept = kept_settings(env_file) if force else {}
    private_dir(state_dir, tighten_existing=False)  # the broker's users and the CA's key (their folders: 0700)
    auth = BrokerAuth(state_dir)
    auth.ensure_service_users({user: values[name] for user, name in MQTT_SECRETS.items()})
    # the over-the-air update master key, kept beside the broker's users (`lauks kit add` on the host reads it);
    # a server set up again keeps its key, or every kit out there would refuse its offers
    update_key = master_key_path(state_dir)
    master_key(state_dir, create=True)
    # `lauks fleet release` builds there and the API's container serves it, mounted read-only: it runs as the
    # image's own user, not the host's, so the folder must be open to others whatever the umask (nothing in
    # it is secret: kits check every file against the offer's HMAC'd manifest)
    releases = state_dir / RELEASES_DIR
    releases.mkdir(exist_ok=True)
    os.chmod(releases, 0o755)
    try:
        ca = init_school_ca(state_dir / "tls", hosts)
    except TlsError as error:
        raise DeployError(str(error)) from error
    write_private(env_file, render_env(hosts, state_dir, values, kept))  # 0600 from its first byte
    mail = (f"alert mail is on (COMPOSE_PROFILES={ALERTS_PROFILE}, server {kept.get('LAUKS_SMTP_HOST') or 'unset'})"
            if alerts_on(kept) else
            f"alert mail is off: name the school's mail server (LAUKS_SMTP_*) in {env_file} and uncomment "
            f"COMPOSE_PROFILES={ALERTS_PROFILE} (docs/deploy.md, Alert mail)")
    return [
        f"wrote {env_file} with new random secrets (Grafana's admin password is GRAFANA_ADMIN_PASSWORD there)",
        *([f"kept from the old {env_file}: {', '.join(sorted(kept))}"] if kept else []),
        f"broker users: {auth.password_file}, ACL: {auth.acl_file}",
        f"the update master key (back it up: kits' update keys derive from it): {update_key}",
        f"over-the-air releases: {releases} (the API serves them to kits at /v1/firmware)",
        mail,
        f"the school's CA: {ca.ca_cert} (kits need it for TLS on port {PORT_DEFAULTS['MQTT_TLS_PORT']}); "
        f"the broker's certificate is for {', '.join(hosts)}",
        "next: docker compose up -d --build; a staff token with `docker compose exec api lauks token create "
        "--name <name>`; then add kits with `LAUKS_STATE_DIR="
        f"{state_dir} .venv/bin/lauks kit add <site> <kit> --type weather --no-register --broker-host {hosts[0]}` "
        "and record them in the API's store with `docker compose exec api lauks kit register <site> <kit>` "
        "(docs/deploy.md)",
    ]
