"""Errors as JSON with a message a teacher can act on: ``{"error": "<code>", "message": "..."}``.

The store's refusals (``metastore.errors``) get their HTTP status here, and only here."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from lauks.influx import InfluxError
from metastore.errors import Conflict, Gone, Invalid, NotFound, Required, StoreError


class ErrorOut(BaseModel):
    """Every error the API gives."""

    error: str = Field(description="a stable code for programs, e.g. unknown_site or too_many_requests")
    message: str = Field(description="a sentence for a person, saying what to do")
    problems: list[str] | None = Field(None, description="422 only: each part of the request that is not valid")


MEANINGS = {
    400: "The request fits the schema but cannot be answered as asked (a reversed or too long window, a time "
         "zone or bucket size we do not know, a year outside 2000-2199, a text with a NUL character, a time "
         "without an offset): the message says what to change.",
    401: "A staff token is needed, or the one sent is not known or was revoked.",
    404: "No such site, kit, quantity or share code: the message says where the list is.",
    409: "It exists already.",
    410: "The share code has expired.",
    422: "The request does not fit the schema (a missing or wrongly typed field, a null where none is allowed).",
    429: "Too many requests from this address or token, or too many share codes that do not exist: wait for "
         "Retry-After seconds.",
    502: "The readings store refused the query.",
    503: "The readings store is not answering: try again in a minute.",
}
_HEADERS = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}},
    429: {"Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"},
                          "description": "seconds to wait before the next request"}},
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error responses of an operation for its OpenAPI document; 429 is added to every one (the limit is
    global)."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in sorted({*statuses, 429}):
        entry: dict[str, Any] = {"model": ErrorOut, "description": MEANINGS[status]}
        if status in _HEADERS:
            entry["headers"] = _HEADERS[status]
        out[status] = entry
    return out


class ApiError(Exception):
    """A request we refuse, with the HTTP status, a stable code and a sentence for a person."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


# The HTTP status of each kind of refusal of the store.
STORE_STATUS: dict[type[StoreError], int] = {NotFound: 404, Invalid: 400, Required: 422, Conflict: 409, Gone: 410}


def store_status(error: StoreError) -> int:
    """The status of a store's refusal: its own kind's, else its nearest base kind's; 400 for a kind not listed."""
    return next((STORE_STATUS[kind] for kind in type(error).__mro__ if kind in STORE_STATUS), 400)


def not_found(what: str, message: str) -> ApiError:
    return ApiError(404, f"unknown_{what}", message)


def bad_request(code: str, message: str) -> ApiError:
    return ApiError(400, code, message)


def _body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": code, "message": message, **extra}


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("query", "body", "path"))
    text = str(error.get("msg", "is not valid"))
    return f"{where}: {text}" if where else text


def _page(request: Request, status: int, code: str, headers: dict[str, str] | None = None) -> Response | None:
    """The web app's friendly page for an error on one of its pages (web/errors.py), else None: JSON."""
    state = request.app.state
    if getattr(state, "is_page", None) is None or not state.is_page(request):
        return None
    page: Response = state.error_page(request, status, code, None, headers)
    return page


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError) -> Response:
        return (_page(request, error.status, error.code, error.headers)
                or JSONResponse(_body(error.code, error.message), status_code=error.status, headers=error.headers))

    @app.exception_handler(StoreError)
    async def _store_error(request: Request, error: StoreError) -> Response:
        return (_page(request, store_status(error), error.code)
                or JSONResponse(_body(error.code, error.message), status_code=store_status(error)))

    @app.exception_handler(InfluxError)
    async def _influx_error(request: Request, _error: InfluxError) -> Response:
        """A store that is down where no route said so itself: a 503, never a 500 with a trace."""
        return (_page(request, 503, "store_unavailable")
                or JSONResponse(_body("store_unavailable", "the readings store is not answering right now: try "
                                                          "again in a minute"), status_code=503))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> Response:
        problems = [_describe(e) for e in error.errors()]
        return (_page(request, 400, "invalid_request")
                or JSONResponse(_body("invalid_request", "; ".join(problems) or "the request is not valid",
                                      problems=problems), status_code=422))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> Response:
        message = str(error.detail) if error.status_code != 404 else "no such page: the API lives under /v1 (see /docs)"
        headers = dict(getattr(error, "headers", None) or {})
        if error.status_code == 405:
            allowed = allowed_methods(app, request)
            if allowed:
                headers["Allow"] = ", ".join(allowed)
            message = f"{request.method[:10]} is not a method of this path: use {headers.get('Allow', 'GET')}"
        return (_page(request, error.status_code, f"http_{error.status_code}", headers)
                or JSONResponse(_body(f"http_{error.status_code}", message), status_code=error.status_code,
                                headers=headers))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, _error: Exception) -> Response:
        """A bug: the log has the trace (Starlette logs it after this), the reader a sentence."""
        return (_page(request, 500, "server_error")
                or JSONResponse(_body("server_error", "something went wrong on the server: try again, and tell "
                                                      "the staff if it keeps happening"), status_code=500))


def allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method the OpenAPI document gives the request's path (with HEAD wherever GET is), not only the
    first matching route's as Starlette's 405 says; for pages outside the document, Starlette's answer."""
    if not hasattr(app.state, "path_methods"):
        table = []
        for template, operations in app.openapi().get("paths", {}).items():
            pattern = re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$")
            methods = {m.upper() for m in operations if m.upper() in _ORDER}
            table.append((pattern, methods | ({"HEAD"} if "GET" in methods else set())))
        app.state.path_methods = table
    path = request.url.path
    found: set[str] = set()
    for pattern, methods in app.state.path_methods:
        if pattern.match(path):
            found |= methods
    return sorted(found, key=_ORDER.index)


_ORDER = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]
