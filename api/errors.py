"""Errors as JSON with a message a teacher can act on: ``{"error": "<code>", "message": "..."}``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


class ApiError(Exception):
    """A request we refuse, with the HTTP status, a stable code and a sentence for a person."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


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


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, error: ApiError) -> JSONResponse:
        return JSONResponse(_body(error.code, error.message), status_code=error.status, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [_describe(e) for e in error.errors()]
        return JSONResponse(_body("invalid_request", "; ".join(problems) or "the request is not valid",
                                  problems=problems), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        message = str(error.detail) if error.status_code != 404 else "no such page: the API lives under /v1 (see /docs)"
        return JSONResponse(_body(f"http_{error.status_code}", message), status_code=error.status_code,
                            headers=getattr(error, "headers", None))
