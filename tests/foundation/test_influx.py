"""The InfluxDB client against a real influxd: escaping round trips, streaming, its error kinds, and the write
policy (what each answer means, unit-tested, and the answers influxd gives for real)."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Callable

import pytest

from lauks import influxql
from lauks import lineprotocol as lp
from lauks.influx import (
    RETRY_AFTER_MAX_S,
    InfluxBadData,
    InfluxClient,
    InfluxError,
    InfluxQueryError,
    InfluxRefused,
    InfluxThrottled,
    InfluxTooLarge,
    InfluxUnavailable,
    InfluxWriteRejected,
    WriteAction,
    retry_after_s,
    split_points,
    write_action,
    write_error,
)
from lauks.services import Influxd, free_port

HARD_TEXTS = [
    "plain",
    "with space",
    "with,comma",
    "with=equals",
    'with"double"quotes',
    "with'single'quotes",
    "back\\slash inside",
    "Rīga ūdens ģērbtuve ščž",
    "日本語 テキスト",
    "emoji 🌧️",
    "a,b=c d\"e'f\\g",
    "semi;colon -- comment /* c */",
    "regex .*+?^$()[]{}|/",
]


@pytest.mark.parametrize("text", HARD_TEXTS)
async def test_hard_names_round_trip_through_influxd(influx: InfluxClient, database: str, text: str) -> None:
    measurement = f"m {text}"
    point = lp.line(measurement, {f"tag {text}": text, "plain": "p"}, {f"field {text}": 1.5, "note": text}, 1000)
    await influx.write(database, [point], precision="s")
    rows = await influx.query_rows(
        f"SELECT * FROM {influxql.identifier(measurement)} WHERE {influxql.identifier(f'tag {text}')} = "
        f"{influxql.string(text)}",
        database=database,
    )
    assert len(rows) == 1
    assert rows[0][f"tag {text}"] == text
    assert rows[0][f"field {text}"] == 1.5
    assert rows[0]["note"] == text
    assert rows[0]["time"] == 1_000_000


async def test_string_fields_with_newlines_round_trip(influx: InfluxClient, database: str) -> None:
    text = "first line\nsecond \"quoted\" line\\\n"
    await influx.write(database, [lp.line("notes", {"k": "v"}, {"text": text}, 5)], precision="s")
    rows = await influx.query_rows('SELECT "text" FROM "notes"', database=database)
    assert rows[0]["text"] == text


async def test_a_string_literal_with_a_newline_matches_exactly(influx: InfluxClient, database: str) -> None:
    await influx.write(database, [lp.line("m", {"t": "ab"}, {"f": 1.0}, 1)], precision="s")
    rows = await influx.query_rows(f'SELECT * FROM "m" WHERE "t" = {influxql.string("a" + chr(10) + "b")}',
                                   database=database)
    assert rows == []


async def test_regex_of_exact_values_matches_only_them(influx: InfluxClient, database: str) -> None:
    values = ["k.1", "k/2", "k(3)"]
    await influx.write(database, [lp.line("m", {"kit": v}, {"f": float(i)}, i + 1)
                                  for i, v in enumerate([*values, "kx1", "k22"])], precision="s")
    rows = await influx.query_rows(f'SELECT * FROM "m" WHERE "kit" =~ {influxql.regex_exact(values)}',
                                   database=database)
    assert sorted(r["kit"] for r in rows) == sorted(values)


async def test_query_streams_large_results_in_chunks(influx: InfluxClient, database: str) -> None:
    lines = [f"readings,site=s,kit=k temperature={i % 50}.5 {1_700_000_000_000 + i}" for i in range(25_000)]
    await influx.write(database, lines, precision="ms")
    chunks = [s async for s in influx.query('SELECT "temperature" FROM "readings"', database=database,
                                            chunk_size=4000)]
    assert len(chunks) >= 6
    assert sum(len(c.values) for c in chunks) == 25_000
    assert chunks[0].partial and not chunks[-1].partial


async def test_gzip_writes_are_accepted(influxd, database: str) -> None:
    async with InfluxClient(influxd.url, gzip_writes=True) as client:
        await client.write(database, ["m f=1.0 1", "m f=2.0 2"], precision="s")
        assert len(await client.query_rows('SELECT * FROM "m"', database=database)) == 2


async def test_a_type_conflict_is_a_partial_write_rejection(influx: InfluxClient, database: str) -> None:
    await influx.write(database, ["m f=1.0 1"], precision="s")
    with pytest.raises(InfluxWriteRejected) as caught:
        await influx.write(database, ['m f="text" 2', "m f=3.0 3"], precision="s")
    assert caught.value.status == 400 and caught.value.partial
    assert len(await influx.query_rows('SELECT * FROM "m"', database=database)) == 2


async def test_unparsable_line_protocol_is_rejected_not_retried(influx: InfluxClient, database: str) -> None:
    with pytest.raises(InfluxWriteRejected) as caught:
        await influx.write(database, ["this is not line protocol"], precision="s")
    assert caught.value.status == 400


async def test_a_store_that_is_down_is_unavailable_not_rejected() -> None:
    async with InfluxClient(f"http://127.0.0.1:{free_port()}", timeout_s=1) as client:
        with pytest.raises(InfluxUnavailable):
            await client.write("lauks", ["m f=1.0 1"])
        with pytest.raises(InfluxUnavailable):
            await client.ping()
        with pytest.raises(InfluxUnavailable):
            [s async for s in client.query("SHOW DATABASES")]
        assert await client.healthy() is False


async def test_bad_influxql_is_a_query_error(influx: InfluxClient, database: str) -> None:
    with pytest.raises(InfluxQueryError):
        await influx.query_rows("SELEKT nothing", database=database)


async def test_an_unknown_database_is_a_query_error(influx: InfluxClient) -> None:
    with pytest.raises(InfluxQueryError, match="database not found"):
        await influx.query_rows('SELECT * FROM "m"', database="no_such_database_here")


async def test_ping_reports_the_server_version(influx: InfluxClient) -> None:
    assert (await influx.ping()).startswith("1.")


async def test_databases_and_retention_policies_can_be_created(influx: InfluxClient, database: str) -> None:
    await influx.create_retention_policy(database, "one year", "52w", default=True)
    rows = await influx.query_rows(f"SHOW RETENTION POLICIES ON {influxql.identifier(database)}")
    assert {"name": "one year", "default": True}.items() <= next(r for r in rows if r["name"] == "one year").items()
    with pytest.raises(ValueError):
        await influx.create_retention_policy(database, "x", "1y; DROP DATABASE lauks")


# --- the write policy -----------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "retry_after", "kind", "action"), [
    (204, None, None, None),
    (500, None, InfluxUnavailable, WriteAction.RETRY),
    (502, "5", InfluxUnavailable, WriteAction.RETRY),  # a Retry-After only throttles with 429 or 503
    (503, None, InfluxUnavailable, WriteAction.RETRY),
    (503, "7", InfluxThrottled, WriteAction.THROTTLED),
    (429, "2", InfluxThrottled, WriteAction.THROTTLED),
    (429, None, InfluxThrottled, WriteAction.THROTTLED),
    (400, None, InfluxBadData, WriteAction.BAD_DATA),
    (422, None, InfluxBadData, WriteAction.BAD_DATA),
    (413, None, InfluxTooLarge, WriteAction.SPLIT),
    (401, None, InfluxRefused, WriteAction.REFUSED),
    (403, None, InfluxRefused, WriteAction.REFUSED),
    (404, None, InfluxRefused, WriteAction.REFUSED),
    (409, None, InfluxRefused, WriteAction.REFUSED),  # a 4xx we do not know never drops data
])
def test_each_answer_to_a_write_has_one_error_and_one_action(status: int, retry_after: str | None,
                                                              kind: type[InfluxError] | None,
                                                              action: WriteAction | None) -> None:
    error = write_error(status, "words", retry_after)
    if kind is None:
        assert error is None
        return
    assert type(error) is kind and error is not None
    assert write_action(error) is action


def test_timeouts_and_socket_errors_are_retried() -> None:
    assert write_action(TimeoutError()) is WriteAction.RETRY
    assert write_action(ConnectionResetError()) is WriteAction.RETRY


def test_retry_after_is_read_as_seconds_or_a_date_and_kept_within_bounds() -> None:
    now = 1_780_000_000.0
    assert retry_after_s("3", now) == 3.0
    assert retry_after_s(" 0.5 ", now) == 0.5
    assert retry_after_s(email.utils.formatdate(now + 20, usegmt=True), now) == 20.0
    assert retry_after_s(email.utils.formatdate(now - 20, usegmt=True), now) == 0.0  # a date past: at once
    assert retry_after_s("-4", now) == 0.0
    assert retry_after_s("86400", now) == RETRY_AFTER_MAX_S
    assert retry_after_s("soon", now) is None and retry_after_s(None, now) is None and retry_after_s("nan") is None
    throttled = write_error(429, "slow down", "4")
    assert isinstance(throttled, InfluxThrottled) and throttled.retry_after_s == 4.0


def test_a_partial_write_says_how_many_points_it_dropped() -> None:
    error = write_error(400, 'partial write: field type conflict: input field "f" on measurement "m" is type '
                             "string, already exists as type float dropped=3")
    assert isinstance(error, InfluxBadData) and error.partial and error.dropped == 3
    whole = write_error(400, 'unable to parse "x y": invalid field format')
    assert isinstance(whole, InfluxBadData) and not whole.partial and whole.dropped is None


def test_a_body_splits_into_its_points_even_where_a_string_holds_a_newline() -> None:
    points = [lp.line(f"m {text}", {f"tag {text}": text}, {f"field {text}": 1.5, f"k{text}=": text + "\n\"x\" y=\"\\",
                                                           "note": "two\nlines"}, i)
              for i, text in enumerate([*HARD_TEXTS, 'q"=', 'a="b'])]
    body = ("\n".join(points) + "\n").encode()
    assert split_points(body) == [(point + "\n").encode() for point in points]
    assert split_points(b"m f=1 1\n\nm f=2 2") == [b"m f=1 1\n", b"m f=2 2\n"]


async def _answering(status: int, headers: dict[str, str]) -> tuple[asyncio.Server, list[float]]:
    """A loopback HTTP server answering every request with ``status``: for answers influxd 1.6 never gives."""
    times: list[float] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")),
                      0)
        await reader.readexactly(length)
        times.append(time.monotonic())
        body = b'{"error":"slow down"}'
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                     f"{extra}Connection: close\r\n\r\n".encode() + body)
        await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", 0), times


@pytest.mark.parametrize("status", [429, 503])
async def test_a_store_that_asks_to_wait_is_throttled_for_as_long_as_it_says(status: int) -> None:
    server, times = await _answering(status, {"Retry-After": "2"})
    port = server.sockets[0].getsockname()[1]
    async with server, InfluxClient(f"http://127.0.0.1:{port}") as client:
        with pytest.raises(InfluxThrottled) as caught:
            await client.write("lauks", ["m f=1.0 1"])
    assert caught.value.retry_after_s == 2.0 and caught.value.status == status and len(times) == 1


async def test_influxd_answers_too_large_wrong_credentials_and_no_database_with_their_errors(
        make_influxd: Callable[..., Influxd]) -> None:
    store = make_influxd({"INFLUXDB_HTTP_MAX_BODY_SIZE": "300", "INFLUXDB_HTTP_AUTH_ENABLED": "true"})
    async with InfluxClient(store.url) as anonymous:
        await anonymous.execute("CREATE USER admin WITH PASSWORD 'pw' WITH ALL PRIVILEGES")
        with pytest.raises(InfluxRefused) as refused:
            await anonymous.write("lauks", ["m f=1.0 1"])
    assert refused.value.status == 401
    async with InfluxClient(store.url, username="admin", password="pw") as admin:
        with pytest.raises(InfluxRefused) as missing:
            await admin.write("no_such_database", ["m f=1.0 1"])
        await admin.create_database("big")
        with pytest.raises(InfluxTooLarge):
            await admin.write("big", [f"m f={i}.0 {i}" for i in range(1, 100)], precision="s")
        await admin.write("big", ["m f=1.0 1"], precision="s")  # a small one goes through
    assert missing.value.status == 404 and "database not found" in missing.value.message
