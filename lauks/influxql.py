"""InfluxQL quoting: identifiers in double quotes, string literals in single quotes, regexes escaped.

User input reaches InfluxQL only through these functions. The InfluxQL scanner reads ``\\\\``,
``\\"``, ``\\'`` and ``\\n`` inside quotes and refuses a raw line break, so each is escaped.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_QUOTED = str.maketrans({"\\": "\\\\", "\n": "\\n"})


def identifier(name: str) -> str:
    """``"name"`` for a measurement, tag key, field key or database."""
    if "\r" in name or "\x00" in name:
        raise ValueError(f"identifier {name!r} holds a character InfluxQL cannot quote")
    return '"' + name.translate(_QUOTED).replace('"', '\\"') + '"'


def string(value: str) -> str:
    """``'value'``, a string literal (tag values in WHERE)."""
    if "\r" in value or "\x00" in value:
        raise ValueError(f"string {value!r} holds a character InfluxQL cannot quote")
    return "'" + value.translate(_QUOTED).replace("'", "\\'") + "'"


def regex_exact(values: list[str]) -> str:
    """``/^(?:a|b)$/``: a regex matching exactly these strings, every metacharacter escaped."""
    if not values:
        raise ValueError("regex_exact needs at least one value")
    body = "|".join(re.escape(v).replace("/", r"\/") for v in values)
    if "\n" in body or "\r" in body:
        raise ValueError("a regex cannot hold a line break")
    return f"/^(?:{body})$/"


def time_literal(moment: datetime) -> str:
    """A time bound in nanoseconds since the epoch: no string parsing on InfluxDB's side."""
    if moment.tzinfo is None:
        raise ValueError("time bounds must be timezone-aware")
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
    return f"{ns}"
