"""The stored schema (lauks.schema): its builders write what its table says, and everything that queries the
store (the dashboards, the alert rules, the API) reads only names the table has."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from api.query import (
    ReadingsRequest,
    aggregate_statement,
    latest_statements,
    make_request,
    raw_statement,
    slices,
    status_statements,
)
from dashboards.alerts import RULES
from dashboards.definition import DASHBOARDS
from dashboards.interpolate import interpolate
from gateway.core import KitActivity, readings_lines
from lauks import lineprotocol, rollups, schema
from lauks.catalog import QUANTITY_NAMES
from lauks.contract import Sample, StatusMessage
from lauks.influx import InfluxClient

# --- the builders ------------------------------------------------------------------------------------------


def test_readings_points_are_what_the_plain_encoder_writes_for_them() -> None:
    values = {"temperature": 21.5, "humidity": 55.0}
    assert schema.readings_lines("river-2", "k-03", [Sample(1000, values)]) == [
        lineprotocol.line(schema.READINGS, {schema.SITE: "river-2", schema.KIT: "k-03"}, values, 1000)]


def test_a_status_point_leaves_out_what_the_message_does_not_say_and_writes_a_whole_battery_as_a_float() -> None:
    status = StatusMessage(v=1, state="sleeping", battery=4, sensors=["bme280", "ds18b20"])
    assert schema.status_line("s", "k", status, 5) == 'kit_status,kit=k,site=s state="sleeping",battery=4.0,' \
                                                      'sensors="bme280,ds18b20" 5'


def one_point_of_everything() -> list[str]:
    """A point from each builder, with every field it can write."""
    status = StatusMessage(v=1, state="online", fw="0.3.0", boot=3, interval_s=60, sensors=["bme280"],
                           failed_sensors=["ds18b20"], battery=4, rssi=-60, buffered=2, dropped=0, awake_ms=1800)
    return [
        # the gateway's readings point with both ingest facts: received 399 s late, dated from 'age'
        *readings_lines("s", "k", [Sample(1000, dict.fromkeys(QUANTITY_NAMES, 1.0), from_age=True)], 400_000),
        schema.rejection_line("s", "k", "out_of_range", "humidity 140 % is above 100 %", 1000, field_name="humidity",
                              bad_value=140, bound=100.0, sample_index=0),
        schema.status_line("s", "k", status, 1000),
        KitActivity().note("s", "k", 3, "0.3.0", samples=1, late=1, now_ms=2000, late_from=1000),  # with late_from
        schema.gateway_line("gw-1", 1000, received=5, stored_messages=4, stored_points=20, duplicates=0, rejected=1,
                            spooled=0, spool_depth=0, inflight=2, write_latency_ms_p50=7, write_latency_ms_p99=31.5),
        rollups.state_line(schema.ROLLUP_1H, 1000, complete_from_ms=0, kept_to_ms=1000),
    ]


def test_a_rejection_point_writes_only_the_parts_it_has() -> None:
    assert schema.rejection_line("s", "k", "not_json", "the message is not valid UTF-8 JSON", 5) == \
        'rejections,kit=k,reason=not_json,site=s count=1i,detail="the message is not valid UTF-8 JSON" 5'
    assert schema.rejection_line("s", "k", "out_of_range", "d", 5, field_name="humidity", bad_value=140,
                                 bound=100, sample_index=2) == \
        'rejections,kit=k,reason=out_of_range,site=s count=1i,detail="d",field_name="humidity",bad_value="140",' \
        'bound=100.0,sample_index=2i 5'


def test_a_bad_value_is_short_json_text() -> None:
    assert [schema.bad_value_text(v) for v in (85.3, 140, "abc", True, False, 0)] == \
        ["85.3", "140", '"abc"', "true", "false", "0"]
    assert schema.bad_value_text("inf") == '"inf"' and schema.bad_value_text(float("nan")) == '"nan"'
    assert schema.bad_value_text(10**30) == '"' + str(10**30) + '"'
    long = schema.bad_value_text("x" * 500)
    assert len(long) == schema.BAD_VALUE_MAX_CHARS and long == '"' + "x" * 62 + "…"


INFLUX_TYPES = {"float": "float", "integer": "integer", "text": "string"}


async def test_what_the_builders_store_is_exactly_the_schema_table(influx: InfluxClient, database: str) -> None:
    """InfluxDB's own account of the stored fields (with their types) and tags, against ``schema.MEASUREMENTS``:
    a builder writing a field the table lacks, or of another type, or the table listing one nobody writes, fails."""
    await influx.write(database, one_point_of_everything(), precision="ms")
    # the rollups of those readings, made the way the gateway's worker makes them (SELECT ... INTO)
    for statement in rollups.recompute_statements(datetime(1970, 1, 1, tzinfo=UTC), datetime(1970, 1, 2, tzinfo=UTC)):
        await influx.execute(statement, database=database)
    fields: dict[str, dict[str, str]] = {}
    async for series in influx.query("SHOW FIELD KEYS", database=database):
        fields.setdefault(series.name, {}).update((key, kind) for key, kind in series.values)
    tags: dict[str, set[str]] = {}
    async for series in influx.query("SHOW TAG KEYS", database=database):
        tags.setdefault(series.name, set()).update(key for (key,) in series.values)
    assert fields == {m.name: {k: INFLUX_TYPES[t] for k, t in m.fields.items()} for m in schema.MEASUREMENTS.values()}
    assert tags == {m.name: set(m.tags) for m in schema.MEASUREMENTS.values()}


# --- the names queries read ------------------------------------------------------------------------------------

# InfluxQL's keywords and the functions our queries call: any other bare word is a name that should be quoted
_WORDS = frozenset("select from where and or as group by order desc asc limit fill none time now tz show tag values "
                   "with key last count sum mean max min median cumulative_sum non_negative_derivative elapsed".split())
_STRING = re.compile(r"'(?:\\.|[^'\\])*'")
_REGEX = re.compile(r"([=!]~)\s*/(?:\\.|[^/\\])*/")
_NAME = re.compile(r'"((?:\\.|[^"\\])*)"')
_ALIAS = re.compile(r'\bAS\s+"((?:\\.|[^"\\])*)"', re.IGNORECASE)
_FROM = re.compile(r'\bFROM\s+(?:"((?:\\.|[^"\\])*)"|(@\d+))', re.IGNORECASE)
_NUMBER = re.compile(r"\b\d+(?:\.\d+)?(?:ns|u|ms|s|m|h|d|w)?\b")
_BARE_WORD = re.compile(r"[A-Za-z_]\w*")
_SELECTED = re.compile(r"^\s*SELECT\s+(.*?)\s+FROM\b", re.IGNORECASE)
_GROUP_BY = re.compile(r"\bGROUP BY\s+(.*?)(?:\s+fill\(|\s+ORDER\b|\s+LIMIT\b|$)", re.IGNORECASE)
_CALL = re.compile(r"\w+\([^()]*\)")


def _columns(text: str) -> set[str]:
    """The names a statement gives the query around it: its aliases, the names it selects as they are, its tags."""
    selected = _SELECTED.search(text)
    plain = _ALIAS.sub("", selected.group(1)) if selected else ""
    while _CALL.search(plain):
        plain = _CALL.sub("", plain)
    grouped = _GROUP_BY.search(text)
    return {*_ALIAS.findall(text), *_NAME.findall(plain), *_NAME.findall(grouped.group(1) if grouped else "")}


def _innermost_select(text: str) -> tuple[int, int] | None:
    """Where the last ``(SELECT ...)`` is, parentheses included: it holds no other subquery."""
    start = text.rfind("(SELECT")
    if start < 0:
        return None
    depth = 0
    for end in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[end], 0)
        if depth == 0:
            return start, end + 1
    raise ValueError(f"unbalanced parentheses in {text}")


def _check_flat(statement: str, subqueries: list[set[str]], problems: list[str]) -> set[str]:
    """Problems of one statement whose subqueries are ``@n`` already; the names it gives an outer query."""
    text = _REGEX.sub(r"\1 ", _STRING.sub("''", statement))
    source = _FROM.search(text)
    if source is None:  # SHOW TAG VALUES WITH KEY = "site": a tag of some measurement
        scope = {tag for m in schema.MEASUREMENTS.values() for tag in m.tags}
        names = _NAME.findall(text)
    elif source.group(2):  # FROM a subquery: its columns and tags
        scope = subqueries[int(source.group(2)[1:])]
        names = _NAME.findall(_FROM.sub("", _ALIAS.sub("", text)))
    else:
        measurement = schema.MEASUREMENTS.get(source.group(1))
        if measurement is None:
            problems.append(f"measurement {source.group(1)!r} is not in lauks.schema: {statement}")
            return _columns(text)
        scope = {*measurement.tags, *measurement.fields}
        if text.lstrip().upper().startswith("SHOW TAG"):
            scope = set(measurement.tags)
        names = _NAME.findall(_FROM.sub("", _ALIAS.sub("", text)))
    problems.extend(f"{name!r} is not a field or tag of what it reads from: {statement}"
                    for name in names if name not in scope)
    bare = _BARE_WORD.findall(_NUMBER.sub(" ", _NAME.sub(" ", re.sub(r"@\d+", " ", text))))
    problems.extend(f"{word!r} is neither InfluxQL nor a quoted name: {statement}"
                    for word in bare if word.lower() not in _WORDS)
    return _columns(text)


def names_outside_the_schema(query: str) -> list[str]:
    """What in an InfluxQL query (one or more statements) names something ``lauks.schema`` does not have."""
    problems: list[str] = []
    for statement in query.split(";"):
        subqueries: list[set[str]] = []
        while (where := _innermost_select(statement)) is not None:
            start, end = where
            subqueries.append(_check_flat(statement[start + 1:end - 1], subqueries, problems))
            statement = f"{statement[:start]}@{len(subqueries) - 1}{statement[end:]}"
        _check_flat(statement, subqueries, problems)
    return problems


def grafana_text(query: str) -> str:
    """The query as Grafana sends it, every variable set to All."""
    return interpolate(query, variables={"site": None, "kit": None, "instance": None}, time_from_ms=0,
                       time_to_ms=1, interval="1m")


def all_problems(queries: Iterable[str]) -> list[str]:
    return [problem for query in queries for problem in names_outside_the_schema(query)]


def test_the_check_finds_names_the_schema_lacks() -> None:
    assert all_problems([
        'SELECT last("battery_level") AS "battery_level" FROM "kit_status" GROUP BY "site"',  # no such field
        'SELECT last("state") AS "state" FROM "readings"',  # a field of another measurement
        'SELECT count("state") AS "n" FROM (SELECT last("state") AS "last_state" FROM "kit_status")',  # no column
        'SELECT last("seen") AS "seen" FROM "kit_state"',  # no such measurement
        'SELECT last(seen) FROM "kit_status"',  # a name not quoted, which this check cannot follow
        'SHOW TAG VALUES WITH KEY = "school"',  # no such tag
    ]) == [
        "'battery_level' is not a field or tag of what it reads from: "
        'SELECT last("battery_level") AS "battery_level" FROM "kit_status" GROUP BY "site"',
        """'state' is not a field or tag of what it reads from: SELECT last("state") AS "state" FROM "readings\"""",
        "'state' is not a field or tag of what it reads from: "
        'SELECT count("state") AS "n" FROM @0',
        """measurement 'kit_state' is not in lauks.schema: SELECT last("seen") AS "seen" FROM "kit_state\"""",
        """'seen' is neither InfluxQL nor a quoted name: SELECT last(seen) FROM "kit_status\"""",
        """'school' is not a field or tag of what it reads from: SHOW TAG VALUES WITH KEY = "school\"""",
    ]


