"""The school server's docker-compose.yml, checked without a Docker engine: it parses, every mounted
file exists, the services agree on ports, names, users and topics, and no default secret ships."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import ValidationError

from alerting.settings import AlertSettings
from api.routers import firmware
from api.settings import ApiSettings
from gateway.settings import GatewaySettings
from lauks import brokerauth, fleet
from lauks.brokerauth import API_USER, GATEWAY_USER, HEALTH_USER, STAFF_USER, BrokerAuth
from lauks.deploy import SECRET_NAMES, SMTP_DEFAULTS, alerts_on, init_deployment, parse_env, render_env
from lauks.settings import DEVELOPMENT_SECRETS
from stack.cli import main

REPO = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
_VAR = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?:(?P<op>:\?|:-)(?P<arg>[^}]*))?\}")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable substitution, the forms this file uses: ${X}, ${X:-default}, ${X:?error}, $$."""
    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        value = env.get(name, "")
        if op == ":?" and not value:
            raise KeyError(f"{name}: {arg}")
        if op == ":-" and not value:
            return arg
        return value
    return _VAR.sub(one, text).replace("$$", "$")


def environment(service: str, env: dict[str, str]) -> dict[str, str]:
    return {k: interpolate(str(v), env) for k, v in SERVICES[service].get("environment", {}).items()}


@pytest.fixture
def deployed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """`lauks deploy init` run in a copy of the server's folder layout: the .env it wrote."""
    monkeypatch.chdir(tmp_path)
    assert main(["deploy", "init", "--host", "lauks.school.example", "--host", "127.0.0.1"]) == 0
    return parse_env((tmp_path / ".env").read_text())


def test_the_compose_file_runs_the_six_services_with_restarts_healthchecks_and_named_volumes() -> None:
    assert set(SERVICES) == {"mosquitto", "influxdb", "grafana", "gateway", "api", "alerts"}
    assert SERVICES["alerts"]["profiles"] == ["alerts"]  # alert mail starts once .env names a mail server
    for name, service in SERVICES.items():
        assert service.get("restart") == "unless-stopped", name
        assert service.get("healthcheck", {}).get("test"), name
    named = {v.split(":", 1)[0] for s in SERVICES.values() for v in s.get("volumes", [])
             if not v.startswith((".", "/", "$"))}
    assert named and named == set(COMPOSE["volumes"])
    assert SERVICES["influxdb"]["image"].startswith("influxdb:1.")
    assert SERVICES["mosquitto"]["image"] == "eclipse-mosquitto:2"
    assert SERVICES["gateway"]["command"] == ["gateway"] and SERVICES["api"]["command"] == ["api"]
    for name in ("gateway", "api"):
        assert SERVICES[name]["build"] == "." and SERVICES[name]["restart"] == "unless-stopped"
        assert SERVICES[name]["depends_on"]["mosquitto"]["condition"] == "service_healthy"


def test_every_mounted_file_exists(deployed: dict[str, str], tmp_path: Path) -> None:
    env = dict(deployed)
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = interpolate(volume, env).split(":", 1)[0]
            if not source.startswith((".", "/")):
                continue  # a named volume
            # Files of the repository, or made by `lauks deploy init` (relative to where it ran).
            base = tmp_path if "LAUKS_STATE_HOST_DIR" in volume else REPO
            assert (base / source).exists(), f"{name} mounts {source}, which does not exist"
    assert any((REPO / "dashboards/json").glob("*.json")), "no dashboards to provision"


def test_the_dockerfile_builds_from_python_311_slim_and_copies_every_package() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    for package in ("lauks", "metastore", "gateway", "api", "web", "firmware", "dashboards", "bench", "stack",
                    "alerting"):
        assert f"COPY {package} ./{package}" in dockerfile
        assert (REPO / package / "__init__.py").exists()
    assert 'ENTRYPOINT ["lauks"]' in dockerfile and "USER lauks" in dockerfile
    assert "&& lauks --help" in dockerfile  # the console script the image runs, checked when it is built
    assert "/usr/local/share/lauks/web/node_modules" in dockerfile  # where web/assets.py looks when installed
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".env", ".lauks", "deploy/state", ".git"} <= set(ignored)


