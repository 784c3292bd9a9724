"""Compression of the pages, their data and static files (gzip, when the browser accepts it).

First load on a phone over school Wi-Fi is the budget (≤ 300 KB compressed, bench/web.py measures it), so
pages, scripts, styles and chart series are compressed. Not compressed: the JSON API and its downloads under
``/v1`` (streamed files keep their measured speed, and clients ask for what they want), and the live event
streams under ``/w/live/`` (a compressor would hold events back in its buffer).
"""

from __future__ import annotations

from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

UNCOMPRESSED = ("/v1/", "/w/live/")


def compressible(path: str) -> bool:
    return not path.startswith(UNCOMPRESSED)


class PageCompression:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=512, compresslevel=6)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and compressible(scope.get("path", "")):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)
