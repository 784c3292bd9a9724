"""Async client for InfluxDB's v1 HTTP API: /ping, /write (line protocol) and /query (InfluxQL).

Served by InfluxDB 1.x natively, 2.x through its v1 compatibility endpoints (token) and 3 Core.
Errors are split the way the gateway needs them: ``InfluxWriteRejected`` (4xx: the data is bad,
never retry it) versus ``InfluxUnavailable`` (5xx, refused, timed out: keep the data and retry).
Query results are streamed chunk by chunk, never loaded whole.
"""

from __future__ import annotations

import gzip
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


class InfluxWriteRejected(InfluxError):
    """InfluxDB refused (some of) the points (4xx): retrying the same points will not help."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"InfluxDB refused the write ({status}): {message}")
        self.status = status
        self.message = message

    @property
    def partial(self) -> bool:
        """InfluxDB 1.x stored the good points of the batch and dropped only the bad ones."""
        return "partial write" in self.message


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
            raise InfluxUnavailable(f"InfluxDB answered {response.status_code}: {_error_text(response)}")
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
        """Write line protocol in one request. Raises ``InfluxWriteRejected`` or ``InfluxUnavailable``."""
        body = lines if isinstance(lines, bytes) else ("\n".join(lines) + "\n").encode()
        params = {"db": database, "precision": precision}
        if retention_policy:
            params["rp"] = retention_policy
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.gzip_writes:
            body = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        response = await self._request("POST", "/write", params=params, content=body, headers=headers)
        if response.status_code == 204:
            return
        raise InfluxWriteRejected(response.status_code, _error_text(response))

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