def test_services_agree_on_hosts_ports_database_users_and_topics(deployed: dict[str, str]) -> None:
    env = deployed
    influx, gateway, api, grafana = (environment(s, env) for s in ("influxdb", "gateway", "api", "grafana"))
    conf = (REPO / "deploy/mosquitto/mosquitto.conf").read_text()
    listeners = re.findall(r"^listener (\d+)", conf, re.M)
    assert listeners == ["1883", "8883"]
    assert [p.split(":")[-1] for p in SERVICES["mosquitto"]["ports"]] == listeners
    for service in (gateway, api):
        assert service["LAUKS_MQTT_HOST"] == "mosquitto" and service["LAUKS_MQTT_PORT"] == "1883"
        assert service["LAUKS_INFLUX_URL"] == "http://influxdb:8086"
        assert service["LAUKS_INFLUX_DATABASE"] == influx["INFLUXDB_DB"] == grafana["INFLUX_DB"] == "lauks"
        assert service["LAUKS_TOPIC_ROOT"] == "lauks"
    assert grafana["INFLUX_URL"] == "http://influxdb:8086"
    # InfluxDB users: the gateway writes, the API and Grafana read.
    assert (gateway["LAUKS_INFLUX_USERNAME"], gateway["LAUKS_INFLUX_PASSWORD"]) == \
        (influx["INFLUXDB_USER"], influx["INFLUXDB_USER_PASSWORD"])
    for user, password in ((api["LAUKS_INFLUX_USERNAME"], api["LAUKS_INFLUX_PASSWORD"]),
                           (grafana["INFLUX_USER"], grafana["INFLUX_PASSWORD"])):
        assert (user, password) == (influx["INFLUXDB_READ_USER"], influx["INFLUXDB_READ_USER_PASSWORD"])
    # Broker users: the ones lauks.brokerauth made, with the passwords in .env.
    auth = BrokerAuth(Path(env["LAUKS_STATE_HOST_DIR"]))
    users = auth.users()
    for service, username in ((gateway, GATEWAY_USER), (api, API_USER)):
        assert service["LAUKS_MQTT_USERNAME"] == username
        assert brokerauth.verify_password(service["LAUKS_MQTT_PASSWORD"], users[username]["hash"])
    staff = environment("mosquitto", env)["LAUKS_STAFF_MQTT_PASSWORD"]
    assert brokerauth.verify_password(staff, users[STAFF_USER]["hash"])
    # the broker's health check logs in as its own user (client ids are usernames), with staff's password
    check = " ".join(SERVICES["mosquitto"]["healthcheck"]["test"])
    assert f"-u {HEALTH_USER} -P \"$$LAUKS_STAFF_MQTT_PASSWORD\"" in check and " -i " not in check
    health = next(line for line in auth.password_file.read_text().splitlines() if line.startswith(f"{HEALTH_USER}:"))
    assert brokerauth.verify_password(staff, health.split(":", 1)[1])
    block = auth.acl_file.read_text().split(f"user {HEALTH_USER}\n", 1)[1].split("\n\n", 1)[0]
    assert block.splitlines() == ["topic read lauks/v1/healthcheck"]  # and nothing else
    assert "topic read lauks/v1/+/+/readings" in auth.acl_file.read_text()
    # Health checks ask the ports the services listen on.
    assert f":{gateway['LAUKS_GATEWAY_HTTP_PORT']}/healthz" in " ".join(SERVICES["gateway"]["healthcheck"]["test"])
    assert f":{api['LAUKS_API_PORT']}/v1/health" in " ".join(SERVICES["api"]["healthcheck"]["test"])
    assert SERVICES["api"]["ports"][0].endswith(f":{api['LAUKS_API_PORT']}")
    assert gateway["LAUKS_GATEWAY_HTTP_HOST"] == api["LAUKS_API_HOST"] == "0.0.0.0"


def test_every_lauks_variable_is_one_the_services_settings_read(deployed: dict[str, str]) -> None:
    for name, settings_class in (("gateway", GatewaySettings), ("api", ApiSettings)):
        env = environment(name, deployed)
        fields = {f"LAUKS_{field.upper()}" for field in settings_class.model_fields}
        assert {k for k in env if k.startswith("LAUKS_")} - fields == set(), name
        # ...and the service starts with them: production, so a default or missing secret would fail here.
        settings = settings_class(_env_file=None, **{k[len("LAUKS_"):].lower(): v for k, v in env.items()})
        assert settings.environment == "production" and settings.mqtt_password is not None


