"""Who may read what, how fast, and what a kit's live status says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from api_fixtures import Api, api_settings_for, point, running, service

from api.ratelimit import RateLimiter
from api.routers.sites import status_of
from lauks import lineprotocol, schema
from lauks.services import Influxd
from metastore import sharecode

__all__ = ["service"]


def status_line(site: str, kit: str, moment: datetime, **fields: float | int | str) -> str:
    return lineprotocol.line(schema.KIT_STATUS, {schema.SITE: site, schema.KIT: kit}, fields,
                             int(moment.timestamp() * 1000))


@pytest.mark.both_stores
async def test_kit_status_shows_online_last_seen_and_battery_from_the_gateways_points(service: Api) -> None:
    service.add_site("s")
    service.add_kits("s", "live", "gone", "quiet")
    now = datetime.now(UTC).replace(microsecond=0)
    await service.write([
        status_line("s", "live", now - timedelta(minutes=20), state="online"),
        status_line("s", "live", now - timedelta(minutes=1), seen=1, samples=3, late=0, boot=2, fw="0.3.0"),
        point("s", "live", now - timedelta(minutes=1), battery=3.9, temperature=20.0),
        status_line("s", "gone", now - timedelta(minutes=5), seen=1, samples=1, late=0, boot=1, fw="0.3.0"),
        status_line("s", "gone", now - timedelta(minutes=2), state="offline", battery=3.1),
    ])
    kits = {k["name"]: k["status"] for k in (await service.get("/v1/sites/s/kits")).json()}
    assert kits["live"]["online"] is True and kits["live"]["battery_v"] == 3.9
    assert kits["live"]["last_seen"].startswith((now - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M"))
    assert kits["gone"] == {"online": False, "state": "offline", "battery_v": 3.1,
                            "last_seen": kits["gone"]["last_seen"]}
    assert kits["quiet"] == {"online": False, "state": None, "last_seen": None, "battery_v": None}


def test_a_kit_heard_from_long_ago_is_not_online_even_if_its_status_said_so() -> None:
    at = datetime(2025, 5, 1, 12, tzinfo=UTC)
    old = {"state": "online", "state_time": at - timedelta(hours=3), "seen_time": at - timedelta(hours=2)}
    assert status_of(old, 900, at).online is False
    assert status_of({**old, "seen_time": at - timedelta(minutes=2)}, 900, at).online is True


@pytest.mark.both_stores
async def test_public_read_lets_anyone_read_sites_but_never_write(tmp_path: Path, influxd: Influxd, database: str,
                                                                  store_url: str) -> None:
    settings = api_settings_for(tmp_path, influxd.url, database, api_public_read=True, api_database_url=store_url)
    async for api in running(settings):
        api.add_site("open")
        assert (await api.client.get("/v1/sites")).json()[0]["name"] == "open"
        refused = await api.client.post("/v1/sites", json={"name": "mine"})
        assert refused.status_code == 401


@pytest.mark.both_stores
async def test_staff_create_edit_and_retire_sites_and_kits_through_the_api(service: Api) -> None:
    made = await service.post("/v1/sites", json={"name": "river", "title": "River", "latitude": 56.9,
                                                 "longitude": 24.1, "timezone": "Europe/Riga"})
    assert made.status_code == 201, made.text
    assert (await service.post("/v1/sites", json={"name": "river"})).status_code == 409
    assert (await service.post("/v1/sites", json={"name": "Bad Name"})).status_code == 422
    kit = await service.post("/v1/sites/river/kits", json={"name": "t1", "kit_type": "river", "elevation_m": 3})
    assert kit.status_code == 201 and kit.json()["kit_type"] == "river"
    edited = await service.client.patch("/v1/sites/river/kits/t1", json={"description": "under the bridge"},
                                        headers=service.staff)
    assert edited.json()["description"] == "under the bridge"
    assert (await service.client.delete("/v1/sites/river/kits/t1", headers=service.staff)).status_code == 200
    assert (await service.get("/v1/sites/river/kits")).json() == []
    assert len((await service.get("/v1/sites/river/kits", params={"include_retired": "true"})).json()) == 1


async def test_too_many_requests_get_429_with_retry_after(tmp_path: Path, influxd: Influxd, database: str) -> None:
    settings = api_settings_for(tmp_path, influxd.url, database, api_rate_limit_per_minute=6, api_rate_burst=3)
    async for api in running(settings):
        statuses = [(await api.client.get("/v1/quantities")).status_code for _ in range(5)]
        assert statuses[:3] == [200, 200, 200] and statuses[3] == 429
        response = await api.client.get("/v1/quantities")
        assert response.headers["retry-after"] == "10" and response.json()["error"] == "too_many_requests"


def test_the_rate_limiter_refills_over_time_and_keys_are_separate() -> None:
    limiter = RateLimiter(per_minute=60, burst=2)
    assert [limiter.take("a", now=0.0) for _ in range(3)] == [0.0, 0.0, 1.0]
    assert limiter.take("b", now=0.0) == 0.0
    assert limiter.take("a", now=1.0) == 0.0


def test_share_codes_forgive_case_spaces_and_dashes_but_not_lookalikes() -> None:
    code = sharecode.new_code()
    assert sharecode.normalise(sharecode.display(code).lower()) == code
    assert sharecode.normalise(" " + code[:4] + " " + code[4:] + " ") == code
    assert sharecode.normalise("O0IL-1234") is None and sharecode.normalise(code + "A") is None


async def test_a_store_that_is_down_gives_503_for_readings_and_kits_without_status(tmp_path: Path,
                                                                                   database: str) -> None:
    from lauks.services import free_port

    settings = api_settings_for(tmp_path, f"http://127.0.0.1:{free_port()}", database, influx_timeout_s=2)
    async for api in running(settings):
        api.add_site("s")
        api.add_kits("s", "k")
        response = await api.get("/v1/sites/s/readings", params={"start": "2025-03-01", "end": "2025-03-02",
                                                                   "quantities": "temperature"})
        assert response.status_code == 503 and "try again" in response.json()["message"]
        kits = (await api.get("/v1/sites/s/kits")).json()
        assert kits[0]["name"] == "k" and kits[0]["status"] is None
        assert (await api.get("/v1/sites/s/latest")).status_code == 503
        assert (await api.client.get("/v1/health")).json()["store"] is False
