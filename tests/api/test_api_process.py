"""The API as staff run it: `lauks` CLI commands on the store, `lauks api` as a process, and schemathesis
against its own OpenAPI document (a bounded number of examples per operation), which it must keep to."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_fixtures import api_process, lauks, process_env, staff_token

from lauks.services import Influxd

EXAMPLES = 15  # per operation and phase: schemathesis is bounded so the whole file stays within a minute
SCHEMATHESIS_CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.fixture
def env(tmp_path: Path, influxd: Influxd, database: str, store_url: str) -> dict[str, str]:
    return process_env(tmp_path, influxd.url, database, DATABASE_URL=store_url)


@pytest.fixture
def running(env: dict[str, str]) -> Iterator[tuple[str, str]]:
    """Staff set up a site and a kit with the CLI, then `lauks api` serves them."""
    assert lauks(env, "site", "add", "school", "--title", "Riga School 3", "--timezone", "Europe/Riga",
                 "--latitude", "56.95", "--longitude", "24.1").returncode == 0
    assert lauks(env, "kit", "register", "school", "k1", "--type", "weather").returncode == 0
    token = staff_token(env)
    with api_process(env) as url:
        yield url, token


@pytest.mark.both_stores
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
    naive = lauks(env, "kit", "register", "garden", "k2", "--deployed-since", "2025-03-01T09:00")
    assert naive.returncode == 1 and "no offset" in naive.stderr


def test_cli_registers_a_kit_blurred_and_edits_it_to_exact(env: dict[str, str]) -> None:
    assert lauks(env, "site", "add", "garden").returncode == 0
    assert lauks(env, "kit", "register", "garden", "home-1").returncode == 0
    assert "home-1\tweather\tblurred" in lauks(env, "kit", "list", "garden").stdout
    assert lauks(env, "kit", "edit", "garden", "home-1", "--location-precision", "exact").returncode == 0
    assert "home-1\tweather\texact" in lauks(env, "kit", "list", "garden").stdout
    wrong = lauks(env, "kit", "edit", "garden", "home-1", "--location-precision", "fuzzy")
    assert wrong.returncode == 2 and "exact" in wrong.stderr


def test_the_staff_token_is_stored_hashed_and_listed_and_revoked_by_number(env: dict[str, str],
                                                                            tmp_path: Path) -> None:
    token = lauks(env, "token", "create", "--name", "Mr Berzins").stdout.strip()
    assert token and token.encode() not in (tmp_path / "lauks.db").read_bytes()
    assert lauks(env, "token", "list").stdout.startswith("1\tMr Berzins\tcreated ")
    revoked = lauks(env, "token", "revoke", "1")
    assert revoked.returncode == 0 and "refuses it" in revoked.stdout
    assert lauks(env, "token", "list").stdout == "" and "revoked" in lauks(env, "token", "list", "--all").stdout
    again = lauks(env, "token", "revoke", "7")
    assert again.returncode == 1 and "no staff token 7" in again.stderr


def test_lauks_api_serves_sites_kits_and_openapi(running: tuple[str, str]) -> None:
    url, token = running
    headers = {"Authorization": f"Bearer {token}"}
    kits = httpx.get(f"{url}/v1/sites/school/kits", headers=headers).json()
    assert kits[0]["name"] == "k1" and kits[0]["status"] == {"online": False, "state": None, "last_seen": None,
                                                             "battery_v": None}
    assert httpx.get(f"{url}/v1/sites", headers={"Authorization": "Bearer lauks_wrong"}).status_code == 401
    assert httpx.get(f"{url}/docs").status_code == 200
    assert "/v1/sites/{site}/readings" in httpx.get(f"{url}/openapi.json").json()["paths"]


def test_schemathesis_finds_the_api_true_to_its_openapi_document(running: tuple[str, str],
                                                                 tmp_path: Path) -> None:
    """Every check schemathesis has (status codes, content types, headers, response schemas, schema-valid
    input accepted and schema-invalid refused, Allow on 405, ...), in its examples, coverage, fuzzing and
    stateful phases, a bounded number of examples per operation."""
    url, token = running
    made, doomed = (httpx.post(f"{url}/v1/datasets", headers={"Authorization": f"Bearer {token}"}, json={
        "title": title, "site": "school", "quantities": ["rain"], "start": "2025-04-01", "end": "2025-04-02"})
        for title in ("Rain", "Rain, to be deleted"))
    assert made.status_code == 201 and doomed.status_code == 201, made.text + doomed.text
    command = [str(Path(sys.executable).parent / "schemathesis"), "--config-file", str(SCHEMATHESIS_CONFIG), "run",
               f"{url}/openapi.json", "-H", f"Authorization: Bearer {token}", "--max-examples", str(EXAMPLES),
               "--checks", "all", "--no-color", "--continue-on-failure", "--max-failures", "50"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=tmp_path,
                          env={**os.environ, "LAUKS_TEST_DATASET_CODE": made.json()["code"],
                               "LAUKS_TEST_DELETED_CODE": doomed.json()["code"]})
    assert done.returncode == 0, done.stdout[-20_000:] + done.stderr[-2_000:]
    # the downloads were checked against a dataset that still exists, and DELETE had one of its own
    staff = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{url}/v1/datasets/{made.json()['code']}", headers=staff).status_code == 200
    assert httpx.get(f"{url}/v1/datasets/{doomed.json()['code']}", headers=staff).status_code == 404
