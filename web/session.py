"""Staff sessions: sign in once with a staff token, then an HttpOnly, SameSite cookie carries the session.

The cookie holds the token's row id, an expiry and a nonce, signed with HMAC-SHA256 by the server's
session key; never the token itself. Every request looks the row up again, so revoking the token with
``lauks token revoke`` ends its sessions at once. The cookie is Secure whenever the request came over
HTTPS (directly, or through a trusted proxy that says so) or the public address is https.

The key is ``LAUKS_API_SESSION_SECRET`` when set (replicas behind one address must share it), else a
random key kept in ``<state_dir>/web-session.key`` (0600), made on first start.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import FastAPI, Form, Request
from fastapi.responses import RedirectResponse, Response

from lauks.privatefile import private_dir, write_private
from metastore import registry
from metastore.db import StaffToken

SESSION_COOKIE = "lauks_session"
KEY_FILE = "web-session.key"


def session_key(secret: str | None, state_dir: Path) -> bytes:
    if secret:
        return hashlib.sha256(b"lauks-session|" + secret.encode()).digest()
    path = state_dir / KEY_FILE
    try:
        raw = path.read_bytes().strip()
        if len(raw) >= 32:
            return raw
    except FileNotFoundError:
        pass
    private_dir(state_dir)
    key = secrets.token_hex(32).encode()
    write_private(path, key)
    return path.read_bytes().strip()  # another process may have made it at the same instant: theirs wins


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(key: bytes, token_id: int, lifetime_s: int, now: float | None = None) -> str:
    body = _b64(json.dumps({"t": token_id, "e": int((now or time.time()) + lifetime_s),
                            "n": secrets.token_urlsafe(8)}, separators=(",", ":")).encode())
    mac = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
    return f"{body}.{mac}"


def verify(key: bytes, cookie: str | None, now: float | None = None) -> int | None:
    """The staff token id of a valid, unexpired session cookie, else None."""
    if not cookie or cookie.count(".") != 1 or len(cookie) > 400:
        return None
    body, mac = cookie.split(".")
    expected = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, mac):
        return None
    try:
        data = json.loads(_unb64(body))
        token_id, expires = int(data["t"]), int(data["e"])
    except (ValueError, KeyError, TypeError):
        return None
    return token_id if expires > (now or time.time()) else None


def is_https(request: Request) -> bool:
    settings = request.app.state.settings
    if request.url.scheme == "https" or settings.api_public_url.startswith("https://"):
        return True
    from api.deps import client_of  # the trusted-proxy rule lives with the API's
    peer = request.client.host if request.client else ""
    forwarded = request.headers.get("x-forwarded-proto", "").lower() == "https"
    return forwarded and client_of(request) != peer


def staff_of(request: Request) -> StaffToken | None:
    """The signed-in staff member of this request, or None (looked up once per request)."""
    if hasattr(request.state, "staff"):
        cached: StaffToken | None = request.state.staff
        return cached
    staff = None
    token_id = verify(request.app.state.session_key, request.cookies.get(SESSION_COOKIE))
    if token_id is not None:
        with request.app.state.sessions() as db:
            row = db.get(StaffToken, token_id)
            staff = row if row is not None and row.revoked_at is None else None
    request.state.staff = staff
    return staff


def safe_next(target: str | None) -> str:
    """A path on this site to go to after signing in; anything else (another host, ``//evil``) is ``/``."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


def install(app: FastAPI) -> None:
    settings = app.state.settings
    secret = settings.api_session_secret.get_secret_value() if settings.api_session_secret else None
    app.state.session_key = session_key(secret, settings.state_dir)
    from web.render import Page, render  # render needs session's staff_of; import here to keep one direction

    @app.get("/signin", include_in_schema=False)
    async def signin_form(request: Request, next: str = "/") -> Response:
        page = Page.of(request)
        return render(page, "signin.html", next=safe_next(next), failed=False)

    @app.post("/signin", include_in_schema=False)
    async def signin(request: Request, token: Annotated[str, Form(max_length=200)] = "",
                     csrf: Annotated[str, Form(max_length=200)] = "",
                     next: Annotated[str, Form(max_length=2000)] = "/") -> Response:
        page = Page.of(request)
        page.require_csrf(csrf)
        page.wait_if_too_many_failures()
        with request.app.state.sessions() as db:
            staff = registry.staff_for(db, token.strip()) if token.strip() else None
        if staff is None:
            page.count_failure()
            return render(page, "signin.html", status=401, next=safe_next(next), failed=True)
        response = RedirectResponse(safe_next(next), status_code=303)
        response.set_cookie(SESSION_COOKIE, sign(request.app.state.session_key, staff.id,
                                                 settings.api_session_hours * 3600),
                            max_age=settings.api_session_hours * 3600, httponly=True, samesite="lax",
                            secure=is_https(request), path="/")
        page.rotate_csrf(response)
        return response

    @app.post("/signout", include_in_schema=False)
    async def signout(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
        page = Page.of(request)
        page.require_csrf(csrf)
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=is_https(request))
        page.rotate_csrf(response)
        return response
