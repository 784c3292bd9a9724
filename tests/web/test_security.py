"""The pages' security: headers on every response, staff sessions in a signed cookie, CSRF on every form.

The app runs in-process (FastAPI's TestClient) on a real SQLite store; the readings store is not needed here.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from metastore import registry
from web import security, session

TOKEN_NAME = "Ms Ozola"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = ApiSettings(state_dir=tmp_path, influx_url="http://127.0.0.1:9", api_trusted_proxies=["10.0.0.2"],
                           api_map_tiles_url="https://tile.example.org/{z}/{x}/{y}.png")
    with TestClient(create_app(settings), base_url="http://lauks.test") as made:
        yield made


def _token(client: TestClient) -> str:
    with client.app.state.sessions() as db:  # type: ignore[attr-defined]
        return registry.create_token(db, TOKEN_NAME)


def _csrf(client: TestClient) -> str:
    page = client.get("/signin")
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text)
    assert found, page.text
    return found.group(1)


def _sign_in(client: TestClient, token: str) -> None:
    answer = client.post("/signin", data={"token": token, "csrf": _csrf(client), "next": "/signin"},
                         follow_redirects=False)
    assert answer.status_code == 303, answer.text


@pytest.mark.parametrize("path", ["/", "/signin", "/v1/health", "/nope", "/docs", "/static/lauks.css"])
def test_no_inline_script_and_no_framing_outside_embeds(client: TestClient, path: str) -> None:
    headers = client.get(path).headers
    policy = headers["content-security-policy"]
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy.split("style-src")[0]
    assert "frame-ancestors 'none'" in policy and headers["x-frame-options"] == "DENY"
    assert "img-src 'self' data: https://tile.example.org;" in policy  # the map tiles' origin, and no other
    assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "same-origin"


def test_embeds_alone_may_be_framed(client: TestClient) -> None:
    headers = client.get("/embed/kit/nowhere/none/temperature").headers
    assert "frame-ancestors *" in headers["content-security-policy"]
    assert "x-frame-options" not in headers
    assert "set-cookie" not in headers  # an embed never sets a cookie


def test_a_page_error_is_a_friendly_page_in_the_readers_language(client: TestClient) -> None:
    answer = client.get("/no-such-page", headers={"Accept-Language": "lv"})
    assert answer.status_code == 404 and answer.headers["content-type"].startswith("text/html")
    assert "Šādas lapas nav" in answer.text and '<html lang="lv">' in answer.text
    assert "Traceback" not in answer.text
    assert client.get("/v1/no-such").json()["error"] == "http_404"  # the API keeps its JSON


def test_the_sign_in_form_needs_its_csrf_token(client: TestClient) -> None:
    token = _token(client)
    refused = client.post("/signin", data={"token": token}, follow_redirects=False)
    assert refused.status_code == 403 and "lauks_session" not in refused.headers.get("set-cookie", "")
    field = _csrf(client)
    client.cookies.set(security.CSRF_COOKIE, "another-browsers-cookie")  # a token made for another cookie
    refused = client.post("/signin", data={"token": token, "csrf": field}, follow_redirects=False)
    assert refused.status_code == 403


def test_a_form_posted_from_another_site_is_refused(client: TestClient) -> None:
    token, field = _token(client), _csrf(client)
    refused = client.post("/signin", data={"token": token, "csrf": field}, headers={"Origin": "https://evil.example"},
                          follow_redirects=False)
    assert refused.status_code == 403
    accepted = client.post("/signin", data={"token": token, "csrf": field}, headers={"Origin": "http://lauks.test"},
                           follow_redirects=False)
    assert accepted.status_code == 303


def test_behind_a_proxy_that_rewrites_host_the_public_address_is_our_origin(tmp_path: Path) -> None:
    settings = ApiSettings(state_dir=tmp_path, influx_url="http://127.0.0.1:9",
                           api_public_url="https://lauks.school.lv")
    # the browser is on https://lauks.school.lv; the proxy passes Host: 10.0.0.5:8443 on
    with TestClient(create_app(settings), base_url="https://10.0.0.5:8443") as made:
        token, field = _token(made), _csrf(made)
        accepted = made.post("/signin", data={"token": token, "csrf": field},
                             headers={"Origin": "https://lauks.school.lv"}, follow_redirects=False)
        assert accepted.status_code == 303
        refused = made.post("/signin", data={"token": token, "csrf": _csrf(made)},
                            headers={"Origin": "https://lauks.school.lv.evil.example"}, follow_redirects=False)
        assert refused.status_code == 403


def test_a_session_is_an_httponly_samesite_cookie_and_sign_out_ends_it(client: TestClient) -> None:
    token = _token(client)
    answer = client.post("/signin", data={"token": token, "csrf": _csrf(client), "next": "/signin"},
                         follow_redirects=False)
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("lauks_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie  # plain http here
    assert token not in cookie  # the token itself never goes into the cookie
    assert TOKEN_NAME in client.get("/signin").text  # the header shows who is signed in
    out = client.post("/signout", data={"csrf": _csrf(client)}, follow_redirects=False)
    assert out.status_code == 303
    assert TOKEN_NAME not in client.get("/signin").text


def test_a_wrong_token_is_refused_and_counted(client: TestClient) -> None:
    answer = client.post("/signin", data={"token": "lauks_not-a-token", "csrf": _csrf(client)})
    assert answer.status_code == 401 and "lauks_session" not in answer.headers.get("set-cookie", "")


def test_revoking_the_token_ends_its_sessions(client: TestClient) -> None:
    token = _token(client)
    _sign_in(client, token)
    assert TOKEN_NAME in client.get("/signin").text
    with client.app.state.sessions() as db:  # type: ignore[attr-defined]
        found = next(t for t in registry.list_tokens(db) if t.name == TOKEN_NAME)
        registry.revoke_token(db, found.id)
    assert TOKEN_NAME not in client.get("/signin").text


def test_the_cookie_is_secure_behind_an_https_proxy_we_trust(tmp_path: Path) -> None:
    settings = ApiSettings(state_dir=tmp_path, influx_url="http://127.0.0.1:9", api_trusted_proxies=["10.0.0.2"])
    with TestClient(create_app(settings), base_url="http://lauks.test", client=("10.0.0.2", 40000)) as made:
        token = _token(made)
        answer = made.post("/signin", data={"token": token, "csrf": _csrf(made)},
                           headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "192.0.2.7"},
                           follow_redirects=False)
    assert "Secure" in next(c for c in answer.headers.get_list("set-cookie") if c.startswith("lauks_session="))


def test_a_forwarded_proto_from_anybody_else_is_ignored(client: TestClient) -> None:
    answer = client.post("/signin", data={"token": _token(client), "csrf": _csrf(client)},
                         headers={"X-Forwarded-Proto": "https"}, follow_redirects=False)
    assert "Secure" not in next(c for c in answer.headers.get_list("set-cookie") if c.startswith("lauks_session="))


def test_session_cookies_are_signed_and_expire() -> None:
    key = b"k" * 32
    cookie = session.sign(key, 7, 3600, now=1000)
    assert session.verify(key, cookie, now=2000) == 7
    assert session.verify(key, cookie, now=1000 + 3601) is None  # expired
    assert session.verify(b"x" * 32, cookie, now=2000) is None  # another server's key
    body, mac = cookie.split(".")
    forged = session._b64(session._unb64(body).replace(b'"t":7', b'"t":1'))
    assert session.verify(key, f"{forged}.{mac}", now=2000) is None
    for junk in ("", "a.b", "...", "x" * 500, "e30.e30"):
        assert session.verify(key, junk) is None


@pytest.mark.parametrize(("target", "expected"), [
    ("/teach", "/teach"), ("/d/ABCD-2345?x=1", "/d/ABCD-2345?x=1"), ("//evil.example/x", "/"),
    ("https://evil.example", "/"), ("/\\evil.example", "/"), ("", "/"), (None, "/"), ("teach", "/"),
])
def test_after_sign_in_only_a_path_of_this_site_is_followed(target: str | None, expected: str) -> None:
    assert session.safe_next(target) == expected


def test_the_session_key_is_made_once_and_kept_private(tmp_path: Path) -> None:
    first = session.session_key(None, tmp_path)
    assert session.session_key(None, tmp_path) == first and len(first) >= 32
    assert (tmp_path / session.KEY_FILE).stat().st_mode & 0o077 == 0
    assert session.session_key("shared secret", tmp_path) != first  # replicas share LAUKS_API_SESSION_SECRET
    assert time.time() > 0
