"""InfluxDB line protocol, encoded with the escaping rules of the v1 /write parser.

Names (measurement, tag keys and values, field keys) escape ',', ' ' and '='. The v1 parser has
no escape for a newline or carriage return in a name, and reads a backslash before one of
``, = space "`` (or at the very end) as an escape, so names that hold those cannot be written
faithfully: they raise ``LineProtocolError`` instead of being stored mangled. String field values
escape '\\' and '"' and may hold any text, newlines included.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

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


def readings_lines(site: str, kit: str, samples: Iterable[Sample], measurement_name: str = "readings") -> list[str]:
    """The ``readings`` points of validated samples, timestamps in milliseconds (write with precision=ms).

    Site and kit are contract ids and catalog names are plain, so this fast path needs no escaping;
    every value is written as a float so a whole number never becomes an integer field.
    """
    head = f"{measurement(measurement_name)},kit={kit},site={site} "
    return [
        head + ",".join(f"{k}={float(v)!r}" for k, v in s.values.items()) + f" {s.time_ms}"
        for s in samples
        if s.values
    ]
