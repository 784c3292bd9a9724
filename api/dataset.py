"""Class datasets: the readings request a dataset stands for, and its zip (CSVs, gaps.csv, datapackage.json, README).

Its files carry what a class needs to know where not to trust the data: the quality flags of every value, the
calibrations its values used, which quantities are derived (and how), and the gaps where there is no data.

A dataset whose window has ended is frozen: its files are built once, kept under
``<state_dir>/datasets/`` and served from there (``api.frozen``), so the same code always gives the
same bytes (readings backfilled after that are not added). Zip entries carry the dataset's creation time.
A rolling dataset (``rolling_days``) is the last N days up to now (``window_of``): live, never frozen.
"""

from __future__ import annotations

import zipfile
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Literal, Protocol

import orjson
from sqlalchemy.orm import Session

from api import gaps as kit_gaps
from api import streaming
from api.export import Format, TimeFormatter
from api.query import (
    ReadingsRequest,
    aggregate_statement,
    make_request,
    parse_every,
    parse_zone,
    raw_statement,
    slices,
)
from lauks import quality
from lauks.calibration import Calibration
from lauks.catalog import CATALOG
from lauks.derived import DERIVED, Derived
from lauks.influx import InfluxClient
from metastore import registry, sharecode
from metastore.db import Dataset, now
from metastore.errors import NotFound

BOM = "\ufeff".encode()  # UTF-8's byte order mark: Excel reads a CSV as UTF-8 only when it starts with one


FlagsChoice = Literal["include", "exclude", "only"]
CalibrationChoice = Literal["applied", "raw"]
FLAG_CHOICES: tuple[FlagsChoice, ...] = ("include", "exclude", "only")
CALIBRATION_CHOICES: tuple[CalibrationChoice, ...] = ("applied", "raw")
GAPS_FILE = "gaps.csv"
GAPS_RESOURCE = "kit_gaps"  # a kit's name has no '_' (lauks.topics.ID_PATTERN), so no kit's resource has it


@dataclass(frozen=True)
class CsvOptions:
    """What changes a dataset's file bytes besides its data: each choice is its own kept file (``api.frozen``).

    flags and calibration choose the data too, so a frozen dataset keeps a file per choice rather than making the
    non-default ones on the fly: made later, they would hold readings backfilled since, and a pupil comparing the
    "only flagged" file with the whole one would find rows in one that the other never had.
    """

    decimal_comma: bool = False  # ';' between columns and a decimal comma, as spreadsheets in LV/LT expect
    bom: bool = False  # a byte order mark first, so Excel on Windows reads the UTF-8 (ā, č, ų, µg/m³)
    lang: str = "en"  # the zip's README.md: its language (one of README_LANGUAGES)
    flags: FlagsChoice = "include"  # every value with its flags, only unflagged ones, or only flagged ones
    calibration: CalibrationChoice = "applied"  # calibrated values, or the values as stored
    zip_layout: Literal["wide", "tidy"] = "wide"  # the zip's CSVs: a column per quantity, or a row per value

    @property
    def suffix(self) -> str:
        """The kept file's name part: ``{code}{suffix}.{fmt}``; the defaults add nothing (older names stay)."""
        return (("-comma" if self.decimal_comma else "") + ("-bom" if self.bom else "")
                + ("" if self.flags == "include" else f"-{self.flags}")
                + ("" if self.calibration == "applied" else "-raw")
                + ("" if self.zip_layout == "wide" else "-tidy")
                + ("" if self.lang == "en" else f"-{self.lang}"))


PLAIN = CsvOptions()  # ',' and a decimal point, no byte order mark
README_LANGUAGES = ("en", "lv", "lt", "ru")
# Every suffix a kept file can have, for removing them all with the dataset.
SUFFIXES: tuple[str, ...] = tuple(CsvOptions(comma, bom, lang, flags, calibration, layout).suffix
                                  for comma in (False, True) for bom in (False, True) for lang in README_LANGUAGES
                                  for flags in FLAG_CHOICES for calibration in CALIBRATION_CHOICES
                                  for layout in ("wide", "tidy"))


