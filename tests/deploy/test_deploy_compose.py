"""The school server's docker-compose.yml, checked without a Docker engine: it parses, every mounted
file exists, the services agree on ports, names, users and topics, and no default secret ships."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
import yaml

from api.settings import ApiSettings
from gateway.settings import GatewaySettings
from lauks import brokerauth
from lauks.brokerauth import API_USER, GATEWAY_USER, HEALTH_USER, STAFF_USER, BrokerAuth
from lauks.deploy import SECRET_NAMES, parse_env
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
        if rest.startswith(("kit add", "kit revoke", "broker")) or state is not None:  # (`tls init` on a laptop)
            assert state == default_state, f"{line}: the broker's users are in {default_state}"
