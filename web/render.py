"""Rendering a page: the request's ``Page`` (language, time zone, who is signed in, CSRF) and Jinja2.

Templates autoescape everything; a message is translated with ``{{ _("...") }}`` or ``{% trans %}``,
placeholders as ``%(name)s`` (``_("Last heard %(ago)s", ago=...)``), whose values are escaped too.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from api.ratelimit import RateLimiter, address_key
from metastore.db import StaffToken
from web import i18n, security
from web.assets import static_url, vendor_url
from web.session import is_https, staff_of

TEMPLATES = Path(__file__).parent / "templates"
_current: contextvars.ContextVar[i18n.Translator] = contextvars.ContextVar("translator")


class PageError(Exception):
    """A friendly error page: ``message`` already translated, or a ``code`` that web/errors.py words."""

    def __init__(self, status: int, code: str, message: str | None = None, *, wait_s: int | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(code)
        self.status, self.code, self.message, self.wait_s = status, code, message, wait_s
        self.headers = headers or {}


def _gettext(message: str) -> str:
    return _current.get().gettext(message)


def _ngettext(singular: str, plural: str, n: int) -> str:
    return _current.get().pick(singular, plural, n)


environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, extensions=["jinja2.ext.i18n"],
    undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
environment.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
environment.globals.update(static=static_url, vendor=vendor_url, LOCALES=i18n.LOCALES, LANGUAGE_NAMES=i18n.NAMES)


@dataclass
class Page:
    """Everything a page needs to know about the request it answers."""

    request: Request
    t: i18n.Translator
    embed: bool = False
    _cookies: dict[str, str] = field(default_factory=dict)
    _csrf_cookie: str | None = None

    @classmethod
    def of(cls, request: Request, *, embed: bool = False) -> Page:
        settings = request.app.state.settings
        query_lang = request.query_params.get("lang")
        locale = i18n.negotiate(query_lang, None if embed else request.cookies.get(i18n.COOKIE),
                                request.headers.get("accept-language"))
        page = cls(request, i18n.Translator(locale, ZoneInfo(settings.api_timezone)), embed)
        if query_lang and query_lang.lower() == locale and not embed:
            page._cookies[i18n.COOKIE] = locale  # the switcher's choice sticks
        return page

    @property
    def settings(self) -> Any:
        return self.request.app.state.settings

    @property
    def staff(self) -> StaffToken | None:
        return None if self.embed else staff_of(self.request)

    @property
    def can_read(self) -> bool:
        """Public pages follow LAUKS_API_PUBLIC_READ; signed-in staff always read."""
        return bool(self.settings.api_public_read) or self.staff is not None

    def require_reader(self) -> None:
        if not self.can_read:
            raise PageError(401, "sign_in_needed")

    def require_staff(self) -> StaffToken:
        staff = self.staff
        if staff is None:
            raise PageError(401, "staff_only")
        return staff

    # --- CSRF and failure budget -----------------------------------------------------------------

    @property
    def csrf(self) -> str:
        """The token for a form's hidden ``csrf`` field (sets the cookie it is checked against)."""
        if self._csrf_cookie is None:
            self._csrf_cookie = self.request.cookies.get(security.CSRF_COOKIE) or security.new_csrf_cookie()
            if self._csrf_cookie != self.request.cookies.get(security.CSRF_COOKIE):
                self._cookies[security.CSRF_COOKIE] = self._csrf_cookie
        return security.csrf_token(self.request.app.state.session_key, self._csrf_cookie)

    def require_csrf(self, field_value: str | None) -> None:
        """Refuse a form post without the token of this browser's cookie, or from another origin."""
        ok = security.csrf_ok(self.request.app.state.session_key, self.request.cookies.get(security.CSRF_COOKIE),
                              field_value) and security.same_origin(self.request)
        if not ok:
            raise PageError(403, "csrf")

    def rotate_csrf(self, response: Response) -> None:
        response.set_cookie(security.CSRF_COOKIE, security.new_csrf_cookie(), httponly=True, samesite="strict",
                            secure=is_https(self.request), path="/")

    def _failures_key(self) -> str:
        from api.deps import client_of
        return address_key(client_of(self.request))

    def wait_if_too_many_failures(self) -> None:
        """The "too many tries, wait N s" page while this address's budget of wrong codes is spent."""
        limiter: RateLimiter = self.request.app.state.code_failures
        wait = limiter.wait(self._failures_key())
        if wait:
            seconds = int(RateLimiter.retry_after(wait))
            raise PageError(429, "too_many_tries", wait_s=seconds, headers={"Retry-After": str(seconds)})

    def count_failure(self) -> None:
        limiter: RateLimiter = self.request.app.state.code_failures
        limiter.take(self._failures_key())

    # --- links ---------------------------------------------------------------------------------

    def absolute(self, path: str) -> str:
        """An absolute URL of ``path``: on LAUKS_API_PUBLIC_URL when it is set, else as this request came."""
        base = self.settings.api_public_url.rstrip("/") or str(self.request.base_url).rstrip("/")
        return base + path

    def lang_link(self, locale: str) -> str:
        query = dict(self.request.query_params)
        query["lang"] = locale
        return f"{self.request.url.path}?{urlencode(query)}"

    def now(self) -> datetime:
        return datetime.now(UTC)


def render(page: Page, template: str, *, status: int = 200, headers: dict[str, str] | None = None,
           **context: Any) -> HTMLResponse:
    token = _current.set(page.t)
    try:
        html = environment.get_template(template).render(page=page, t=page.t, **context)
    finally:
        _current.reset(token)
    response = HTMLResponse(html, status_code=status, headers=headers)
    response.headers.setdefault("Cache-Control", "no-cache" if page.embed else "private, no-cache")
    response.headers["Content-Language"] = page.t.locale
    if not page.embed:
        response.headers["Vary"] = "Accept-Language, Cookie"
        for name, value in page._cookies.items():
            strict = name == security.CSRF_COOKIE
            response.set_cookie(name, value, max_age=None if strict else 365 * 86400, httponly=True,
                                samesite="strict" if strict else "lax", secure=is_https(page.request), path="/")
    return response
