"""Which time zone names we accept: real IANA zones only, never the system's aliases or leap-second variants.

``ZoneInfo`` opens any file under the zoneinfo folder: ``right/Europe/Riga`` (counts leap seconds, so
daily buckets drift), ``posix/...``, ``localtime`` (whatever the server is set to) and ``Factory`` (no
zone at all). A request names a zone a school lives in, so only ``zoneinfo.available_timezones()``
counts, without those.
"""

from __future__ import annotations

import zoneinfo
from functools import cache

NOT_ZONES = frozenset({"localtime", "Factory", "posixrules"})


@cache
def known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones() - NOT_ZONES) | {"UTC"}


def zone_problem(name: str) -> str | None:
    """None if ``name`` is an IANA zone we accept, else a sentence saying what to send."""
    if name in known_zones():
        return None
    shown = name[:64]
    return f"time zone {shown!r} is not an IANA time zone: use a name such as Europe/Riga, Europe/Vilnius or UTC"
