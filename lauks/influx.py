"""Async client for InfluxDB's v1 HTTP API: /ping, /write (line protocol) and /query (InfluxQL).

Served by InfluxDB 1.x natively, 2.x through its v1 compatibility endpoints (token) and 3 Core.
Query results are streamed chunk by chunk, never loaded whole.

The write policy lives here, in one place: ``write_error`` turns an answer to a write into a typed error
and ``write_action`` says what a writer does about it (docs/gateway.md, "The write policy"):

=========================================  ==========  ===============================================
answer                                     error       action
=========================================  ==========  ===============================================
5xx, 503 without Retry-After, refused,     Unavailable RETRY: keep the points, try again with backoff
reset, timed out
429, 503 with Retry-After                  Throttled   THROTTLED: keep them; no new try before Retry-After
400, 422 (bad line protocol, type clash)   BadData     BAD_DATA: what was refused is dropped and counted;
                                                       a partial write stored the rest
413 (request too large)                    TooLarge    SPLIT: write the halves, down to one point
401, 403, 404, any other 4xx               Refused     REFUSED: keep every point durable and alarm
=========================================  ==========  ===============================================
"""

from __future__ import annotations

import email.utils
import enum
import gzip
import math
import re
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self

import httpx
import orjson

from lauks import influxql

Precision = Literal["ns", "u", "ms", "s"]


class InfluxError(Exception):
    """Base of every error this client raises."""


class InfluxUnavailable(InfluxError):
    """InfluxDB could not be reached or failed on its side (5xx): retry later, keep the data."""


class InfluxThrottled(InfluxUnavailable):
    """InfluxDB is busy (429, or 503 with Retry-After): keep the data, try again no sooner than it asks."""

    def __init__(self, status: int, message: str, retry_after_s: float) -> None:
        super().__init__(f"InfluxDB asks to wait {retry_after_s:g} s ({status}): {message}")
        self.status = status
        self.retry_after_s = retry_after_s


