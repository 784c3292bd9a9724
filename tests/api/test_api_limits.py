"""Rate limits that a pupil with a script cannot get round: per valid token or else per address, a budget
of wrong share codes per address, and a table of buckets that cannot be flushed."""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_fixtures import api_process, api_settings_for, lauks, process_env, running, staff_token

from api.ratelimit import RateLimiter, address_key, client_address
from lauks.services import Influxd
from metastore import sharecode

# `lauks api` with its limits low enough to meet within a test
LIMITS = {"RATE_LIMIT_PER_MINUTE": "600", "RATE_BURST": "50", "CODE_FAILURES_PER_MINUTE": "60",
          "CODE_FAILURE_BURST": "5"}


def random_authorization() -> str:
    scheme = secrets.choice(["Bearer", "bearer", "BEARER", "Basic", "Token", ""])
    return f"{scheme} {secrets.choice(['lauks_', ''])}{secrets.token_urlsafe(24)}".strip()


def from_address(url: str, address: str) -> httpx.Client:
    """A client whose connections come from ``address`` (any of 127.0.0.0/8 reaches the server on loopback)."""
    return httpx.Client(base_url=url, transport=httpx.HTTPTransport(local_address=address), timeout=10)


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory, influxd: Influxd) -> Iterator[tuple[str, str, str]]:
    """A limited `lauks api` with one class dataset: (url, staff token, share code)."""
    state = tmp_path_factory.mktemp("limits")
    env = process_env(state, influxd.url, "limits", **LIMITS)
    assert lauks(env, "site", "add", "school").returncode == 0
    assert lauks(env, "kit", "register", "school", "k1").returncode == 0
    token = staff_token(env)
    with api_process(env) as url:
        made = httpx.post(f"{url}/v1/datasets", headers={"Authorization": f"Bearer {token}"}, json={
            "title": "Rain", "site": "school", "quantities": ["rain"], "start": "2025-04-01", "end": "2025-04-02"})
        assert made.status_code == 201, made.text
        yield url, token, made.json()["code"]


