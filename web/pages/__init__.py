"""The page routers, one module per part of the app; each has a ``router`` (an ``APIRouter``)."""

from __future__ import annotations

from fastapi import FastAPI

from web.pages import classes, embed, fleet, kit, public, teacher


def install(app: FastAPI) -> None:
    for module in (public, kit, classes, teacher, fleet, embed):
        app.include_router(module.router, include_in_schema=False)
