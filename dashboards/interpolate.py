"""Template variables substituted the way Grafana's InfluxDB data source does, so queries can be run without Grafana.

Grafana writes ``$timeFilter`` as ``time >= <from>ms and time <= <to>ms``, ``$__interval`` as a duration, and a
multi-value or ``All``-able variable inside a regex as its values regex-escaped and joined ``(a|b)``, or
as the variable's custom all value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

ALL = None  # a variable's value when "All" is chosen
_LEFT = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
# the characters Grafana's escapeRegex escapes (a "-" outside a class needs none)
_REGEX_SPECIAL = re.compile(r"[\\^$.|?*+()\[\]{}/]")


# The current value of each custom (single-valued) variable, used when a query's caller gives it none, as Grafana
# always has one: dashboards.flags enters its ``resolution`` here.
CURRENT: dict[str, str] = {}


class UnknownVariable(KeyError):
    """A query uses a variable nobody gave a value for."""


def regex_value(values: Sequence[str] | None, all_value: str = ".*") -> str:
    if values is None:
        return all_value
    escaped = [_REGEX_SPECIAL.sub(lambda m: "\\" + m.group(0), v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def interpolate(
    query: str,
    *,
    variables: Mapping[str, Sequence[str] | None],
    time_from_ms: int,
    time_to_ms: int,
    interval: str = "1m",
) -> str:
    """``query`` with every ``$name`` or ``${name}`` replaced; ``UnknownVariable`` if one has no value."""
    builtins = {
        "timeFilter": f"time >= {time_from_ms}ms and time <= {time_to_ms}ms",
        "__interval": interval,
        "interval": interval,
        "__interval_ms": str(_duration_ms(interval)),
    }

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in builtins:
            return builtins[name]
        if name in variables:
            return regex_value(variables[name])
        if name in CURRENT:
            return CURRENT[name]
        raise UnknownVariable(f"the query uses ${name}, which has no value: {query}")

    # In ``/^$site$/`` the second $ anchors the regex: it is followed by '/', not by a name, so it stays.
    return _LEFT.sub(substitute, query)


def _duration_ms(text: str) -> int:
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d)", text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like 10s, 1m or 1h")
    factor = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}[match.group(2)]
    return int(match.group(1)) * factor
