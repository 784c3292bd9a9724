"""A kit's rejections said in the reader's language: one sentence per ``lauks.contract.Reason`` built from the
stored parts (``field_name``, ``bad_value``, ``bound``, ``sample_index``, ``count``), plus what to do about it.

Never parsed out of the English ``detail``: that stays for InfluxQL readers, and is shown only for a reason this
table does not know (a newer gateway). Numbers and dates are formatted in the reader's locale (``85,3 °C`` in lv).
The pure part (``explain``, ``group``) is tested without a store; ``fetch`` is the one query of the kit page.
"""

from __future__ import annotations

import gettext
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import orjson
from babel.messages.plurals import get_plural

from lauks import influxql, schema
from lauks.catalog import CATALOG
from lauks.contract import Reason
from lauks.influx import InfluxClient
from web.i18n import Translator
from web.sitedata import quantity_label

DAYS = 7
ROWS_PER_REASON = 2000  # the newest rejections read per reason; a kit over this is "2000 or more"


@dataclass(frozen=True)
class StoredRejection:
    """One point of ``rejections``, as stored (any part may be missing)."""

    time: datetime
    reason: str
    detail: str = ""
    field_name: str | None = None
    bad_value: str | None = None  # JSON text
    bound: float | None = None
    sample_index: int | None = None
    count: int = 1


@dataclass(frozen=True)
class Explained:
    sentence: str
    advice: str


@cache
def _plural_of(locale: str) -> Any:
    return gettext.c2py(get_plural(locale).plural_expr)


class Plurals:
    """``ngettext`` with the locale's own plural forms (its three in lv, lt and ru), for the catalogs' extractor."""

    def __init__(self, t: Translator) -> None:
        self.t = t

    def ngettext(self, singular: str, plural: str, n: int, **values: Any) -> str:
        values.setdefault("num", n)
        found = self.t._messages.get(singular)
        if isinstance(found, tuple):
            index = int(_plural_of(self.t.locale)(abs(n)))
            text = found[min(index, len(found) - 1)]
        else:
            text = singular if n == 1 else plural
        return text % values


def _value(text: str | None) -> Any:
    """The stored JSON text back as a value; text that is not JSON (cut with an ellipsis) as it is."""
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def _shown(t: Translator, value: Any, unit: str = "") -> str:
    """A value as a pupil reads it: a number in the locale's form with its unit, text in quotes."""
    if isinstance(value, bool) or value is None:
        return orjson.dumps(value).decode()
    if isinstance(value, int | float) and math.isfinite(value):
        number = t.number(value)
        return f"{number} {unit}" if unit else number
    return f"“{value}”"


def _field(t: Translator, name: str | None) -> str:
    if name is None:
        return "?"
    return quantity_label(t, name) if name in CATALOG else f"“{name}”"


def explain(t: Translator, r: StoredRejection) -> Explained:
    """The sentence and the advice for one rejection in ``t``'s language."""
    _ = t.gettext
    value = _value(r.bad_value)
    unit = CATALOG[r.field_name].unit if r.field_name in CATALOG else ""
    reason = r.reason
    if reason == Reason.OUT_OF_RANGE:
        quantity, shown = _field(t, r.field_name), _shown(t, value, unit)
        if r.bound is None:
            sentence = _("%(quantity)s %(value)s is outside the possible range.", quantity=quantity, value=shown)
        elif isinstance(value, int | float) and value < r.bound:
            sentence = _("%(quantity)s %(value)s is outside the possible range (down to %(limit)s).",
                         quantity=quantity, value=shown, limit=_shown(t, r.bound, unit))
        else:
            sentence = _("%(quantity)s %(value)s is outside the possible range (up to %(limit)s).",
                         quantity=quantity, value=shown, limit=_shown(t, r.bound, unit))
        advice = _("Check the sensor's wires and that it sits where it should. A loose or broken sensor often "
                   "sends impossible values.")
    elif reason == Reason.NOT_A_NUMBER:
        if value is None:
            sentence = _("%(quantity)s came without a number.", quantity=_field(t, r.field_name))
        else:
            sentence = _("%(quantity)s came as %(value)s, which is not a number.", quantity=_field(t, r.field_name),
                         value=_shown(t, value))
        advice = _("Check the sensor: one that cannot measure sends an empty or wrong value. When there is no "
                   "reading, leave the value out.")
    elif reason == Reason.UNKNOWN_QUANTITY:
        sentence = _("The kit sent a value named %(name)s, which Lauks does not know.", name=_field(t, r.field_name))
        advice = _("Check the names in the kit's code against the list of quantities, for example temperature "
                   "or humidity.")
    elif reason == Reason.TIME_IN_FUTURE:
        sentence = _("A reading was dated in the future, more than %(limit)s ahead of the server's clock.",
                     limit=t.duration(r.bound if r.bound is not None else 300))
        advice = _("The kit's clock is wrong. Check that it gets the time from the internet when it starts.")
    elif reason == Reason.TIME_TOO_OLD:
        earliest = datetime.fromtimestamp(r.bound if r.bound is not None else 1_577_836_800, UTC)
        sentence = _("A reading was dated before %(date)s, so the kit's clock was not set.", date=t.date(earliest))
        advice = _("Let the kit get the time from the internet before it measures, or send how long ago each "
                   "reading was taken (age) instead of the time.")
    elif reason == Reason.BAD_TIME:
        if r.field_name is None:
            sentence = _("A reading had both a time and an age.")
        else:
            sentence = _("A reading's time (%(key)s) is not valid: %(value)s.", key=r.field_name,
                         value=_shown(t, value))
        advice = _("Send either the time (t) or how long ago it was measured (age), once for each reading, "
                   "as a number of seconds.")
    elif reason == Reason.NO_TIME:
        sentence = _("A reading had no time.")
        advice = _("Add the time (t) or how long ago it was measured (age) to every reading.")
    elif reason == Reason.BAD_SAMPLE:
        sentence = _("A reading in the message was not in the right form.")
        advice = _("Each reading must be a JSON object with a time and values. Check the kit's code.")
    elif reason == Reason.TOO_LARGE:
        size = value if isinstance(value, int | float) else None
        sentence = _("A message was too big: %(size)s bytes, but at most %(limit)s are allowed.",
                     size=_shown(t, size), limit=_shown(t, r.bound if r.bound is not None else 16_384))
        advice = _("Send fewer readings in each message.")
    elif reason == Reason.NOT_JSON:
        sentence = _("A message could not be read: it was not JSON.")
        advice = _("Check how the kit's code builds its messages.")
    elif reason == Reason.NOT_AN_OBJECT:
        sentence = _("A message was JSON, but not an object in curly brackets.")
        advice = _("Check how the kit's code builds its messages.")
    elif reason == Reason.UNSUPPORTED_VERSION:
        sentence = _("A message had version %(value)s, but Lauks reads version 1.", value=_shown(t, value))
        advice = _("Update the kit's code, or make sure each message has \"v\": 1.")
    elif reason == Reason.KIT_MISMATCH:
        sentence = _("A message named another kit, %(value)s, than the one it was sent for.", value=_shown(t, value))
        advice = _("Check the kit's name in its config.json file.")
    elif reason == Reason.BAD_FIELD:
        key = "“" + (r.field_name or "?") + "”"
        sentence = _("A message's %(key)s was missing or of the wrong kind.", key=key)
        advice = _("Check the kit's code: every message needs boot, seq and samples.")
    elif reason == Reason.RATE_LIMITED:
        per_s = _shown(t, r.bound if r.bound is not None else 20)
        sentence = Plurals(t).ngettext(
            "The kit sent too fast (at most %(limit)s messages a second): %(num)d message was not stored.",
            "The kit sent too fast (at most %(limit)s messages a second): %(num)d messages were not stored.",
            r.count, limit=per_s)
        advice = _("Look for a loop in the kit's code that sends without a pause.")
    else:
        return Explained(r.detail, "")
    return Explained(sentence, advice)


