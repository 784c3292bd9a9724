"""The API as staff run it: `lauks` CLI commands on the store, `lauks api` as a process, and schemathesis
against its own OpenAPI (a bounded number of examples per operation) finding no 5xx."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from api_fixtures import ROOT, api_process, lauks, process_env, staff_token
from hypothesis import HealthCheck, given, settings

from lauks.services import Influxd

EXAMPLES = 25  # per operation: schemathesis is bounded so the whole file stays within seconds


@pytest.fixture
def env(tmp_path: Path, influxd: Influxd, database: str) -> dict[str, str]:
    return process_env(tmp_path, influxd.url, database)


@pytest.fixture
def running(env: dict[str, str]) -> Iterator[tuple[str, str]]:
    """Staff set up a site and a kit with the CLI, then `lauks api` serves them."""
    assert lauks(env, "site", "add", "school", "--title", "Riga School 3", "--timezone", "Europe/Riga",
                 "--latitude", "56.95", "--longitude", "24.1").returncode == 0
    assert lauks(env, "kit", "register", "school", "k1", "--type", "weather").returncode == 0
    token = staff_token(env)
    with api_process(env) as url:
        yield url, token


def test_cli_edits_retires_and_lists_sites_and_kits(env: dict[str, str]) -> None:
    assert lauks(env, "site", "add", "garden").returncode == 0
    again = lauks(env, "site", "add", "garden")
    assert again.returncode == 1 and "exists already" in again.stderr
    bad = lauks(env, "site", "add", "Garden School")
    assert bad.returncode == 1 and "not allowed" in bad.stderr
    assert lauks(env, "site", "edit", "garden", "--title", "The garden").returncode == 0
    assert lauks(env, "kit", "register", "garden", "soil-1", "--type", "soil").returncode == 0
    assert "soil-1\tsoil" in lauks(env, "kit", "list", "garden").stdout
    assert lauks(env, "kit", "retire", "garden", "soil-1").returncode == 0
    assert "soil-1" not in lauks(env, "kit", "list", "garden").stdout
    assert "(retired)" in lauks(env, "kit", "list", "garden", "--all").stdout
    assert "The garden" in lauks(env, "site", "list").stdout
    missing = lauks(env, "kit", "register", "nowhere", "k1")
    assert missing.returncode == 1 and "no site 'nowhere'" in missing.stderr


def test_register_kit_function_records_the_kit_and_its_site(env: dict[str, str]) -> None:
    code = ("from api.registry import register_kit; "
            "register_kit('field-3', 'k9', 'river', description='by the bridge');"
            "register_kit('field-3', 'k9', 'river', description='moved')")
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "k9\triver\tmoved" in lauks(env, "kit", "list", "field-3").stdout


def test_the_staff_token_is_stored_hashed(env: dict[str, str], tmp_path: Path) -> None:
    token = lauks(env, "token", "create", "--name", "Mr Berzins").stdout.strip()
    assert token and token.encode() not in (tmp_path / "lauks.db").read_bytes()


def test_lauks_api_serves_sites_kits_and_openapi(running: tuple[str, str]) -> None:
    url, token = running
    headers = {"Authorization": f"Bearer {token}"}
    kits = httpx.get(f"{url}/v1/sites/school/kits", headers=headers).json()
    assert kits[0]["name"] == "k1" and kits[0]["status"] == {"online": False, "state": None, "last_seen": None,
                                                             "battery_v": None}
    assert httpx.get(f"{url}/v1/sites", headers={"Authorization": "Bearer lauks_wrong"}).status_code == 401
    assert httpx.get(f"{url}/docs").status_code == 200
    assert "/v1/sites/{site}/readings" in httpx.get(f"{url}/openapi.json").json()["paths"]


def test_schemathesis_finds_no_server_error(running: tuple[str, str]) -> None:
    url, token = running
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            response = case.call(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.query} -> {response.status_code} "
                                f"{response.text[:200]}")

        check()
    assert not failures, "\n".join(failures[:10])
