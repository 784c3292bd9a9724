"""No user input reaches InfluxQL unescaped: an injection corpus at every parameter, and at the builders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from api_fixtures import Api, point, service

from api.query import ReadingsRequest, aggregate_statement, latest_statements, raw_statement, status_statements
from lauks.influx import InfluxClient

__all__ = ["service"]

CORPUS = [
    "'", '"', "\\", "\\'", "' OR 1=1 --", "s1' OR site='other", 's1" OR "site"=\'other',
    "s1'; DROP DATABASE lauks; --", "s1; DROP MEASUREMENT readings", "/.*/", "k1|k2", ".*", "^k", "(", ")",
    "[a-z]+", "k1$", "k1/", "/", "-- comment", "/* x */", "s1\nDROP DATABASE x", "s1\r\n", "\x00", "%27",
    "%0A", "k1 ,k2", "ä", "Рига", "🌧️", "s1\u2028", "time > 0", "\\\\", "`", "${x}", "{{7*7}}", "x" * 300,
]
SECRET = -50.0  # only the other site has this value


async def seed(service: Api) -> None:
    service.add_site("s1")
    service.add_kits("s1", "k1", "k2")
    service.add_site("other")
    service.add_kits("other", "k1")
    start = datetime(2025, 3, 1, tzinfo=UTC)
    await service.write([point("s1", "k1", start + timedelta(minutes=i), temperature=float(i)) for i in range(5)]
                        + [point("other", "k1", start + timedelta(minutes=i), temperature=SECRET) for i in range(5)])


@pytest.mark.parametrize("parameter", ["site", "kits", "quantities", "start", "end", "every", "agg", "tz", "layout",
                                       "format", "decimal"])
async def test_every_readings_parameter_refuses_the_corpus_with_a_4xx(service: Api, parameter: str) -> None:
    await seed(service)
    base = {"start": "2025-03-01", "end": "2025-03-02", "quantities": "temperature", "every": "1h"}
    for text in CORPUS:
        params = dict(base)
        site = "s1"
        if parameter == "site":
            site = text
        else:
            params[parameter] = text
        response = await service.get(f"/v1/sites/{quote(site, safe='')}/readings", params=params)
        assert response.status_code < 500, (text, response.text)
        assert str(SECRET) not in response.text and "-50" not in response.text, text
        if response.status_code >= 400:
            assert response.json()["message"], text


@pytest.mark.both_stores  # PostgreSQL refuses a NUL in a query: a name with one must be a 404 before it
async def test_other_endpoints_refuse_the_corpus_with_a_4xx(service: Api) -> None:
    await seed(service)
    for text in CORPUS:
        for path, params in (("/v1/sites/s1/latest", {"kits": text}), ("/v1/sites/s1/latest", {"quantities": text}),
                             ("/v1/sites/s1/kits/{}", {}), ("/v1/datasets/{}", {}), ("/v1/datasets/{}/data.csv", {}),
                             ("/v1/sites/{}/kits", {}), ("/v1/quantities/{}", {})):
            url = path.format(quote(text, safe=""))
            response = await service.get(url, params=params)
            assert response.status_code < 500, (url, text, response.text)
            assert "-50" not in response.text


@pytest.mark.parametrize("text", CORPUS)
async def test_the_statement_builders_quote_anything_influxdb_runs_them_safely(influx: InfluxClient, database: str,
                                                                            text: str) -> None:
    # Straight at the builders, past the registry's checks: InfluxDB must parse each statement and find nothing.
    await influx.write(database, [point("other", "k1", datetime(2025, 3, 1, tzinfo=UTC), temperature=SECRET)])
    request = _request(text)
    builders = (lambda: raw_statement(request), lambda: aggregate_statement(request, request.start, request.end),
                lambda: latest_statements(text, ["temperature"], [text]), lambda: status_statements(text))
    ran = 0
    for build in builders:
        try:
            statement = build()
        except ValueError as error:  # refused outright: a line break in a regex, a NUL or CR anywhere
            assert any(ch in text for ch in "\n\r\x00"), error
            continue
        rows = await influx.query_rows(statement, database=database)
        assert rows == [], statement
        ran += 1
    assert ran >= 1 or any(ch in text for ch in "\r\x00")


def _request(text: str) -> ReadingsRequest:
    start = datetime(2025, 3, 1, tzinfo=UTC)
    return ReadingsRequest(site=text, kits=[text, "k1"], quantities=["temperature"], start=start,
                           end=start + timedelta(days=1), zone=ZoneInfo("UTC"), every_s=3600,
                           aggregates={"temperature": "mean"})
