"""Security headers on every response, and CSRF protection for the pages' forms.

Headers (a pure ASGI middleware, so streaming downloads pass through untouched):
- a Content-Security-Policy that allows no inline script anywhere: scripts come from this server's
  own files; map tiles are the one other origin images may come from (``LAUKS_API_MAP_TILES_URL``);
- framing is refused everywhere (``frame-ancestors 'none'``, ``X-Frame-Options: DENY``) except under
  ``/embed/``, the charts a school puts in an iframe on its own site;
- ``nosniff``, a same-origin referrer (share codes are in URLs), no opener across origins.

CSRF: a signed double-submit token. A page with a form sets a random ``lauks_csrf`` cookie (HttpOnly,
SameSite=Strict) and puts HMAC(key, cookie) in the form; a POST must bring both, and they must match.
A cross-site page can neither read the cookie nor make the HMAC. An ``Origin`` header naming another
site is refused as well.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSRF_COOKIE = "lauks_csrf"
CSRF_FIELD = "csrf"
EMBED_PREFIX = "/embed/"
DOCS_PREFIX = "/docs"


def tiles_origin(url: str) -> str:
    """``https://tile.openstreetmap.org`` of a tile URL template; '' when there is none or it is not http(s)."""
    parts = urlsplit(url.replace("{s}", "a"))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ""
    origin = f"{parts.scheme}://{parts.netloc}"
    return origin.replace("://a.", "://*.") if "{s}" in url else origin


def content_security_policy(path: str, tiles: str) -> str:
    frame = "*" if path.startswith(EMBED_PREFIX) else "'none'"
    # Swagger UI sets style attributes in its markup; its script is our own file (api/docs_assets.py)
    style = "'self' 'unsafe-inline'" if path.startswith(DOCS_PREFIX) else "'self'"
    images = "'self' data:" + (f" {tiles}" if tiles else "")
    return (f"default-src 'none'; script-src 'self'; style-src {style}; img-src {images}; connect-src 'self'; "
            f"font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors {frame}")


class SecurityHeaders:
    def __init__(self, app: ASGIApp, tiles: str) -> None:
        self.app = app
        self.tiles = tiles

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        extra = [
            (b"content-security-policy", content_security_policy(path, self.tiles).encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
        ]
        if not path.startswith(EMBED_PREFIX):
            extra.append((b"x-frame-options", b"DENY"))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in extra if h[0] not in names)]
            await send(message)

        await self.app(scope, receive, with_headers)


def install(app: FastAPI) -> None:
    settings = app.state.settings
    app.add_middleware(SecurityHeaders, tiles=tiles_origin(settings.api_map_tiles_url))


# --- CSRF ------------------------------------------------------------------------------------------------

def new_csrf_cookie() -> str:
    return secrets.token_urlsafe(24)


def csrf_token(key: bytes, cookie: str) -> str:
    return hmac.new(key, b"csrf|" + cookie.encode(), hashlib.sha256).hexdigest()


def csrf_ok(key: bytes, cookie: str | None, field: str | None) -> bool:
    if not cookie or not field:
        return False
    return hmac.compare_digest(csrf_token(key, cookie), field)


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from a page of another origin: ours is the Host the
    request came to, or the public address (LAUKS_API_PUBLIC_URL), which a reverse proxy that rewrites Host
    still serves."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None  # "null": a sandboxed or privacy-stripped origin, never ours
    ours = {request.headers.get("host", "")}
    public = str(getattr(request.app.state.settings, "api_public_url", "") or "")
    if public:
        ours.add(urlsplit(public).netloc)
    return urlsplit(origin).netloc in ours
