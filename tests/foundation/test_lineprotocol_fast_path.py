"""readings_lines (lineprotocol.sample_lines under the readings head) writes the very bytes of the plain way,
``repr(float(value))`` for each value.

Its fast path takes the digits from orjson: these tests hold it to the plain way for every float
(the notations of repr and orjson part between 1e-5 and 1e-4 and beyond 1e16), for values that are
not floats and for names JSON or the line would have to escape.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lauks import lineprotocol as lp
from lauks import schema
from lauks.catalog import QUANTITY_NAMES
from lauks.contract import Sample


def reference_lines(site: str, kit: str, samples: Iterable[Sample]) -> list[str]:
    """readings_lines as it was written before its fast path."""
    head = f"{lp.measurement(schema.READINGS)},{schema.KIT}={kit},{schema.SITE}={site} "
    return [
        head + ",".join(f"{k}={float(v)!r}" for k, v in s.values.items()) + f" {s.time_ms}"
        for s in samples
        if s.values
    ]


def outcome(write: Any, samples: list[Sample]) -> list[str] | str:
    try:
        lines: list[str] = write("s1", "k1", samples)
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return lines


def assert_same(*values: dict[Any, Any]) -> None:
    samples = [Sample(1_700_000_000_000 + i, v) for i, v in enumerate(values)]
    assert outcome(schema.readings_lines, samples) == outcome(reference_lines, samples)


class Float(float):
    pass


EDGES = [0.0, -0.0, 1.0, 1e-4, 1e-5, 9.5e-5, -9.5e-5, 0.00010000000000000002, math.nextafter(1e-4, 0),
         math.nextafter(1e-5, 0), 1e-7, 10.00001, 1e15, 9999999999999998.0, 1e16, math.nextafter(1e16, 0), 1.5e16,
         5e-324, sys.float_info.min, sys.float_info.max, 0.1 + 0.2, 21.37, -67.0, math.nan, math.inf, -math.inf]


@pytest.mark.parametrize("value", EDGES + [-x for x in EDGES])
def test_floats_at_the_edges_of_both_notations_are_written_as_repr_writes_them(value: float) -> None:
    assert_same({"temperature": value}, {"humidity": 55.0, "temperature": value, "rssi": -67.0})


@settings(max_examples=3000, deadline=None)
@given(st.floats() | st.floats(-1e-3, 1e-3) | st.floats(1e14, 1e17))
def test_any_float_is_written_as_repr_writes_it(value: float) -> None:
    assert_same({"pressure": value})


ODD_NAMES = ['a"b', "a:b", "a{b", "a}b", "a\\b", "a,b", "a=b", "a b", "%s", "{}", "é", "A", "_", "", "a\nb", "\x00"]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_names_json_or_the_line_would_escape_are_written_as_the_plain_way_writes_them(name: str) -> None:
    assert_same({name: 1.5}, {"rain": 0.5, name: 1.5, "rssi": -60.0})


odd_values = st.one_of(st.integers(), st.booleans(), st.just(10**400), st.sampled_from(["1.5", "x", "nan", ""]),
                       st.floats().map(Float), st.none(), st.just([1.5]), st.just({"a": 1.0}))
names = st.one_of(st.sampled_from(QUANTITY_NAMES), st.text(max_size=6),
                  st.sampled_from(ODD_NAMES))
values = st.dictionaries(names, st.one_of(st.floats(), st.floats(), odd_values), max_size=6)


@settings(max_examples=1000, deadline=None)
@given(st.lists(values, max_size=4))
def test_any_samples_are_written_as_the_plain_way_writes_them(samples: list[dict[str, Any]]) -> None:
    assert_same(*samples)


def test_names_that_are_not_strings_are_written_as_the_plain_way_writes_them() -> None:
    assert_same({1: 2.0, "rain": 0.5})


def test_a_value_orjson_cannot_write_is_written_the_plain_way() -> None:
    assert schema.readings_lines("s", "k", [Sample(1, {"rain": Float(0.5)})]) == ["readings,kit=k,site=s rain=0.5 1"]