def test_grafana_gets_every_variable_its_provisioning_files_use() -> None:
    grafana = SERVICES["grafana"]["environment"]
    used = set()
    for path in (REPO / "dashboards/provisioning").rglob("*.y*ml"):
        text = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
        used |= set(re.findall(r"\$\{([A-Z0-9_]+)\}", text))
    assert used and used <= set(grafana)


def test_no_default_secret_ships() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    for name in SECRET_NAMES:
        uses = re.findall(r"\$\{" + name + r"([^}]*)\}", text)
        assert uses and all(u.startswith(":?") for u in uses), f"{name} must be required, never defaulted"
    for service, values in ((s, SERVICES[s].get("environment", {})) for s in SERVICES):
        for key, value in values.items():
            if key == "LAUKS_SMTP_PASSWORD":  # optional (a relay without a login); alerting.settings refuses a
                assert value == "${LAUKS_SMTP_PASSWORD:-}"  # development default whenever a username is set
                continue
            if re.search("PASSWORD|TOKEN|SECRET", key):
                assert str(value).startswith("${") and ":?" in str(value), f"{service} {key} is written in the file"
    example = parse_env((REPO / ".env.example").read_text())
    assert {name: example[name] for name in SECRET_NAMES} == dict.fromkeys(SECRET_NAMES, "")
    with pytest.raises(KeyError):  # compose refuses to start with the example's empty secrets
        environment("gateway", example)


