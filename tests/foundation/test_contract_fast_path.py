"""decode_readings' fast paths give exactly what the plain way (pydantic, then _decode_sample) gives.

``_decode_readings_reference`` is the plain way. Every input is decoded both ways and the results,
samples or the rejection with its sentence, must be equal down to the type of every number.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lauks import contract
from lauks.catalog import CATALOG, QUANTITY_NAMES
from lauks.contract import (
    EARLIEST_TIME_S,
    MAX_COUNTER,
    MAX_FUTURE_S,
    MessageRejected,
    Readings,
    Rejection,
    Sample,
    _decode_readings_reference,
    decode_readings,
)

NOW = 1_795_285_300.0
RECEIVED = [NOW, int(NOW), NOW + 0.5, math.inf, math.nan]
MISSING = object()  # an envelope key left out
INFINITY = "__1e400__"  # written as 1e400, which only the standard parser reads (as infinity)

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def outcome(decode: Any, payload: bytes, kit: str, received_at: float) -> Readings | Rejection | str:
    try:
        readings: Readings = decode(payload, "s", kit, received_at)
    except MessageRejected as error:
        return error.rejection
    except Exception as error:  # a receipt time of infinity makes round() fail: the same way, both ways
        return f"{type(error).__name__}: {error}"
    return readings


def assert_same(payload: bytes, kit: str = "k01", received_at: float = NOW) -> None:
    fast = outcome(decode_readings, payload, kit, received_at)
    reference = outcome(_decode_readings_reference, payload, kit, received_at)
    assert fast == reference
    assert repr(fast) == repr(reference)  # tells -0.0 from 0.0 and 1 from 1.0
    if isinstance(fast, Readings):
        for sample in fast.samples:
            assert type(sample) is Sample and type(sample.time_ms) is int
            assert all(type(value) is float for value in sample.values.values())


def encode(body: Any) -> bytes:
    text = json.dumps(body)  # NaN and Infinity come out as tokens JSON does not have: the message is not JSON
    return text.replace(f'"{INFINITY}"', "1e400").replace(f'"-{INFINITY}"', "-1e400").encode()


def message(*samples: Any, **envelope: Any) -> bytes:
    body = {"v": 1, "kit": "k01", "boot": 3, "seq": 7, "fw": "0.3.0", "samples": list(samples)}
    body.update(envelope)
    return encode({key: value for key, value in body.items() if value is not MISSING})


def edges(low: float, high: float) -> list[Any]:
    return [low, high, float(low), float(high), math.nextafter(low, -math.inf), math.nextafter(high, math.inf),
            int(low) - 1, int(high) + 1, math.nextafter(high, -math.inf), low - 0.5, high + 0.5]


def around(low: float, high: float) -> st.SearchStrategy[Any]:
    """Numbers inside, at and just beyond [low, high], as floats and as ints."""
    span = high - low
    return st.one_of(st.sampled_from(edges(low, high)), st.floats(low - span / 10, high + span / 10),
                     st.integers(int(low - span / 10), int(high + span / 10)))


ODD_VALUES: list[Any] = [True, False, None, "", "1", "21.5", [], {}, [1.5], {"t": 1}, math.nan, math.inf, -math.inf,
                         INFINITY, f"-{INFINITY}", -0.0, 0, 0.0, 2**64, -(2**64), 10**30, 10**400, MAX_COUNTER + 1,
                         1e308, -1e308, 5e-324]
odd_values = st.one_of(st.sampled_from(ODD_VALUES), st.text(max_size=4))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)
odd_names = st.one_of(st.sampled_from(["temprature", "x", "T", "", "t", "age", "Temperature"]), st.text(max_size=8))
TIME_EDGES = [*edges(EARLIEST_TIME_S, NOW + MAX_FUTURE_S), int(NOW) + MAX_FUTURE_S, NOW + 0.5 + MAX_FUTURE_S,
              int(NOW) + MAX_FUTURE_S + 1, 0, -1]
times = st.one_of(st.sampled_from(TIME_EDGES), around(NOW - 100_000, NOW + MAX_FUTURE_S),
                  around(EARLIEST_TIME_S, EARLIEST_TIME_S + 10), odd_values)
times_inside = st.one_of(st.floats(EARLIEST_TIME_S, NOW + MAX_FUTURE_S), st.integers(EARLIEST_TIME_S, int(NOW)),
                         st.sampled_from([EARLIEST_TIME_S, float(EARLIEST_TIME_S), NOW + MAX_FUTURE_S]))
ages = st.one_of(around(0, 100_000), st.sampled_from([NOW - EARLIEST_TIME_S, -MAX_FUTURE_S - 1, -0.0]), odd_values)


def value_for(name: str) -> st.SearchStrategy[Any]:
    """A value for ``name``: around its range if it is a quantity, around now if it is a time, or odd."""
    if name in CATALOG:
        return st.one_of(around(CATALOG[name].minimum, CATALOG[name].maximum), odd_values)
    return {"t": times, "age": ages}.get(name, st.one_of(odd_values, around(-100, 100)))


@st.composite
def good_samples(draw: st.DrawFn) -> dict[str, Any]:
    """What a kit sends: 't' in the window, catalog quantities inside their ranges, floats and ints."""
    quantities = draw(st.lists(st.sampled_from(QUANTITY_NAMES), max_size=6, unique=True))
    pairs: list[tuple[str, Any]] = [("t", draw(times_inside))]
    for name in quantities:
        low, high = CATALOG[name].minimum, CATALOG[name].maximum
        pairs.append((name, draw(st.one_of(st.floats(low, high), st.integers(int(low), int(high)),
                                           st.sampled_from([low, high, float(low), float(high)])))))
    return dict(draw(st.permutations(pairs)))  # 't' first, last or between the quantities


@st.composite
def near_valid_samples(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["good", "defects", "defects", "defects", "loose"]))
    if kind == "good":
        return draw(good_samples())
    if kind == "defects":  # a good sample with one or two keys set to something near or odd, or added
        sample = draw(good_samples())
        for _ in range(draw(st.integers(1, 2))):
            key = draw(st.one_of(st.sampled_from(sorted(sample)), st.sampled_from(QUANTITY_NAMES), odd_names))
            sample[key] = draw(value_for(key))
        return sample
    keys = draw(st.lists(st.one_of(st.sampled_from(QUANTITY_NAMES), odd_names), max_size=7, unique=True))
    return {key: draw(value_for(key)) for key in keys}


ODD_ENVELOPE: dict[str, list[Any]] = {
    "v": [1.0, True, False, "1", 2, 0, -1, [1], None, MISSING],
    "kit": ["k02", "K01", "k01\n", "-k", "a" * 33, "a" * 32, "k01 ", "\ud800", 1, None, "", MISSING],
    "boot": [0, -1, MAX_COUNTER, MAX_COUNTER + 1, 2**64, 10**30, True, False, 1.0, "1", None, INFINITY, MISSING],
    "seq": [0, -1, MAX_COUNTER, MAX_COUNTER + 1, 2**64, 10**30, True, False, 2.5, 1.0, "1", None, INFINITY, MISSING],
    "fw": ["x" * 32, "x" * 33, "é" * 32, "é" * 33, "\ud800", 1, "", None, ["1"], MISSING],
    "samples": [[], {}, "x", None, [[]], [None], [1], MISSING],
}
ODD_SAMPLES: list[Any] = [
    {"t": NOW, "age": 5, "temperature": 20},
    {"age": 5, "t": NOW, "temperature": 20},
    {"age": 5, "temperature": 20},
    {"temperature": 20},
    {"t": NOW},
    {"t": NOW, "age": None, "temperature": 20},
    {"t": NOW, "temperature": 20, "humidity": True},
    {"t": NOW, "rssi": -50, "humidity": 100.5},
    {"t": NOW, "rssi": -50, "temprature": 20},
    {"t": NOW, "rssi": 1, "temperature": 20},
    {"temperature": 20, "t": NOW, "rssi": 1},
    {"t": NOW, "pressure": 10**400},
    {"t": NOW, "pressure": INFINITY},
    [],
    None,
    "x",
]


@pytest.mark.parametrize(("key", "value"), [(k, v) for k, values in ODD_ENVELOPE.items() for v in values])
@pytest.mark.parametrize("topic_kit", ["k01", "k01\n"])
def test_each_odd_envelope_decodes_as_the_reference_does(key: str, value: Any, topic_kit: str) -> None:
    assert_same(message({"t": NOW, "temperature": 20}, **{key: value}), topic_kit)


@pytest.mark.parametrize("t", TIME_EDGES + ODD_VALUES, ids=lambda value: repr(value)[:24])
@pytest.mark.parametrize("received_at", RECEIVED)
def test_each_time_at_the_edges_decodes_as_the_reference_does(t: Any, received_at: float) -> None:
    assert_same(message({"t": t, "temperature": 20, "rssi": -50}), received_at=received_at)
    assert_same(message({"temperature": 20, "rssi": -50, "t": t}), received_at=received_at)


@pytest.mark.parametrize("name", QUANTITY_NAMES)
def test_each_value_at_the_edges_of_its_range_decodes_as_the_reference_does(name: str) -> None:
    q = CATALOG[name]
    for value in [*edges(q.minimum, q.maximum), *ODD_VALUES]:
        assert_same(message({"t": NOW, name: value, "rssi": -50}, {"t": NOW, "rssi": -50, name: value}))


@pytest.mark.parametrize("sample", ODD_SAMPLES)
def test_each_odd_sample_decodes_as_the_reference_does(sample: Any) -> None:
    assert_same(message({"t": NOW, "temperature": 20}, sample, {"t": NOW - 1, "humidity": 50}))


@SETTINGS
@given(st.lists(near_valid_samples(), min_size=1, max_size=4), st.sampled_from(RECEIVED))
def test_near_valid_samples_decode_as_the_reference_does(samples: list[Any], received_at: float) -> None:
    assert_same(message(*samples), received_at=received_at)


@st.composite
def near_valid_messages(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {
        "v": 1, "kit": "k01", "boot": draw(st.integers(0, 1000)), "seq": draw(st.integers(0, 1000)), "fw": "0.3.0",
        "samples": draw(st.lists(near_valid_samples(), min_size=1, max_size=3)),
    }
    for key in draw(st.lists(st.sampled_from(sorted(ODD_ENVELOPE)), max_size=2, unique=True)):
        body[key] = draw(st.one_of(st.sampled_from(ODD_ENVELOPE[key]), json_values))
    if draw(st.booleans()):
        body["extra"] = draw(json_values)
    keys = draw(st.permutations(list(body)))
    return {key: body[key] for key in keys if body[key] is not MISSING}


@SETTINGS
@given(near_valid_messages(), st.sampled_from(["k01", "k01", "k02", "k01\n"]), st.sampled_from(RECEIVED))
def test_near_valid_messages_decode_as_the_reference_does(body: dict[str, Any], kit: str, received_at: float) -> None:
    assert_same(encode(body), kit, received_at)


@SETTINGS
@given(json_values)
def test_any_json_value_decodes_as_the_reference_does(value: Any) -> None:
    assert_same(json.dumps(value).encode())


@SETTINGS
@given(st.lists(json_values, min_size=1, max_size=4))
def test_any_json_samples_in_a_good_envelope_decode_as_the_reference_does(samples: list[Any]) -> None:
    assert_same(message(*samples))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_decode_as_the_reference_does(payload: bytes) -> None:
    assert_same(payload)


def test_the_common_message_goes_by_neither_pydantic_nor_decode_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("the common message left the fast path")

    monkeypatch.setattr(contract, "_checked_envelope", refuse)
    monkeypatch.setattr(contract, "_decode_sample", refuse)
    samples = [{"t": NOW - 60.25, "temperature": 21.5, "humidity": 55, "rssi": -67}, {"t": int(NOW), "rain": 0}]
    readings = decode_readings(message(*samples), "s", "k01", NOW)
    assert readings == Readings("s", "k01", 3, 7, "0.3.0", [
        Sample(round((NOW - 60.25) * 1000), {"temperature": 21.5, "humidity": 55.0, "rssi": -67.0}),
        Sample(int(NOW) * 1000, {"rain": 0.0}),
    ])
