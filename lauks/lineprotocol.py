"""InfluxDB line protocol, encoded with the escaping rules of the v1 /write parser.

Names (measurement, tag keys and values, field keys) escape ',', ' ' and '='. The v1 parser has
no escape for a newline or carriage return in a name, and reads a backslash before one of
``, = space "`` (or at the very end) as an escape, so names that hold those cannot be written
faithfully: they raise ``LineProtocolError`` instead of being stored mangled. String field values
escape '\\' and '"' and may hold any text, newlines included.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

import orjson

from lauks.contract import Sample

FieldValue = float | int | bool | str


class LineProtocolError(ValueError):
    """A name or value that line protocol cannot carry faithfully."""


_NAME_TABLE = str.maketrans({",": r"\,", " ": r"\ ", "=": r"\="})
_MEASUREMENT_TABLE = str.maketrans({",": r"\,", " ": r"\ "})
_STRING_TABLE = str.maketrans({"\\": "\\\\", '"': '\\"'})
_AMBIGUOUS_AFTER_BACKSLASH = frozenset(',= "')


def _check_name(kind: str, name: str) -> None:
    if not name:
        raise LineProtocolError(f"{kind} must not be empty")
    if "\n" in name or "\r" in name:
        raise LineProtocolError(f"{kind} {name!r} holds a line break, which line protocol cannot carry")
    if "\\" in name:
        for i, char in enumerate(name):
            if char == "\\" and (i + 1 == len(name) or name[i + 1] in _AMBIGUOUS_AFTER_BACKSLASH):
                raise LineProtocolError(
                    f"{kind} {name!r} has a backslash at its end or before ',', '=', ' ' or '\"', "
                    "which line protocol would read as an escape"
                )


def measurement(name: str) -> str:
    _check_name("measurement", name)
    return name.translate(_MEASUREMENT_TABLE)


def name(kind: str, value: str) -> str:
    """A tag key, tag value or field key, escaped."""
    _check_name(kind, value)
    return value.translate(_NAME_TABLE)


def field_value(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise LineProtocolError(f"field value {value!r} is not finite")
        return repr(value)
    return '"' + value.translate(_STRING_TABLE) + '"'


def line(
    measurement_name: str,
    tags: Mapping[str, str],
    fields: Mapping[str, FieldValue],
    time_ns: int | None = None,
) -> str:
    """One point. Tags are sorted by key, as InfluxDB prefers; empty tag values are left out."""
    if not fields:
        raise LineProtocolError("a point needs at least one field")
    parts = [measurement(measurement_name)]
    for key in sorted(tags):
        if tags[key] != "":
            parts.append(f",{name('tag key', key)}={name('tag value', tags[key])}")
    head = "".join(parts)
    body = ",".join(f"{name('field key', k)}={field_value(v)}" for k, v in fields.items())
    return f"{head} {body}" if time_ns is None else f"{head} {body} {time_ns}"


def with_fields(point: str, fields: Mapping[str, FieldValue]) -> str:
    """``point``, a line that ends in its timestamp, with ``fields`` written after its own.

    For the few points that carry more than their usual fields (a late sample's ``late_s``), so the usual
    ones keep their one fast encoding.
    """
    at = point.rfind(" ")
    if at < 0 or not point[at + 1:].lstrip("-").isdigit():
        raise LineProtocolError(f"{point!r} does not end in a timestamp")
    if not fields:
        return point
    extra = ",".join(f"{name('field key', k)}={field_value(v)}" for k, v in fields.items())
    return f"{point[:at]},{extra}{point[at:]}"


# sample_lines writes each value as ``repr(float(value))``, the dearest part of the gateway's work
# after parsing. orjson writes the same shortest digits for a float in fixed notation, for all of a
# sample's values in one call, except between 1e-5 and 1e-4 (``0.00001`` where repr writes ``1e-05``).
# So a sample goes through orjson.dumps when, with digits and '-' taken out, its JSON has the shape
# ``{"name":.,"name":.}``: every value a float in fixed notation (an int has no '.', other notations
# and values have letters or quotes), every name of letters a-z, '_', digits and '-', which JSON and
# line protocol write as they are. And when it holds no ``0.0000``. The rest are written value by
# value. test_lineprotocol_fast_path.py compares the two ways.
_NUMBER_CHARS = b"0123456789-"
_SHAPE = re.compile(rb'\{"[a-z_]*":\.(,"[a-z_]*":\.)*\}')
_SHAPES: set[bytes] = set()  # shapes seen, all matching _SHAPE
_JSON_TO_FIELDS = bytes.maketrans(b":", b"=")
_JSON_PUNCTUATION = b'{}"'


def _new_plain_shape(shape: bytes) -> bool:
    if not _SHAPE.fullmatch(shape):
        return False
    if len(_SHAPES) >= 4096:
        _SHAPES.clear()
    _SHAPES.add(shape)
    return True


def sample_lines(head: str, samples: Iterable[Sample]) -> list[str]:
    """The points of validated samples in one series, every value a float field, timestamps in milliseconds.

    ``head`` is the series' measurement and tags, escaped, and a space (``readings,kit=k07,site=s1 ``):
    ``lauks.schema.readings_lines`` makes it. Catalog names are plain, so this fast path escapes
    nothing; every value is written as a float so a whole number never becomes an integer field.
    """
    lines = []
    for s in samples:
        values = s.values
        if not values:
            continue
        try:
            text = orjson.dumps(values)
        except TypeError:  # a value or name orjson does not know, such as a subclass of float
            pass
        else:
            shape = text.translate(None, _NUMBER_CHARS)
            if shape in _SHAPES or _new_plain_shape(shape):
                body = text.translate(_JSON_TO_FIELDS, _JSON_PUNCTUATION).decode()
                if "0.0000" not in body:
                    lines.append(f"{head}{body} {s.time_ms}")
                    continue
        body = ",".join([f"{k}={float(v)!r}" for k, v in values.items()])
        lines.append(f"{head}{body} {s.time_ms}")
    return lines
