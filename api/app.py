"""The FastAPI application: routers, error handlers, rate limiting, and what it holds open while it runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

import web
from api import docs_assets, errors
from api.deps import SettingsDep, rate_limit
from api.frozen import Freezer
from api.ratelimit import OpenedCodes, RateLimiter
from api.routers import calibrations, datasets, firmware, quantities, readings, sites
from api.settings import ApiSettings
from lauks.influx import InfluxError
from metastore.db import open_store

DESCRIPTION = """Datasets for classes from the Lauks sensor kits.

Staff send `Authorization: Bearer <token>` (create one with `lauks token create --name NAME`).
Classes read a dataset with its share code at `/v1/datasets/<code>`, no account needed.
Every error is JSON: `{"error": "<code>", "message": "<what to do>"}`."""


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or ApiSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.sessions = open_store(settings.database_url)
        app.state.freezer.sweep()  # temporary files of frozen datasets that a crash left
        app.state.influx = settings.influx_client(max_connections=32)
        try:
            await app.state.influx.create_database(settings.influx_database)  # idempotent; empty until data comes
        except InfluxError:
            pass  # the store may come up later; requests say so with a 503
        try:
            yield
        finally:
            await app.state.influx.aclose()
            app.state.sessions.kw["bind"].dispose()

    # /docs is served by docs_assets with its own Swagger UI files (FastAPI's page loads them from a CDN, blank
    # offline); no /redoc: it too loads from a CDN, and Swagger UI documents the same OpenAPI document.
    app = FastAPI(title="Lauks API", version="1", description=DESCRIPTION, lifespan=lifespan,
                  dependencies=[Depends(rate_limit)], docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.limiter = RateLimiter(settings.api_rate_limit_per_minute, settings.api_rate_burst)
    app.state.freezer = Freezer(settings.datasets_dir)
    app.state.code_failures = RateLimiter(settings.api_code_failures_per_minute, settings.api_code_failure_burst)
    app.state.opened_codes = OpenedCodes()
    errors.install(app)
    docs_assets.install(app)
    web.install(app)  # the pages at /, after the API's routes so /v1 and /docs keep theirs
    for module in (quantities, sites, calibrations, readings, datasets, firmware):
        app.include_router(module.router)

    @app.get("/v1/health", tags=["health"], responses=errors.responses(),
             summary="Is the API up, and can it reach the readings store?")
    async def health(settings: SettingsDep) -> dict[str, object]:
        return {"api": "ok", "store": await app.state.influx.healthy(), "database": settings.influx_database}

    return app