@dataclass(frozen=True)
class RejectionGroup:
    """Rejections of one reason and field over the last days: how many, when first and last, and the newest."""

    reason: str
    field_name: str | None
    count: int
    first: datetime
    last: datetime
    newest: StoredRejection
    capped: bool = False


def group(rows: Iterable[StoredRejection], capped_reasons: Iterable[str] = ()) -> list[RejectionGroup]:
    """By reason and field, newest group first; ``count`` sums the points' counts (rate_limited counts messages)."""
    capped = set(capped_reasons)
    found: dict[tuple[str, str | None], list[StoredRejection]] = {}
    for row in rows:
        found.setdefault((row.reason, row.field_name), []).append(row)
    groups = []
    for (reason, field_name), items in found.items():
        items.sort(key=lambda r: r.time)
        groups.append(RejectionGroup(reason, field_name, sum(max(1, r.count) for r in items), items[0].time,
                                     items[-1].time, items[-1], reason in capped))
    groups.sort(key=lambda g: g.last, reverse=True)
    return groups


def statement(site: str, kit: str, now: datetime, days: int = DAYS) -> str:
    fields = ", ".join(influxql.identifier(f) for f in (schema.COUNT, schema.DETAIL, schema.FIELD_NAME,
                                                        schema.BAD_VALUE, schema.BOUND, schema.SAMPLE_INDEX))
    since = influxql.time_literal(now - timedelta(days=days))
    return (f"SELECT {fields} FROM {influxql.identifier(schema.REJECTIONS)} WHERE "
            f"{influxql.identifier(schema.SITE)} = {influxql.string(site)} AND "
            f"{influxql.identifier(schema.KIT)} = {influxql.string(kit)} AND time >= {since} "
            f"GROUP BY {influxql.identifier(schema.REASON)} ORDER BY time DESC LIMIT {ROWS_PER_REASON}")


def _row(reason: str, values: Mapping[str, Any]) -> StoredRejection:
    bound, index = values.get(schema.BOUND), values.get(schema.SAMPLE_INDEX)
    return StoredRejection(
        time=datetime.fromtimestamp(int(values["time"]) / 1000, UTC), reason=reason,
        detail=str(values.get(schema.DETAIL) or ""), field_name=values.get(schema.FIELD_NAME),
        bad_value=values.get(schema.BAD_VALUE), bound=float(bound) if bound is not None else None,
        sample_index=int(index) if index is not None else None, count=int(values.get(schema.COUNT) or 1))


async def fetch(client: InfluxClient, database: str, site: str, kit: str, now: datetime) -> list[RejectionGroup]:
    """The kit's rejections of the last ``DAYS`` days, grouped (one query)."""
    rows: list[StoredRejection] = []
    per_reason: dict[str, int] = {}
    async for series in client.query(statement(site, kit, now), database=database):
        reason = series.tags.get(schema.REASON, "")
        for values in series.values:
            rows.append(_row(reason, dict(zip(series.columns, values, strict=True))))
            per_reason[reason] = per_reason.get(reason, 0) + 1
    return group(rows, [r for r, n in per_reason.items() if n >= ROWS_PER_REASON])
