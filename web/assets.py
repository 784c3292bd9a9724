"""Static files: the web app's own (web/static) and the libraries it uses from npm (web/node_modules).

Every URL carries a digest of its file (``?v=``), so browsers may keep them for a year and still see a
change at once. Only files in ``VENDOR`` can be served from node_modules: a fixed table, so no request
can name any other file. The libraries are installed by ``make node-deps``, never committed; a page
whose library is missing still renders (the charts and the map are extras, the values are in the HTML).
"""

from __future__ import annotations

import functools
import hashlib
import sys
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse

STATIC = Path(__file__).parent / "static"
CACHE_FOREVER = "public, max-age=31536000, immutable"
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".png": "image/png",
         ".svg": "image/svg+xml", ".ico": "image/x-icon", ".woff2": "font/woff2"}
# name served at /static/vendor/<name> -> path inside node_modules
VENDOR = {
    "uPlot.iife.min.js": "uplot/dist/uPlot.iife.min.js",
    "uPlot.min.css": "uplot/dist/uPlot.min.css",
    "leaflet.js": "leaflet/dist/leaflet.js",
    "leaflet.css": "leaflet/dist/leaflet.css",
    "images/marker-icon.png": "leaflet/dist/images/marker-icon.png",
    "images/marker-icon-2x.png": "leaflet/dist/images/marker-icon-2x.png",
    "images/marker-shadow.png": "leaflet/dist/images/marker-shadow.png",
    "images/layers.png": "leaflet/dist/images/layers.png",
}


def node_modules_dirs() -> list[Path]:
    """A checkout's web/node_modules, then where an installed copy keeps them (<prefix>/share/lauks/web)."""
    return [Path(__file__).parent / "node_modules", Path(sys.prefix) / "share" / "lauks" / "web" / "node_modules"]


def vendor_file(name: str) -> Path | None:
    inside = VENDOR.get(name)
    if inside is None:
        return None
    for folder in node_modules_dirs():
        if (folder / inside).is_file():
            return folder / inside
    return None


@functools.cache
def _digest(path: Path, mtime_ns: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def _versioned(prefix: str, name: str, path: Path | None) -> str:
    if path is None:
        return f"{prefix}/{name}"
    return f"{prefix}/{name}?v={_digest(path, path.stat().st_mtime_ns)}"


def static_url(name: str) -> str:
    path = STATIC / name
    return _versioned("/static", name, path if path.is_file() else None)


def vendor_url(name: str) -> str:
    """The URL of a library file, or '' when it is not installed (templates then leave it out)."""
    path = vendor_file(name)
    return _versioned("/static/vendor", name, path) if path else ""


def _media_type(path: Path) -> str:
    return TYPES.get(path.suffix, "application/octet-stream")


def install(app: FastAPI) -> None:
    own = {p.relative_to(STATIC).as_posix(): p for p in STATIC.rglob("*") if p.is_file()}

    @app.get("/static/vendor/{name:path}", include_in_schema=False)
    async def vendor(name: str) -> FileResponse:
        path = vendor_file(name)
        if path is None:
            raise HTTPException(404, f"no library file {name[:80]!r}: run make node-deps")
        return FileResponse(path, media_type=_media_type(path), headers={"Cache-Control": CACHE_FOREVER})

    @app.get("/static/{name:path}", include_in_schema=False)
    async def static(name: str) -> FileResponse:
        path = own.get(name)
        if path is None:
            raise HTTPException(404, f"no file {name[:80]!r}")
        return FileResponse(path, media_type=_media_type(path), headers={"Cache-Control": CACHE_FOREVER})