def test_every_name_the_dashboards_query_is_in_the_schema() -> None:
    queries = [q.sql for d in DASHBOARDS for p in d.panels for q in p.queries]
    queries += [v.query for d in DASHBOARDS for v in d.variables]
    assert len(queries) > 40
    assert all_problems(grafana_text(q) for q in queries) == []


def test_every_name_the_alert_rules_query_is_in_the_schema() -> None:
    assert all_problems(grafana_text(s.query.sql) for rule in RULES for s in rule.sources) == []


def test_every_name_the_api_queries_is_in_the_schema() -> None:
    start, end = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 8, tzinfo=UTC)
    quantities = list(QUANTITY_NAMES)

    def request(every: str | None) -> ReadingsRequest:
        return make_request(site="demo", kits=["k01", "k-03"], quantities=quantities, start=start, end=end,
                            zone=ZoneInfo("Europe/Riga"), every=every, agg=None, layout="tidy", max_raw_days=31)

    raw, aggregated = request(None), request("1h")
    statements = [raw_statement(raw), *(aggregate_statement(aggregated, a, b) for a, b in slices(aggregated)),
                  latest_statements("demo", quantities, ["k01"]), latest_statements("demo", ["rain"], []),
                  status_statements("demo")]
    assert all_problems(statements) == []