@dataclass(frozen=True)
class Facts:
    """What a dataset's data depends on besides the readings: read from the metastore when its file is made."""

    calibrations: tuple[Calibration, ...] = ()  # every one of its kits and stored quantities in its window
    elevation_m: float | None = None  # the site's, for sea-level pressure
    site_zone: str | None = None  # the site's zone, which its daily rollup is kept in

    def of_kits(self, kits: Iterable[str]) -> tuple[Calibration, ...]:
        wanted = set(kits)
        return tuple(c for c in self.calibrations if c.kit in wanted)


NO_FACTS = Facts()


def stored_quantities(quantities: Iterable[str]) -> list[str]:
    """The stored quantities a selection reads: its own and the inputs of its derived ones, in order."""
    out: list[str] = []
    for q in quantities:
        derived = DERIVED.get(q)
        out += list(derived.inputs) if derived is not None else [q]
    return list(dict.fromkeys(out))


def facts_of(session: Session, dataset: Dataset, at: datetime | None = None) -> Facts:
    """The calibrations and the elevation a dataset's files use, at ``at`` (a rolling window moves)."""
    start, end = window_of(dataset, at)
    try:
        site = registry.get_site(session, dataset.site)
    except NotFound:  # a dataset outlives its site's row only if someone deleted it by hand: no elevation then
        elevation, zone = None, None
    else:
        elevation, zone = site.elevation_m, site.timezone
    found = registry.calibrations_for(session, dataset.site, list(dataset.kits),
                                      stored_quantities(dataset.quantities), start, end)
    return Facts(tuple(found), elevation, zone)


class Translate(Protocol):
    """A message in the reader's language with its ``%(name)s`` parts filled in (the web app's catalogs)."""

    def __call__(self, message: str, **values: Any) -> str: ...


def english(message: str, **values: Any) -> str:
    return message % values if values else message


