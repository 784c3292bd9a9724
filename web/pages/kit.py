"""Pages: the kit page (the pupil's page), with its chart data and live updates mounted beside it."""

from __future__ import annotations

from fastapi import APIRouter

from web import series

router = APIRouter()
router.include_router(series.router)
