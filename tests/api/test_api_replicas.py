"""Two `lauks api` processes on one PostgreSQL database, as replicas behind a proxy are: what one writes the
other answers at once, and a staff token revoked in the store is refused by both (nothing is cached)."""

from __future__ import annotations

from pathlib import Path

import httpx
from api_fixtures import api_process, lauks, process_env, staff_token

from lauks.services import Influxd


def test_two_api_processes_on_one_postgresql_share_kits_datasets_and_revoked_tokens(
        tmp_path: Path, influxd: Influxd, database: str, postgres_url: str) -> None:
    one = process_env(tmp_path / "one", influxd.url, database, DATABASE_URL=postgres_url)
    two = process_env(tmp_path / "two", influxd.url, database, DATABASE_URL=postgres_url)
    teacher = {"Authorization": f"Bearer {staff_token(one, 'Ms Ozola')}"}
    helper = {"Authorization": f"Bearer {staff_token(one, 'Mr Berzins')}"}
    with api_process(one) as a, api_process(two) as b:
        made = httpx.post(f"{a}/v1/sites", headers=teacher, json={"name": "school", "timezone": "Europe/Riga"})
        assert made.status_code == 201, made.text
        assert httpx.post(f"{a}/v1/sites/school/kits", headers=teacher, json={"name": "k1"}).status_code == 201
        kit = httpx.get(f"{b}/v1/sites/school/kits/k1", headers=teacher)
        assert kit.status_code == 200 and kit.json()["name"] == "k1", kit.text
        again = httpx.post(f"{b}/v1/sites", headers=teacher, json={"name": "school"})
        assert again.status_code == 409 and again.json()["error"] == "site_exists"

        dataset = httpx.post(f"{a}/v1/datasets", headers=teacher, json={
            "title": "Spring rain", "site": "school", "quantities": ["rain"], "start": "2025-04-01",
            "end": "2025-04-02"})
        assert dataset.status_code == 201, dataset.text
        code = dataset.json()["code"]
        preview = httpx.get(f"{b}/v1/datasets/{code.lower()}")  # a pupil, no token, at the other replica
        assert preview.status_code == 200 and preview.json()["title"] == "Spring rain", preview.text
        assert [d["code"] for d in httpx.get(f"{b}/v1/datasets", headers=helper).json()] == [code]

        assert httpx.get(f"{a}/v1/sites", headers=helper).status_code == 200  # both have seen the token work
        revoked = lauks(one, "token", "revoke", "2")
        assert revoked.returncode == 0, revoked.stderr
        for url in (a, b):
            refused = httpx.get(f"{url}/v1/sites", headers=helper)
            assert refused.status_code == 401 and refused.json()["error"] == "bad_token", (url, refused.text)
            assert httpx.get(f"{url}/v1/sites", headers=teacher).status_code == 200