class InfluxWriteRejected(InfluxError):
    """InfluxDB refused (some of) the points (4xx): retrying the same request will not help. The
    subclasses say what will: nothing (``InfluxBadData``), smaller requests (``InfluxTooLarge``), or a
    person fixing the credentials or the database (``InfluxRefused``)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"InfluxDB refused the write ({status}): {message}")
        self.status = status
        self.message = message

    @property
    def partial(self) -> bool:
        """InfluxDB 1.x stored the good points of the batch and dropped only the bad ones."""
        return "partial write" in self.message


class InfluxBadData(InfluxWriteRejected):
    """Points InfluxDB will never take (400, 422): unparsable, or a field of another type than before."""

    @property
    def dropped(self) -> int | None:
        """How many points a partial write dropped, where InfluxDB says (``dropped=N``)."""
        found = re.search(r"\bdropped=(\d+)", self.message)
        return int(found.group(1)) if found else None


class InfluxTooLarge(InfluxWriteRejected):
    """The request is larger than InfluxDB (or a proxy before it) takes (413): send it in parts."""


class InfluxRefused(InfluxWriteRejected):
    """Not the data's fault (401, 403: credentials; 404: no such database; other 4xx): nothing is written
    until a person (or, for a missing database, the writer) fixes it."""


class WriteAction(enum.StrEnum):
    """What a writer does about a failed write (the table in this module's docstring)."""

    RETRY = "retry"
    THROTTLED = "throttled"
    BAD_DATA = "bad_data"
    SPLIT = "split"
    REFUSED = "refused"


RETRY_AFTER_MAX_S = 300.0  # a Retry-After further away than this is taken as this (a clock or a proxy gone wrong)


def retry_after_s(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or an HTTP date), within [0, 300]; None if
    there is none or it cannot be read."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_MAX_S)


def write_error(status: int, message: str, retry_after: str | None = None) -> InfluxError | None:
    """The error an answer to a write means (None for a 2xx: the points are stored)."""
    if 200 <= status < 300:
        return None
    wait = retry_after_s(retry_after)
    if status == 429 or (status == 503 and wait is not None):
        return InfluxThrottled(status, message, wait if wait is not None else 1.0)
    if status >= 500 or status < 400:
        return InfluxUnavailable(f"InfluxDB answered {status}: {message}")
    if status in (400, 422):
        return InfluxBadData(status, message)
    if status == 413:
        return InfluxTooLarge(status, message)
    return InfluxRefused(status, message)


def write_action(error: InfluxError | TimeoutError | OSError) -> WriteAction:
    """What to do about a failed write: the one place the write policy is decided."""
    if isinstance(error, InfluxThrottled):
        return WriteAction.THROTTLED
    if isinstance(error, InfluxBadData):
        return WriteAction.BAD_DATA
    if isinstance(error, InfluxTooLarge):
        return WriteAction.SPLIT
    if isinstance(error, InfluxWriteRejected):  # 401, 403, 404 and any 4xx we do not know: never drop data
        return WriteAction.REFUSED
    return WriteAction.RETRY  # unavailable, timed out, a socket error


def split_points(body: bytes) -> list[bytes]:
    """The points of a line protocol body, each with its newline. A string field may hold a newline (in
    its double quotes), so the body is read, not split at every newline: a measurement, tag or field key
    holds no raw newline, and a double quote starts a string only as the first byte of a field value."""
    points: list[bytes] = []
    start = i = 0
    end = len(body)
    spaces = 0  # unescaped spaces outside strings in this line: the field set starts after the first
    value_starts = False  # the byte before was an unescaped '=' in the field set
    while i < end:
        byte = body[i]
        if byte == 0x5C:  # backslash: the next byte is escaped
            i += 2
            value_starts = False
            continue
        if byte == 0x22 and value_starts:  # a string value: to its closing quote, newlines and all
            i += 1
            while i < end and body[i] != 0x22:
                i += 2 if body[i] == 0x5C else 1
        elif byte == 0x0A:
            if i > start:
                points.append(body[start:i + 1])
            start = i + 1
            spaces = 0
        elif byte == 0x20:
            spaces += 1
        value_starts = byte == 0x3D and spaces == 1
        i += 1
    if start < end and body[start:].strip():
        points.append(body[start:] + b"\n")
    return points


class InfluxQueryError(InfluxError):
    """InfluxDB refused a query (bad InfluxQL, unknown database, ...)."""


@dataclass(slots=True)
class Series:
    """One chunk of one series of one statement's result."""

    statement_id: int
    name: str
    columns: list[str]
    values: list[list[Any]]
    tags: dict[str, str] = field(default_factory=dict)
    partial: bool = False  # more chunks of this series follow


class InfluxClient:
    """One connection pool to one InfluxDB. Use as ``async with InfluxClient(url) as client``."""

    def __init__(
        self,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        timeout_s: float = 10.0,
        gzip_writes: bool = False,
        max_connections: int = 8,
    ) -> None:
        headers = {"Authorization": f"Token {token}"} if token else {}
        auth = httpx.BasicAuth(username, password or "") if username else None
        self._http = httpx.AsyncClient(
            base_url=url.rstrip("/"),
            headers=headers,
            auth=auth,
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )
        self.url = url
        self.gzip_writes = gzip_writes

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TransportError as error:  # refused, reset, timed out, DNS
            raise InfluxUnavailable(f"InfluxDB at {self.url} is unreachable: {error!r}") from error
        if response.status_code >= 500:
            failure = write_error(response.status_code, _error_text(response), response.headers.get("Retry-After"))
            assert failure is not None
            raise failure
        return response

    async def ping(self) -> str:
        """The server's version; ``InfluxUnavailable`` if it does not answer."""
        response = await self._request("GET", "/ping")
        if response.status_code != 204:
            raise InfluxUnavailable(f"InfluxDB /ping answered {response.status_code}")
        return str(response.headers.get("X-Influxdb-Version", "unknown"))

    async def healthy(self) -> bool:
        try:
            await self.ping()
        except InfluxUnavailable:
            return False
        return True

    async def write(
        self,
        database: str,
        lines: Iterable[str] | bytes,
        *,
        precision: Precision = "ms",
        retention_policy: str | None = None,
    ) -> None:
        """Write line protocol in one request. Raises the error ``write_error`` gives for the answer:
        ``InfluxUnavailable`` (or its ``InfluxThrottled``) or an ``InfluxWriteRejected`` (``InfluxBadData``,
        ``InfluxTooLarge``, ``InfluxRefused``); ``write_action`` says what to do about it."""
        body = lines if isinstance(lines, bytes) else ("\n".join(lines) + "\n").encode()
        params = {"db": database, "precision": precision}
        if retention_policy:
            params["rp"] = retention_policy
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.gzip_writes:
            body = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        response = await self._request("POST", "/write", params=params, content=body, headers=headers)
        error = write_error(response.status_code, _error_text(response), response.headers.get("Retry-After"))
        if error is not None:
            raise error

    async def query(
        self,
        statement: str,
        *,
        database: str | None = None,
        epoch: Precision | None = "ms",
        chunk_size: int = 10_000,
        method: Literal["GET", "POST"] = "GET",
    ) -> AsyncIterator[Series]:
        """Run InfluxQL and stream its series chunk by chunk (InfluxDB's ``chunked=true``)."""
        params: dict[str, str] = {"q": statement, "chunked": "true", "chunk_size": str(chunk_size)}
        if database:
            params["db"] = database
        if epoch:
            params["epoch"] = epoch
        request = self._http.build_request(method, "/query", params=params)
        try:
            response = await self._http.send(request, stream=True)
        except httpx.TransportError as error:
            raise InfluxUnavailable(f"InfluxDB at {self.url} is unreachable: {error!r}") from error
        try:
            if response.status_code >= 500:
                await response.aread()
                raise InfluxUnavailable(f"InfluxDB answered {response.status_code}: {_error_text(response)}")
            if response.status_code != 200:
                await response.aread()
                raise InfluxQueryError(f"InfluxDB refused the query ({response.status_code}): "
                                       f"{_error_text(response)}")
            async for text in response.aiter_lines():
                if not text.strip():
                    continue
                for series in _parse_chunk(orjson.loads(text)):
                    yield series
        except httpx.TransportError as error:
            raise InfluxUnavailable(f"InfluxDB stopped answering mid-query: {error!r}") from error
        finally:
            await response.aclose()

    async def query_rows(self, statement: str, *, database: str | None = None,
                         epoch: Precision | None = "ms") -> list[dict[str, Any]]:
        """Every row as a dict (tags included): for small results only, such as metadata."""
        rows: list[dict[str, Any]] = []
        async for series in self.query(statement, database=database, epoch=epoch):
            for values in series.values:
                row = dict(series.tags)
                row.update(zip(series.columns, values, strict=True))
                rows.append(row)
        return rows

    async def execute(self, statement: str, *, database: str | None = None) -> None:
        """Run a statement that returns nothing (CREATE, DROP, ...) as a POST."""
        async for _ in self.query(statement, database=database, method="POST", epoch=None):
            pass

    async def create_database(self, name: str) -> None:
        await self.execute(f"CREATE DATABASE {influxql.identifier(name)}")

    async def drop_database(self, name: str) -> None:
        await self.execute(f"DROP DATABASE {influxql.identifier(name)}")

    async def create_retention_policy(self, database: str, name: str, duration: str,
                                      *, replication: int = 1, default: bool = False) -> None:
        """``duration`` is an InfluxQL duration such as ``52w`` or ``INF``."""
        if not (duration == "INF" or duration[:-1].isdigit() or duration[:-2].isdigit()):
            raise ValueError(f"retention duration {duration!r} is not an InfluxQL duration such as 52w or INF")
        statement = (f"CREATE RETENTION POLICY {influxql.identifier(name)} ON {influxql.identifier(database)} "
                     f"DURATION {duration} REPLICATION {int(replication)}")
        await self.execute(statement + (" DEFAULT" if default else ""))


def _parse_chunk(payload: dict[str, Any]) -> Sequence[Series]:
    if "error" in payload:
        raise InfluxQueryError(str(payload["error"]))
    out: list[Series] = []
    for result in payload.get("results", []):
        if "error" in result:
            raise InfluxQueryError(str(result["error"]))
        statement_id = int(result.get("statement_id", 0))
        for series in result.get("series", []):
            out.append(Series(statement_id, series.get("name", ""), series.get("columns", []),
                              series.get("values", []), series.get("tags") or {}, bool(series.get("partial"))))
    return out


def _error_text(response: httpx.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return response.text.strip()[:500]
    if isinstance(payload, dict) and "error" in payload:
        return str(payload["error"])
    return response.text.strip()[:500]