def window_of(dataset: Dataset, at: datetime | None = None) -> tuple[datetime, datetime]:
    """The window the dataset stands for at ``at`` (default: now), as (start, end), end excluded.

    Fixed: its start and end. Rolling: the last ``rolling_days`` days up to ``at``; with buckets (``every``), the
    start goes back to where its bucket starts in the dataset's time zone, so the first bucket is a whole one
    (a daily mean of the last three hours of a day would mislead a class).
    """
    if dataset.rolling_days is None:
        return dataset.start, dataset.end
    end = (at or now()).replace(microsecond=0)
    start = end - timedelta(days=dataset.rolling_days)
    if dataset.every:
        zone = parse_zone(dataset.timezone)
        local = start.astimezone(zone)
        midnight = datetime.combine(local.date(), time(0), zone)
        step = parse_every(dataset.every)
        into = (local.replace(tzinfo=None) - midnight.replace(tzinfo=None)).total_seconds()
        start = (midnight.replace(tzinfo=None) + timedelta(seconds=into // step * step)).replace(tzinfo=zone)
    return start, end


def is_frozen(dataset: Dataset, at: datetime | None = None) -> bool:
    """A fixed window that has ended: its bytes never change again. A rolling dataset never is."""
    return dataset.rolling_days is None and dataset.end <= (at or now())


def request_of(dataset: Dataset, *, layout: str = "tidy", kits: list[str] | None = None,
               at: datetime | None = None, facts: Facts = NO_FACTS,
               options: CsvOptions = PLAIN) -> ReadingsRequest:
    """The readings request a dataset stands for: its window at ``at``, the calibrations and elevation of
    ``facts``, and the flags and calibration choices of ``options`` (every value, calibrated, by default)."""
    start, end = window_of(dataset, at)
    kits = kits or list(dataset.kits)
    return make_request(site=dataset.site, kits=kits, quantities=list(dataset.quantities),
                        start=start, end=end, zone=parse_zone(dataset.timezone),
                        every=dataset.every, agg=dataset.agg, layout="wide" if layout == "wide" else "tidy",
                        max_raw_days=100_000, flags=options.flags, calibration=options.calibration,
                        calibrations=facts.of_kits(kits), elevation_m=facts.elevation_m, site_zone=facts.site_zone)


def statements(request: ReadingsRequest) -> list[str]:
    if not request.aggregated:
        return [raw_statement(request)]
    return [aggregate_statement(request, a, b) for a, b in slices(request)]


# What each flag means, for a reading and for a bucket (lauks.quality), as datapackage.json and the README say it.
_FLAG_MEANINGS: dict[str, tuple[str, str]] = {
    "stuck": ("the same value repeated for at least the quantity's stuck_minutes",
              "the bucket is at least stuck_minutes long and its two or more readings are all the same"),
    "spike": ("a change faster than the quantity's max_rate (units a minute) to or from a neighbouring reading",
              "the bucket's maximum minus its minimum is more than max_rate times the bucket's minutes"),
    "battery_low": (f"the kit's battery was under {quality.BATTERY_LOW_V:g} V (its reading at that time, else its "
                    "last one within an hour before)",
                    f"the kit's lowest battery reading in the bucket was under {quality.BATTERY_LOW_V:g} V"),
    "backfilled": (f"arrived more than {quality.BACKFILL_S} s after its time (kept in the kit while offline)",
                   f"a reading in the bucket arrived more than {quality.BACKFILL_S} s after its time"),
    "clock_estimated": ("its time was worked out by the gateway from the kit's 'age' (the kit's clock was not set)",
                        "a reading in the bucket was dated from the kit's 'age'"),
    "calibrated": ("a calibration changed the value (see lauks.calibrations)",
                   "a calibration changed the bucket's value (see lauks.calibrations)"),
}


def _thresholds(quantities: Sequence[str]) -> str:
    """The catalog's thresholds of the stored quantities, as a sentence: where 'stuck' and 'spike' come from."""
    parts = []
    for q in stored_quantities(quantities):
        row = CATALOG[q]
        stuck = f"stuck_minutes {row.stuck_minutes:g}" if row.stuck_minutes is not None else "never stuck"
        spike = (f"max_rate {row.max_rate:g} {row.unit or 'units'}/min" if row.max_rate is not None
                 else "never a spike")
        parts.append(f"{q}: {stuck}, {spike}")
    return "; ".join(parts)


def flags_description(dataset: Dataset, *, wide: bool, choice: FlagsChoice = "include") -> str:
    """The flags column's description in datapackage.json: its format, each flag's meaning and threshold source."""
    aggregated = bool(dataset.every)
    if wide:
        layout = ("space-separated quantity:flag pairs, the flags of one quantity joined by '+', e.g. "
                  "'temperature:stuck humidity:spike+backfilled'; empty when no value of the row is flagged")
    else:
        layout = "the row's flag names joined by ';', e.g. 'stuck;battery_low'; empty when none"
    what = f"each {dataset.every} bucket" if aggregated else "each reading"
    meanings = "; ".join(f"{name}: {pair[1] if aggregated else pair[0]}" for name, pair in _FLAG_MEANINGS.items())
    held = {"include": "every value, flagged or not",
            "exclude": "only values without a quality flag (any flag but calibrated)",
            "only": "only values with a quality flag (any flag but calibrated)"}[choice]
    return (f"Quality flags of {what}, worked out from the raw readings when this file was made (never stored, "
            f"never altering a reading): {layout}. {meanings}. Thresholds from the Lauks quantity catalog "
            f"(lauks/catalog.py) at that time: {_thresholds(dataset.quantities)}. This file holds {held} "
            f"(flags={choice}).")


def _calibration_note(found: Sequence[Calibration], applied: bool) -> str:
    if not found:
        return "not calibrated: no calibration applies"
    ids = ", ".join(f"#{c.id}" for c in found)
    if not applied:
        return f"not calibrated: the values as stored (calibration=raw); calibrations {ids} were not applied"
    return (f"calibrated where a calibration's validity covers the time: value x gain + offset, calibrations {ids} "
            "in lauks.calibrations")


def _field(dataset: Dataset, request: ReadingsRequest, kit: str, name: str, options: CsvOptions,
           facts: Facts) -> dict[str, Any]:
    """One column of a kit's file in datapackage.json (wide: a column per quantity; tidy: a row per value)."""
    zone = parse_zone(dataset.timezone)
    if name == "time":
        return {"name": "time", "type": "datetime",
                "description": f"start of the bucket, ISO 8601 in {zone.key}" if dataset.every
                else f"time of the sample, ISO 8601 in {zone.key}"}
    if name == "flags":
        return {"name": "flags", "type": "string",
                "description": flags_description(dataset, wide=request.layout == "wide", choice=options.flags)}
    if name == "kit":
        return {"name": "kit", "type": "string", "description": "the kit that measured the value",
                "constraints": {"enum": [kit]}}
    if name == "quantity":
        return {"name": "quantity", "type": "string", "constraints": {"enum": list(request.quantities)},
                "description": "the quantity of the row's value; the value field's quantities describe each"}
    if name == "unit":
        return {"name": "unit", "type": "string", "description": "the unit of the row's value"}
    if name == "value":
        described = {q: _quantity_field(dataset, request, kit, q, options, facts) for q in request.quantities}
        field: dict[str, Any] = {
            "name": "value", "type": "number",
            "description": "the value of the row's quantity: " + " ".join(
                f"{q}: {d['description']}" for q, d in described.items()),
            "quantities": {q: {k: v for k, v in d.items() if k not in ("name", "type", "decimalChar")}
                           for q, d in described.items()}}
        if options.decimal_comma:
            field["decimalChar"] = ","
        return field
    return _quantity_field(dataset, request, kit, name, options, facts)


def _quantity_field(dataset: Dataset, request: ReadingsRequest, kit: str, name: str, options: CsvOptions,
                    facts: Facts) -> dict[str, Any]:
    """A stored or derived quantity's column: unit, how it was aggregated or derived, whether calibrated."""
    applied = options.calibration == "applied"
    derived = DERIVED.get(name)
    inputs = derived.inputs if derived is not None else (name,)
    used = [c for c in facts.calibrations if c.kit == kit and c.quantity in inputs]
    field: dict[str, Any] = {"name": name, "type": "number"}
    if derived is not None:
        field |= _derived_field(dataset, derived)
    else:
        row = CATALOG[name]
        how = (f"{request.aggregates[name]} over {dataset.every}, rounded to {row.resolution:g}"
               if dataset.every else "as measured")
        field |= {"title": f"{row.description} ({row.unit or 'no unit'})", "description": f"{row.description}, {how}",
                  "unit": row.unit, "ucum": row.ucum}
    field["description"] += f"; {_calibration_note(used, applied)}."
    field["calibrated"] = bool(used) and applied
    field["calibrations"] = [c.id for c in used] if applied else []
    if options.decimal_comma:
        field["decimalChar"] = ","
    return field


def _derived_field(dataset: Dataset, derived: Derived) -> dict[str, Any]:
    zone = parse_zone(dataset.timezone)
    if derived.daily is not None:
        quantity, statistic = derived.daily
        how = (f"the {statistic} of each local day's {quantity} readings in {zone.key}, one value a day dated at "
               "the local midnight")
    elif dataset.every:
        how = f"computed from each {dataset.every} bucket's aggregated {', '.join(derived.inputs)}"
    else:
        how = f"computed from each reading's {', '.join(derived.inputs)}"
    return {"title": f"{derived.description.split(':')[0]} ({derived.unit or 'no unit'}), derived, not measured",
            "description": f"{derived.description}: derived, not measured; {how}, rounded to {derived.resolution:g}. "
                           f"Formula: {derived.formula}. Reference: {derived.reference}",
            "unit": derived.unit, "ucum": derived.ucum, "derived": True, "inputs": list(derived.inputs),
            "formula": derived.formula, "reference": derived.reference}


def _dialect(options: CsvOptions) -> dict[str, Any]:
    return {"format": "csv", "mediatype": "text/csv", "encoding": "utf-8-sig" if options.bom else "utf-8",
            "dialect": {"delimiter": ";" if options.decimal_comma else ",", "lineTerminator": "\r\n"}}


def _gaps_resource(dataset: Dataset, options: CsvOptions) -> dict[str, Any]:
    zone = parse_zone(dataset.timezone)
    duration: dict[str, Any] = {"name": "duration_s", "type": "number", "unit": "s", "ucum": "s",
                                "description": "how long the gap is, in seconds (end minus start)"}
    if options.decimal_comma:
        duration["decimalChar"] = ","
    return {"name": GAPS_RESOURCE, "path": GAPS_FILE, "profile": "tabular-data-resource", **_dialect(options),
            "title": "Gaps: where there is no data",
            "description": f"Per kit, each interval longer than {kit_gaps.GAP_INTERVALS} times the kit's interval (its "
                           f"status messages' interval_s, else {kit_gaps.DEFAULT_INTERVAL_S} s) with no reading of "
                           f"any of {', '.join(stored_quantities(dataset.quantities))}: the kit was offline or not "
                           "measuring. By kit, then time.",
            "schema": {"fields": [
                {"name": "kit", "type": "string", "description": "the kit"},
                {"name": "start", "type": "datetime",
                 "description": f"the last reading before the gap (or the window's start), ISO 8601 in {zone.key}"},
                {"name": "end", "type": "datetime",
                 "description": f"the first reading after the gap (or the window's end), ISO 8601 in {zone.key}"},
                duration]}}


def datapackage(dataset: Dataset, api_path: str, options: CsvOptions = PLAIN,
                at: datetime | None = None, facts: Facts = NO_FACTS) -> dict[str, Any]:
    """Frictionless Data Package: one resource per kit, fields with units, flags, calibration and derivation,
    the gaps, licence, citation, the query, and every calibration the data used."""
    start, end = window_of(dataset, at)
    resources = []
    for kit in dataset.kits:
        request = request_of(dataset, layout=options.zip_layout, kits=[kit], at=at, facts=facts, options=options)
        columns = streaming.shape_of(request, kit_in_names=False).columns
        fields = [_field(dataset, request, kit, name, options, facts) for name in columns]
        resources.append({"name": kit, "path": file_name(dataset, "csv", kit=kit, at=at),
                          "profile": "tabular-data-resource", **_dialect(options),
                          "schema": {"fields": fields}, "lauks": {"influxql": statements(request)}})
    resources.append(_gaps_resource(dataset, options))
    created = dataset.created_at.isoformat()
    first, last = _days(dataset, at)
    citation = (f"{dataset.title}. Lauks site {dataset.site}, kits {', '.join(dataset.kits)}, "
                f"{first} to {last}. Dataset {sharecode.display(dataset.code)}, created {dataset.created_at:%Y-%m-%d}.")
    return {
        "profile": "tabular-data-package",
        "name": f"lauks-{dataset.site}-{dataset.code.lower()}",
        "title": dataset.title,
        "description": dataset.description,
        "licenses": [{"name": dataset.licence}],
        "created": created,
        "citation": citation,
        "lauks": {"code": sharecode.display(dataset.code), "site": dataset.site, "kits": list(dataset.kits),
                  "quantities": list(dataset.quantities), "start": start.isoformat(),
                  "end": end.isoformat(), "rolling_days": dataset.rolling_days, "every": dataset.every,
                  "agg": dataset.agg, "timezone": dataset.timezone, "api": api_path,
                  "flags": options.flags, "calibration": options.calibration, "layout": options.zip_layout,
                  "flag_bits": dict(quality.FLAGS), "elevation_m": facts.elevation_m,
                  "derived": [q for q in dataset.quantities if q in DERIVED],
                  # every calibration of these kits and quantities in force in the window; applied unless
                  # "calibration" is "raw"
                  "calibrations": [c.as_json() for c in facts.calibrations]},
        "resources": resources,
    }


def _row_of(q: str) -> tuple[str, float, str]:
    """unit, resolution and meaning of a stored or derived quantity, for the README's table."""
    derived = DERIVED.get(q)
    if derived is not None:
        return derived.unit, derived.resolution, f"{derived.description} (derived: {derived.formula})"
    row = CATALOG[q]
    return row.unit, row.resolution, row.description


def readme(dataset: Dataset, package: dict[str, Any], at: datetime | None = None, _: Translate = english,
           facts: Facts = NO_FACTS, options: CsvOptions = PLAIN) -> str:
    """The zip's README.md for people, in the language of ``_`` (English without it). Its sentences are in the web
    app's catalogs (area ``exports``), so each is written whole, with its parts as placeholders."""
    zone = parse_zone(dataset.timezone)
    start, end = window_of(dataset, at)
    lines = [f"# {dataset.title}", "", dataset.description, "",
             _("Measured by the Lauks sensor kits %(kits)s at site %(site)s, from %(start)s to %(end)s (%(zone)s "
               "time).", kits=", ".join(dataset.kits), site=dataset.site,
               start=start.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
               end=end.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
               zone=zone.key), ""]
    if dataset.rolling_days is not None:
        lines += [_("This is a rolling dataset: it always holds the last %(days)s days, so a download made later "
                    "holds newer readings.", days=dataset.rolling_days), ""]
    if dataset.every:
        lines += [_("Each row is one %(every)s bucket: the `time` column is when the bucket starts. Buckets in which "
                    "a kit measured nothing are left out. Values are rounded to the step the sensors can tell apart "
                    "(the resolution column).", every=dataset.every), ""]
    else:
        lines += [_("Each row is one sample as the kit measured it."), ""]
    header = [_("column"), _("unit"), _("resolution"), _("meaning")]
    if options.zip_layout == "tidy":
        header[0] = _("quantity")
        lines += [_("One file per kit, one row per value, with the columns time, kit, quantity, value, unit and "
                    "flags. The quantities:"), ""]
    else:
        lines += [_("One file per kit, one column per quantity:"), ""]
    lines += ["| " + " | ".join(header) + " |", "|---|---|---|---|"]
    for q in dataset.quantities:
        unit, resolution, meaning = _row_of(q)
        lines.append(f"| {q} | {unit or '—'} | {resolution:g} | {meaning} |")
    if options.zip_layout == "wide":
        lines.append("| flags | — | — | " + _("quality flags (see below)") + " |")
    volts = f"{quality.BATTERY_LOW_V:g}"
    example = "`stuck;battery_low`" if options.zip_layout == "tidy" else "`temperature:stuck humidity:spike+backfilled`"
    lines.append("")
    lines += [_("The `flags` column marks values not to trust blindly: stuck (the same value for too long), spike (a "
                "change faster than is plausible), battery_low (the battery was under %(volts)s V), backfilled "
                "(arrived more than 5 minutes late), clock_estimated (the time was worked out by the gateway), "
                "calibrated (a calibration changed the value). It reads like %(example)s and is empty when no value "
                "of the row is flagged. `datapackage.json` gives each flag's threshold.", volts=volts,
                example=example), ""]
    if options.flags == "exclude":
        lines += [_("Values with a quality flag (any flag but calibrated) are left out of this download "
                    "(flags=exclude)."), ""]
    elif options.flags == "only":
        lines += [_("This download holds only values with a quality flag (any flag but calibrated) "
                    "(flags=only)."), ""]
    derived = [q for q in dataset.quantities if q in DERIVED]
    if derived:
        lines += [_("These quantities are derived from measured ones, never measured: %(names)s. Their formulas "
                    "and references are in `datapackage.json`.", names=", ".join(derived)), ""]
    lines += _calibration_lines(facts.calibrations, options, zone, _)
    lines += [_("`gaps.csv` lists each interval longer than three times a kit's interval in which the kit sent no "
                "readings (kit, start, end, duration in seconds, %(zone)s time): there is no data there, the kit was "
                "offline or not measuring.", zone=zone.key), ""]
    lines += [_("Licence: %(licence)s. Please cite it as:", licence=dataset.licence), "",
              f"> {package['citation']}", "",
              _("`datapackage.json` describes the files for programs (Frictionless Data Package), including the "
                "exact query that produced them."), ""]
    return "\n".join(lines)


def _calibration_lines(found: Sequence[Calibration], options: CsvOptions, zone: Any, _: Translate) -> list[str]:
    if not found:
        return [_("No calibration changed these values."), ""]
    if options.calibration == "raw":
        lines = [_("These are the values as stored: the calibrations below were not applied (calibration=raw)."), ""]
    else:
        lines = [_("A calibration corrected these values (value × gain + offset) while it was valid:"), ""]
    for c in found:
        since = c.valid_from.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        until = c.valid_to.astimezone(zone).strftime("%Y-%m-%d %H:%M") if c.valid_to else _("still valid")
        sign = "+" if c.offset >= 0 else "−"
        lines.append(f"- #{c.id} {c.kit} {c.quantity}: × {c.gain:g} {sign} {abs(c.offset):g}, {since} – {until}: "
                     f"{c.reason} ({c.created_by})")
    return [*lines, ""]


def gaps_csv(found: Sequence[kit_gaps.Gap], dataset: Dataset, options: CsvOptions) -> bytes:
    """gaps.csv: kit, start, end, duration_s, times in the dataset's zone, in the zip's CSV dialect."""
    sep = ";" if options.decimal_comma else ","
    fmt = TimeFormatter(parse_zone(dataset.timezone))
    lines = [sep.join(("kit", "start", "end", "duration_s"))]
    for gap in found:
        seconds = round(gap.seconds, 3)
        duration = str(int(seconds)) if seconds == int(seconds) else repr(seconds)
        if options.decimal_comma:
            duration = duration.replace(".", ",")
        lines.append(sep.join((gap.kit, fmt(_ms(gap.start)), fmt(_ms(gap.end)), duration)))
    return ((BOM if options.bom else b"") + ("\r\n".join(lines) + "\r\n").encode())


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def gaps_of(client: InfluxClient, database: str, dataset: Dataset,
                  at: datetime | None = None) -> list[kit_gaps.Gap]:
    """The dataset's gaps in its window at ``at``, per kit, in readings of its stored quantities."""
    start, end = window_of(dataset, at)
    kits = list(dataset.kits)
    intervals = await kit_gaps.kit_intervals(client, database, dataset.site, kits)
    return await kit_gaps.find_gaps(client, database, dataset.site, kits, stored_quantities(dataset.quantities),
                                    start, end, intervals)


class _Sink:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: Any) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        data = b"".join(self.parts)
        self.parts = []
        return data


async def zip_bytes(client: InfluxClient, database: str, dataset: Dataset, api_path: str,
                    options: CsvOptions = PLAIN, at: datetime | None = None,
                    translate: Translate | None = None, facts: Facts = NO_FACTS) -> AsyncIterator[bytes]:
    """The zip, written as it streams: nothing bigger than a chunk is held. Every part is of one window."""
    at = at or now()
    sink = _Sink()
    stamp = dataset.created_at.timetuple()[:6]
    archive = zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED)  # type: ignore[call-overload]

    def entry(name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        return info

    package = datapackage(dataset, api_path, options, at, facts)
    found = await gaps_of(client, database, dataset, at)
    archive.writestr(entry("README.md"), readme(dataset, package, at, translate or english, facts, options))
    archive.writestr(entry("datapackage.json"), orjson.dumps(package, option=orjson.OPT_INDENT_2))
    archive.writestr(entry(GAPS_FILE), gaps_csv(found, dataset, options))
    yield sink.drain()
    for kit in dataset.kits:
        request = request_of(dataset, layout=options.zip_layout, kits=[kit], at=at, facts=facts, options=options)
        with archive.open(entry(file_name(dataset, "csv", kit=kit, at=at)), "w", force_zip64=True) as member:
            if options.bom:
                member.write(BOM)
            async for part in streaming.body(client, database, request, "csv", decimal_comma=options.decimal_comma,
                                             kit_in_names=False):
                member.write(part)
                data = sink.drain()
                if data:
                    yield data
        yield sink.drain()
    archive.close()
    yield sink.drain()


def _days(dataset: Dataset, at: datetime | None) -> tuple[str, str]:
    """The first and the last day the window touches, in the dataset's zone (an end at midnight excludes it)."""
    zone = parse_zone(dataset.timezone)
    start, end = window_of(dataset, at)
    last = end.astimezone(zone)
    if last.time() == time(0) and end > start:
        last -= timedelta(days=1)
    return f"{start.astimezone(zone):%Y-%m-%d}", f"{last:%Y-%m-%d}"


def file_name(dataset: Dataset, extension: str, *, kit: str | None = None, at: datetime | None = None) -> str:
    """``lauks_<site>_<CODE>_<first day>_<last day>[_<kit>].<ext>``: one stem for data.csv's download, the zip
    and the CSVs inside it, so a pupil sees they belong together. Days are the dataset's local days, the last one
    included (as /v1/readings names its files)."""
    first, last = _days(dataset, at)
    tail = f"_{kit}" if kit else ""
    return f"lauks_{dataset.site}_{sharecode.display(dataset.code)}_{first}_{last}{tail}.{extension}"


FORMATS: tuple[Format, ...] = ("csv", "json", "parquet")
