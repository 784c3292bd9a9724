"""Turning a checked readings request into a streamed HTTP response (CSV, JSON or Parquet)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import StreamingResponse

from api import export, source
from api.errors import ApiError
from api.query import ReadingsRequest
from lauks.influx import InfluxClient, InfluxQueryError, InfluxUnavailable


def shape_of(request: ReadingsRequest, kit_in_names: bool = True) -> export.Shape:
    return export.Shape(request.kits, request.quantities, request.layout, request.zone, kit_in_names)


def body(client: InfluxClient, database: str, request: ReadingsRequest, fmt: export.Format, *,
         decimal_comma: bool = False, meta: dict[str, Any] | None = None,
         kit_in_names: bool = True) -> AsyncIterator[bytes]:
    shape = shape_of(request, kit_in_names)
    chunks = source.rows(client, database, request)
    if fmt == "csv" and request.layout == "tidy":
        return export.csv_bytes(chunks, shape, decimal_comma=decimal_comma, raw=True)
    rows = export.tidy_rows(chunks, shape) if request.layout == "tidy" else export.wide_rows(chunks, shape)
    if fmt == "csv":
        return export.csv_bytes(rows, shape, decimal_comma=decimal_comma)
    if fmt == "json":
        return export.json_bytes(rows, shape, meta or {})
    return export.parquet_bytes(rows, shape)


async def primed(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Start the stream before the status line goes out, so a store that is down gives a 503, not a cut file."""
    try:
        first = await anext(stream)
    except StopAsyncIteration:
        first = b""
    except InfluxUnavailable as error:
        raise ApiError(503, "store_unavailable", "the readings store is not answering right now: try again in a "
                                                 "minute") from error
    except InfluxQueryError as error:
        raise ApiError(502, "store_error", f"the readings store refused the query: {error}") from error

    async def rest() -> AsyncIterator[bytes]:
        try:
            yield first
            async for part in stream:
                yield part
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    return rest()


class Streamed(StreamingResponse):
    """A streamed response that closes its body when it ends in any way, a client gone away included, so the
    body's cleanup (a frozen file's lock, its temporary file) runs at once, not when the generator is collected.
    """

    async def stream_response(self, send: Any) -> None:
        try:
            await super().stream_response(send)
        finally:
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:
                await close()


async def response(client: InfluxClient, database: str, request: ReadingsRequest, fmt: export.Format, *,
                   decimal_comma: bool = False, meta: dict[str, Any] | None = None) -> StreamingResponse:
    stream = await primed(body(client, database, request, fmt, decimal_comma=decimal_comma, meta=meta))
    disposition = export.content_disposition(request.site, request.quantities, request.start, request.end,
                                             request.zone, fmt)
    return Streamed(stream, media_type=export.MEDIA_TYPES[fmt],
                             headers={"Content-Disposition": disposition})