def test_200_requests_with_random_authorization_headers_from_one_address_meet_429s(
        limited: tuple[str, str, str]) -> None:
    url, token, _code = limited
    with from_address(url, "127.0.0.2") as client:
        statuses = Counter(client.get("/v1/quantities", headers={"Authorization": random_authorization()}).status_code
                           for _ in range(200))
        assert statuses[429] >= 100, statuses
        # the address is spent; a teacher's valid token there is not
        assert client.get("/v1/sites", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_200_share_code_guesses_from_one_address_meet_429s_and_even_the_right_code_waits(
        limited: tuple[str, str, str]) -> None:
    url, _token, code = limited
    with from_address(url, "127.0.0.3") as client:
        statuses: Counter[int] = Counter()
        for _ in range(200):
            guess = sharecode.display(sharecode.new_code())
            response = client.get(f"/v1/datasets/{guess}", headers={
                "Authorization": random_authorization(), "X-Forwarded-For": f"10.0.{secrets.randbelow(256)}.1"})
            statuses[response.status_code] += 1
        assert statuses[404] <= 5 + 3 and statuses[429] >= 190, statuses  # the budget and a second or so of refill
        assert client.get(f"/v1/datasets/{code}").status_code == 429  # no oracle while spent


def test_the_right_code_works_from_another_address_and_after_the_wait(limited: tuple[str, str, str]) -> None:
    url, _token, code = limited
    with from_address(url, "127.0.0.4") as guesser, from_address(url, "127.0.0.5") as pupil:
        for _ in range(10):
            guesser.get(f"/v1/datasets/{sharecode.display(sharecode.new_code())}")
        refused = guesser.get(f"/v1/datasets/{code}")
        assert refused.status_code == 429 and refused.json()["error"] == "too_many_wrong_codes"
        assert "typos" in refused.json()["message"]
        assert pupil.get(f"/v1/datasets/{code}").status_code == 200
        assert pupil.get(f"/v1/datasets/{code.lower()}/data.csv").status_code == 200
        wait = float(guesser.get(f"/v1/datasets/{code}").headers["retry-after"])
        time.sleep(wait + 0.1)
        assert guesser.get(f"/v1/datasets/{code}").status_code == 200


def test_a_class_behind_one_address_keeps_its_code_while_a_classmate_guesses(limited: tuple[str, str, str]) -> None:
    url, token, code = limited
    other = httpx.post(f"{url}/v1/datasets", headers={"Authorization": f"Bearer {token}"}, json={
        "title": "Wind", "site": "school", "quantities": ["wind_speed"], "start": "2025-04-01", "end": "2025-04-02"})
    assert other.status_code == 201, other.text
    with from_address(url, "127.0.0.6") as school:
        assert school.get(f"/v1/datasets/{code}").status_code == 200  # the class opens its dataset
        for _ in range(10):  # someone at the same school address guesses until the budget is spent
            school.get(f"/v1/datasets/{sharecode.display(sharecode.new_code())}")
        assert school.get(f"/v1/datasets/{sharecode.display(sharecode.new_code())}").status_code == 429
        # the code the class already opened goes on working, typed either way; a code not opened from here waits
        assert school.get(f"/v1/datasets/{code.lower()}").status_code == 200
        assert school.get(f"/v1/datasets/{code}/data.csv").status_code == 200
        assert school.get(f"/v1/datasets/{other.json()['code']}").status_code == 429


async def test_the_scheme_spelling_of_a_valid_token_does_not_give_it_more_buckets(
        tmp_path: Path, influxd: Influxd, database: str) -> None:
    settings = api_settings_for(tmp_path, influxd.url, database, api_rate_limit_per_minute=6, api_rate_burst=4)
    async for api in running(settings):
        statuses = [(await api.client.get("/v1/sites", headers={"Authorization": f"{scheme} {api.token}"})).status_code
                    for scheme in ("Bearer", "bearer", "BEARER", "bEaReR", "Bearer", "bearer")]
        assert statuses == [200, 200, 200, 200, 429, 429]


def test_filling_the_table_with_new_keys_does_not_reset_a_spent_bucket() -> None:
    limiter = RateLimiter(per_minute=60, burst=3, max_keys=100)
    for _ in range(3):
        assert limiter.take("addr:victim", now=0.0) == 0.0
    for i in range(10_000):  # an attacker with many addresses
        limiter.take(f"addr:attacker-{i}", now=0.5)
    assert len(limiter) <= limiter.max_keys + 1
    assert limiter.take("addr:victim", now=0.5) > 0  # still spent: not forgotten, not reset


def test_buckets_that_have_refilled_make_room_for_new_keys() -> None:
    limiter = RateLimiter(per_minute=60, burst=3, max_keys=100)
    for i in range(100):
        limiter.take(f"addr:{i}", now=0.0)
    limiter.take("addr:spent", now=0.0)  # the table is full: this one shares the overflow bucket
    assert limiter.take("addr:new", now=10.0) == 0.0  # 10 s later the first 100 are full again and forgotten
    assert len(limiter) <= 3


def test_an_ipv6_host_is_one_bucket_for_its_whole_64_and_ipv4_mapped_is_ipv4() -> None:
    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff::9") == "addr:2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:10.0.0.7") == address_key("10.0.0.7") == "addr:10.0.0.7"


def test_x_forwarded_for_counts_only_from_a_trusted_proxy() -> None:
    assert client_address("203.0.113.9", "10.9.9.9", []) == "203.0.113.9"
    assert client_address("203.0.113.9", "10.9.9.9", ["10.0.0.2"]) == "203.0.113.9"
    assert client_address("10.0.0.2", "198.51.100.1, 198.51.100.7", ["10.0.0.0/24"]) == "198.51.100.7"
    assert client_address("10.0.0.2", "198.51.100.7, 10.0.0.3", ["10.0.0.0/24"]) == "198.51.100.7"