def test_deploy_init_writes_private_random_secrets_once(deployed: dict[str, str], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    secrets = [deployed[name] for name in SECRET_NAMES]
    assert len(set(secrets)) == len(secrets) and all(len(s) >= 24 for s in secrets)
    assert not set(secrets) & DEVELOPMENT_SECRETS
    assert stat.S_IMODE((tmp_path / ".env").stat().st_mode) == 0o600
    assert deployed["LAUKS_STATE_HOST_DIR"] == "./deploy/state"
    assert (tmp_path / "deploy/state/tls/ca.crt").exists() and (tmp_path / "deploy/state/broker/passwd").exists()
    before = (tmp_path / ".env").read_text()
    capsys.readouterr()
    assert main(["deploy", "init"]) == 1  # a second run would lock everyone out: refused, nothing changed
    assert "exists already" in capsys.readouterr().err
    assert (tmp_path / ".env").read_text() == before


def test_kits_added_on_the_server_land_where_the_broker_container_reads_its_users(deployed: dict[str, str]) -> None:
    state = Path(deployed["LAUKS_STATE_HOST_DIR"])
    mount = next(v for v in SERVICES["mosquitto"]["volumes"] if v.endswith(":/lauks/broker:ro"))
    assert Path(interpolate(mount, deployed).split(":")[0]) == state / "broker"
    brokerauth.add_kit_credentials(state, "school", "k01")
    assert "user school.k01" in (state / "broker" / "acl").read_text()
    entrypoint = (REPO / "deploy/mosquitto/entrypoint.sh").read_text()
    assert "/lauks/broker/passwd" in entrypoint and "kill -HUP" in entrypoint
    conf = (REPO / "deploy/mosquitto/mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and "password_file /mosquitto/auth/passwd" in conf


# The metadata store's commands (api/cli.py): on a school server they run where the API's store is.
STORE_COMMANDS = re.compile(r"^(token |site |kit (register|edit|retire|list) )")
DEPLOY_DOC = (REPO / "docs/deploy.md").read_text().replace("\\\n", " ")


def test_the_documented_store_commands_run_in_the_api_container_on_the_volume_the_api_reads() -> None:
    in_containers = re.findall(r"docker compose exec (\S+) lauks ([^\n`#]*)", DEPLOY_DOC)
    store = [(service, rest) for service, rest in in_containers if STORE_COMMANDS.match(rest)]
    assert {rest.split()[0] for _, rest in store} >= {"token", "site", "kit"}  # the staff token step included
    assert {service for service, _ in store} == {"api"}
    api = SERVICES["api"]
    state = api["environment"]["LAUKS_STATE_DIR"]
    mounted = {v.split(":")[1]: v.split(":")[0] for v in api["volumes"]}
    assert mounted[state] in COMPOSE["volumes"]  # a named volume: the API's own store, kept across upgrades
    assert "LAUKS_API_DATABASE_URL" not in api["environment"]  # so the store is SQLite in LAUKS_STATE_DIR
    assert "lauks = " in (REPO / "pyproject.toml").read_text() and 'ENTRYPOINT ["lauks"]' in \
        (REPO / "Dockerfile").read_text()  # `lauks` is on the image's PATH, for `exec`


def test_the_documented_host_commands_leave_the_apis_store_alone_and_use_the_brokers_state() -> None:
    host = re.findall(r"((?:LAUKS_STATE_DIR=(\S+) )?\.venv/bin/lauks ([^\n`#]*))", DEPLOY_DOC)
    assert len(host) >= 5
    broker_mount = next(v for v in SERVICES["mosquitto"]["volumes"] if v.endswith(":/lauks/broker:ro"))
    default_state = broker_mount.split(":-", 1)[1].split("}", 1)[0].removeprefix("./")
    assert default_state == "deploy/state"
    for line, state_env, rest in host:
        assert not STORE_COMMANDS.match(rest), f"{line}: on the host this writes a store no container reads"
        if rest.startswith("kit add"):
            assert "--no-register" in rest, line
        state = state_env or (rest.split("--state-dir ", 1)[1].split()[0] if "--state-dir " in rest else None)
        if rest.startswith(("kit add", "kit revoke", "broker", "fleet")) or state is not None:  # (`tls init`: a laptop)
            assert state == default_state, f"{line}: the broker's users are in {default_state}"


# --- over-the-air releases and alert mail on the school server -----------------------------------


def mounts(service: str, env: dict[str, str]) -> list[tuple[str, str, bool]]:
    """(source, target, read-only) of each of a service's volumes, with .env's values substituted."""
    found = []
    for volume in SERVICES[service].get("volumes", []):
        source, target, *options = interpolate(volume, env).split(":")
        found.append((source, target, options == ["ro"]))
    return found


def alert_settings(env: dict[str, str]) -> AlertSettings:
    """The alerts service's settings as its container would read them from docker-compose.yml and ``env``."""
    values = environment("alerts", env)
    fields = {f"LAUKS_{field.upper()}" for field in AlertSettings.model_fields}
    assert set(values) - fields == set()  # every variable it is given is one it reads
    return AlertSettings(_env_file=None, **{k[len("LAUKS_"):].lower(): v for k, v in values.items()})


def edit_env(path: Path, changes: dict[str, str]) -> None:
    """Change .env as a person would: a value replaced in place, the commented profile line uncommented."""
    lines = []
    for line in path.read_text().splitlines():
        name = line.removeprefix("# ").split("=", 1)[0]
        lines.append(f"{name}={changes.pop(name)}" if "=" in line and name in changes else line)
    path.write_text("\n".join([*lines, *(f"{k}={v}" for k, v in changes.items())]) + "\n")


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_the_api_serves_releases_built_on_the_host_from_a_read_only_mount(
        deployed: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, umask_022: None) -> None:
    state = tmp_path / deployed["LAUKS_STATE_HOST_DIR"]
    inside = environment("api", deployed)["LAUKS_STATE_DIR"]
    releases = [(Path(source), ro) for source, target, ro in mounts("api", deployed)
                if target == f"{inside}/{fleet.RELEASES_DIR}"]
    assert releases == [(Path(deployed["LAUKS_STATE_HOST_DIR"]) / fleet.RELEASES_DIR, True)]
    # `lauks fleet release` as docs/deploy.md runs it on the host (py: the same path without mpy-cross)
    monkeypatch.setenv("LAUKS_STATE_DIR", "deploy/state")
    assert main(["fleet", "release", "--format", "py", "--version", "1.2.3"]) == 0
    built = state / fleet.RELEASES_DIR / "1.2.3"
    # the API's container reads it as the image's user (uid 10001), not the host's: open to others
    for path in [built.parent, built, *built.rglob("*")]:
        wanted = 0o005 if path.is_dir() else 0o004
        assert stat.S_IMODE(path.stat().st_mode) & wanted == wanted, f"{path} is closed to the API's user"
    # what the API sees at /state/releases is that folder: its routes serve the release from it
    container = tmp_path / "api-state"
    container.mkdir()
    (container / fleet.RELEASES_DIR).symlink_to(releases[0][0].resolve())
    settings = ApiSettings(_env_file=None, state_dir=container)
    assert firmware.get_manifest("1.2.3", settings).body == (built / fleet.MANIFEST).read_bytes()
    first = fleet.read_manifest(built)["files"][0]
    assert len(firmware.get_file("1.2.3", first["path"], settings).body) == first["size"]
    assert "USER lauks" in (REPO / "Dockerfile").read_text()


def test_deploy_init_opens_the_releases_folder_to_the_api_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        init_deployment(tmp_path / ".env", tmp_path / "state", ["lauks.test"])
    finally:
        os.umask(old)
    mode = {p: stat.S_IMODE((tmp_path / "state" / p).stat().st_mode) for p in ("", fleet.RELEASES_DIR, "fleet")}
    assert mode == {"": 0o700, fleet.RELEASES_DIR: 0o755, "fleet": 0o700}  # only the releases are opened
    assert stat.S_IMODE(fleet.master_key_path(tmp_path / "state").stat().st_mode) == 0o600


def test_no_container_is_given_the_update_master_key(deployed: dict[str, str]) -> None:
    state = Path(deployed["LAUKS_STATE_HOST_DIR"])
    shared = {}
    for name in SERVICES:
        for source, _, ro in mounts(name, deployed):
            if Path(source).is_relative_to(state):
                assert ro, f"{name} may change {source}: the host's commands own deploy/state"
                shared[Path(source).relative_to(state).as_posix()] = name
    # the broker's users and certificates, the releases: never the state folder whole, nor fleet/ with the key
    assert shared == {"broker": "mosquitto", "tls": "mosquitto", fleet.RELEASES_DIR: "api"}
    assert fleet.master_key_path(state).parent.name == fleet.FLEET_DIR
    assert not any("UPDATE_KEY" in key for s in SERVICES.values() for key in s.get("environment", {}))


def test_deploy_init_leaves_alert_mail_off_with_its_lines_ready_to_fill_in(deployed: dict[str, str],
                                                                           tmp_path: Path) -> None:
    text = (tmp_path / ".env").read_text()
    assert {name: deployed[name] for name in SMTP_DEFAULTS} == SMTP_DEFAULTS
    assert "COMPOSE_PROFILES" not in deployed and "# COMPOSE_PROFILES=alerts" in text.splitlines()
    assert not alerts_on(deployed)
    # why: switched on without a mail server, the alerter refuses to start (and compose would restart it)
    with pytest.raises(ValidationError, match="LAUKS_SMTP_HOST"):
        alert_settings(deployed)
    # the example is what init writes, secrets emptied
    example_text = (REPO / ".env.example").read_text()
    assert set(parse_env(example_text)) == set(deployed)
    assert "# COMPOSE_PROFILES=alerts" in example_text.splitlines()


MAIL = {"COMPOSE_PROFILES": "alerts", "LAUKS_SMTP_HOST": "smtp.school.example", "LAUKS_SMTP_PORT": "465",
        "LAUKS_SMTP_SECURITY": "tls", "LAUKS_SMTP_USERNAME": "lauks@school.example",
        "LAUKS_SMTP_PASSWORD": "the-school-mail-password-7f3a", "LAUKS_SMTP_FROM": "Lauks <lauks@school.example>"}


def test_alert_mail_switched_on_in_env_starts_the_alerter_and_force_keeps_it_and_the_key(
        deployed: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env_file, state = tmp_path / ".env", Path(deployed["LAUKS_STATE_HOST_DIR"])
    edit_env(env_file, {**MAIL, "API_PORT": "8080", "LAUKS_GATEWAY_WORKERS": "2"})
    switched = parse_env(env_file.read_text())
    assert alerts_on(switched) and SERVICES["alerts"]["profiles"] == ["alerts"]
    settings = alert_settings(switched)  # production: it would refuse a missing or default secret
    assert settings.environment == "production" and settings.smtp_host == MAIL["LAUKS_SMTP_HOST"]
    assert settings.smtp_password is not None
    assert settings.smtp_password.get_secret_value() == MAIL["LAUKS_SMTP_PASSWORD"]
    key = fleet.master_key(state, create=False)
    capsys.readouterr()

    assert main(["deploy", "init", "--force", "--host", "lauks.school.example"]) == 0
    said = capsys.readouterr().out
    after = parse_env(env_file.read_text())
    assert {name: after.get(name) for name in MAIL} == MAIL  # the school's mail account, the profile on
    assert after["API_PORT"] == "8080" and after["LAUKS_GATEWAY_WORKERS"] == "2"  # a person's choices stay
    assert all(after[name] != switched[name] for name in SECRET_NAMES)  # what --force is for
    assert fleet.master_key(state, create=False) == key  # kits out there hold keys derived from it
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert "alert mail is on" in said and "kept from the old" in said and "LAUKS_SMTP_PASSWORD" in said
    assert alert_settings(after).smtp_host == MAIL["LAUKS_SMTP_HOST"]
    users = BrokerAuth(state).users()  # the broker got the new passwords .env now holds
    assert brokerauth.verify_password(after["LAUKS_API_MQTT_PASSWORD"], users[API_USER]["hash"])
    assert after["LAUKS_HOSTS"] == "lauks.school.example"  # from this run's --host


def test_force_without_mail_settings_leaves_alert_mail_off(deployed: dict[str, str], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deploy", "init", "--force", "--host", "lauks.school.example"]) == 0
    assert "alert mail is off" in capsys.readouterr().out
    after = (tmp_path / ".env").read_text()
    assert "# COMPOSE_PROFILES=alerts" in after.splitlines() and "COMPOSE_PROFILES" not in parse_env(after)


def _section(title: str) -> str:
    return DEPLOY_DOC.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_docs_update_kits_from_the_host_pointing_them_at_the_apis_published_port() -> None:
    host_fleet = re.findall(r"LAUKS_STATE_DIR=deploy/state \.venv/bin/lauks fleet (\w+)([^\n`]*)", DEPLOY_DOC)
    assert {command for command, _ in host_fleet} >= {"release", "update", "withdraw"}
    # not in a container: none holds the key, and the API's releases are read-only
    assert not re.search(r"docker compose (exec|run)[^\n`]* lauks fleet", DEPLOY_DOC)
    # ...nor `fleet status` on the host: it reads InfluxDB, which the stack does not publish
    assert "ports" not in SERVICES["influxdb"] and not any(c == "status" for c, _ in host_fleet)
    servers = {rest.split("--server ", 1)[1].split()[0] for command, rest in host_fleet if command == "update"}
    assert len(servers) == 1, "every documented fleet update names the API's address kits reach"
    server = urlsplit(servers.pop())
    # the address `deploy init` writes as LAUKS_API_PUBLIC_URL for the documented --host, on the published port
    init = re.search(r"\.venv/bin/lauks deploy init ((?:--host \S+ ?)+)", DEPLOY_DOC)
    assert init is not None
    hosts = init[1].split()[1::2]
    env = parse_env(render_env(hosts, Path("deploy/state"), dict.fromkeys(SECRET_NAMES, "x")))
    assert f"{server.scheme}://{server.netloc}" == env["LAUKS_API_PUBLIC_URL"]
    assert server.hostname == hosts[0] and server.hostname not in ("localhost", "127.0.0.1")
    published = interpolate(SERVICES["api"]["ports"][0], env).split(":")
    assert published == [str(server.port), environment("api", env)["LAUKS_API_PORT"]]


def test_the_docs_say_to_back_up_the_update_key_and_how_alert_mail_is_switched_on() -> None:
    backup = _section("Backup")
    assert "deploy/state/fleet/update.key" in backup and "re-flashed" in backup
    assert re.search(r"^tar czf \S+ .*\bdeploy/state\b", backup, re.M)  # the archive that holds it
    assert "deploy/state/fleet/update.key" in DEPLOY_DOC.split("## Backup", 1)[0]  # what deploy init writes
    mail = _section("Alert mail")
    assert "COMPOSE_PROFILES=alerts" in mail and "# COMPOSE_PROFILES=alerts" in mail
    assert all(name in mail for name in SMTP_DEFAULTS)
