"""The InfluxDB client against a real influxd: escaping round trips, streaming, and its error kinds."""

from __future__ import annotations

import pytest

from lauks import influxql
from lauks import lineprotocol as lp
from lauks.influx import (
    InfluxClient,
    InfluxQueryError,
    InfluxUnavailable,
    InfluxWriteRejected,
)
from lauks.services import free_port

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
