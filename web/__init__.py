"""The Lauks web app: pages for pupils, teachers and staff, served by the API's own process at ``/``.

Pages are rendered on the server (Jinja2), so they work without a front-end build; a little JavaScript
(web/static) draws the charts and the live updates. ``install(app)`` mounts it into the API's FastAPI app.
The JSON API stays under ``/v1``; the pages' own data (chart series, live events) is under ``/w``.
"""

from __future__ import annotations

from fastapi import FastAPI

from web import assets, errors, i18n, security, session
from web.compression import PageCompression


def install(app: FastAPI) -> None:
    """Add the pages, their data endpoints, static files, security headers and HTML error pages to ``app``."""
    from web import pages  # the page routers; imported here so that ``web`` itself stays light

    app.state.translator_for = lambda locale: i18n.Translator(locale).gettext  # the zip's README (api/dataset.py)
    security.install(app)
    app.add_middleware(PageCompression)
    errors.install(app)
    assets.install(app)
    session.install(app)
    pages.install(app)
