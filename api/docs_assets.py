"""The interactive API docs at /docs (Swagger UI), served with their own files so they work with no network:
swagger-ui-dist comes from npm (web/package.json, installed by `make node-deps`), never from a CDN."""

from __future__ import annotations

import html
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"
# The only files served, with their types: a fixed table, so no request can name any other file.
FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
# The URLs carry the package's version, so a browser may keep the files until the next upgrade.
CACHE_CONTROL = "public, max-age=604800, immutable"
INSTALL_HINT = "make node-deps"
# Swagger UI is started by web/static/docs.js (validatorUrl off: its default fetches a badge from
# validator.swagger.io, and nothing may leave the school), not by an inline script, which the CSP refuses.


def candidate_dirs() -> list[Path]:
    """Where swagger-ui-dist may be: beside the code in a checkout (``make`` runs npm in web/), then where an
    installed copy keeps its data (the Docker image copies it to <prefix>/share/lauks/swagger-ui-dist)."""
    checkout = Path(__file__).resolve().parents[1] / "web" / "node_modules" / "swagger-ui-dist"
    return [checkout, Path(sys.prefix) / "share" / "lauks" / "swagger-ui-dist"]


@dataclass(frozen=True)
class SwaggerAssets:
    folder: Path
    version: str

    def url(self, name: str) -> str:
        return f"{ASSETS_PATH}/{name}?v={self.version}"


def find_assets(candidates: Iterable[Path]) -> SwaggerAssets | None:
    """The first folder that holds every file of ``FILES``, or None when npm has not been run."""
    for folder in candidates:
        if all((folder / name).is_file() for name in FILES):
            try:
                version = str(json.loads((folder / "package.json").read_text())["version"])
            except (OSError, ValueError, KeyError):
                version = "unknown"
            return SwaggerAssets(folder, version)
    return None


def missing_page(title: str, openapi_url: str, looked_in: Iterable[Path]) -> HTMLResponse:
    """What /docs says instead of a blank page when the files are not installed."""
    places = "".join(f"<li><code>{html.escape(str(folder))}</code></li>" for folder in looked_in)
    body = f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}: docs not installed</title></head>
<body>
<h1>The interactive docs are not installed on this server</h1>
<p>The API itself works. Its docs page needs Swagger UI's files, which come from npm and are not
installed here. In the Lauks folder, run <code>{INSTALL_HINT}</code> (or <code>cd web &amp;&amp; npm ci</code>)
and restart <code>lauks api</code>.</p>
<p>Meanwhile the API's description is at <a href="{openapi_url}">{openapi_url}</a>.</p>
<p>Looked in:</p><ul>{places}</ul>
</body>
</html>
"""
    return HTMLResponse(body, status_code=503, headers={"Cache-Control": "no-store"})


def docs_page(title: str, openapi_url: str, assets: SwaggerAssets) -> HTMLResponse:
    from web.assets import static_url  # the start-up script is one of the web app's static files

    body = f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="stylesheet" href="{html.escape(assets.url("swagger-ui.css"))}">
<link rel="icon" href="{html.escape(assets.url("favicon-32x32.png"))}" type="image/png"></head>
<body>
<div id="swagger-ui" data-openapi="{html.escape(openapi_url)}"></div>
<script src="{html.escape(assets.url("swagger-ui-bundle.js"))}"></script>
<script src="{html.escape(static_url("docs.js"))}"></script>
</body>
</html>
"""
    return HTMLResponse(body)


def install(app: FastAPI, candidates: Iterable[Path] | None = None) -> None:
    """Serve /docs and its files from ``candidates`` (by default ``candidate_dirs()``). The app must be made
    with ``docs_url=None`` so FastAPI's own CDN-loading page is not there. The folder is looked up on each
    request to /docs, so running ``make node-deps`` later needs no restart."""
    folders = list(candidate_dirs() if candidates is None else candidates)
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(DOCS_PATH, include_in_schema=False)
    async def docs() -> HTMLResponse:
        assets = find_assets(folders)
        if assets is None:
            return missing_page(app.title, openapi_url, folders)
        return docs_page(f"{app.title} docs", openapi_url, assets)

    @app.get(ASSETS_PATH + "/{name}", include_in_schema=False)
    async def asset(name: str) -> FileResponse:
        assets = find_assets(folders)
        if name not in FILES or assets is None:
            raise HTTPException(404, f"no docs file {name!r}: run {INSTALL_HINT}")
        return FileResponse(assets.folder / name, media_type=FILES[name],
                            headers={"Cache-Control": CACHE_CONTROL})
