"""Calibrations: per kit and quantity, value' = gain * value + offset over [valid_from, valid_to). Pure.

The store keeps them (``metastore.registry``), the read path applies them (never to InfluxDB's raw values),
and a co-location fit (``fit``) finds a kit's gain and offset against a reference kit by least squares.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lauks.catalog import CATALOG, QUANTITY_NAMES

# A co-location fit on fewer pairs than this is refused: with 30 ten-minute means (five hours) a few odd
# buckets no longer decide the gain.
MIN_PAIRS = 30
FORMULA = "calibrated = gain × raw + offset"


@dataclass(frozen=True, slots=True)
class Calibration:
    id: int
    site: str
    kit: str
    quantity: str
    offset: float
    gain: float
    valid_from: datetime
    valid_to: datetime | None  # None: still in force
    reason: str
    created_by: str
    created_at: datetime

    def covers(self, time_ms: int) -> bool:
        start = self.valid_from.timestamp() * 1000
        return start <= time_ms and (self.valid_to is None or time_ms < self.valid_to.timestamp() * 1000)

    def apply(self, value: float) -> float:
        return self.gain * value + self.offset

    def apply_aggregate(self, agg: str, value: float, count: int | None = None) -> float:
        """A bucket's aggregate of raw values as the aggregate of calibrated ones: mean, min, max and median map
        linearly (gain > 0 keeps the order), a sum of n values gains n offsets, a count stays."""
        if agg == "count":
            return value
        if agg == "sum":
            if count is None:
                raise ValueError("a calibrated sum needs the number of values it adds up")
            return self.gain * value + self.offset * count
        return self.apply(value)

    def overlaps(self, start: datetime, end: datetime | None) -> bool:
        """Whether [valid_from, valid_to) and [start, end) share a moment (None: no end)."""
        return windows_overlap(self.valid_from, self.valid_to, start, end)

    def as_json(self) -> dict[str, Any]:
        """As a dataset's datapackage.json records it (times in UTC, ISO 8601)."""
        unit = CATALOG[self.quantity].unit if self.quantity in CATALOG else ""
        return {
            "id": self.id, "site": self.site, "kit": self.kit, "quantity": self.quantity,
            "gain": self.gain, "offset": self.offset, "offset_unit": unit, "formula": FORMULA,
            "valid_from": _iso(self.valid_from), "valid_to": _iso(self.valid_to) if self.valid_to else None,
            "reason": self.reason, "created_by": self.created_by, "created_at": _iso(self.created_at),
        }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def windows_overlap(a_start: datetime, a_end: datetime | None, b_start: datetime, b_end: datetime | None) -> bool:
    """Half-open windows [start, end) overlap when each starts before the other ends (None: never ends)."""
    return (b_end is None or a_start < b_end) and (a_end is None or b_start < a_end)


def in_force(calibrations: Iterable[Calibration], kit: str, quantity: str, time_ms: int) -> Calibration | None:
    """The calibration of this kit and quantity that covers ``time_ms`` (windows never overlap: at most one)."""
    for calibration in calibrations:
        if calibration.kit == kit and calibration.quantity == quantity and calibration.covers(time_ms):
            return calibration
    return None


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a calibration cannot be stored: a stable code and a sentence a staff member can act on."""

    code: str
    message: str


def quantity_problem(quantity: str) -> Problem | None:
    """Only stored catalog quantities are calibrated: a derived one follows from its calibrated inputs."""
    if quantity in CATALOG:
        return None
    from lauks.derived import DERIVED  # the derived table names its inputs

    derived = DERIVED.get(quantity)
    if derived is not None:
        inputs = " and ".join(derived.inputs) or "its inputs"
        return Problem("derived_quantity", f"{quantity} is computed when read, from {inputs}: calibrate "
                                           f"{'those' if len(derived.inputs) > 1 else 'that'} instead")
    close = [q for q in QUANTITY_NAMES if q.startswith(quantity[:3].lower())] if quantity else []
    hint = f" Did you mean {' or '.join(close[:3])}?" if close else ""
    return Problem("unknown_quantity", f"quantity {quantity[:40]!r} is not in the catalog.{hint} The list is at "
                                       "/v1/quantities.")


def values_problem(offset: float, gain: float, valid_from: datetime, valid_to: datetime | None) -> Problem | None:
    """What is wrong with a calibration's numbers and window, or None."""
    for name, number in (("gain", gain), ("offset", offset)):
        if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
            return Problem("bad_number", f"{name} must be a finite number, not {number!r}")
    if gain <= 0:
        return Problem("bad_gain", f"gain must be above 0 (1 leaves the value as measured), not {gain:g}: a gain "
                                   "of 0 would make every reading the offset, and a negative one turn them upside "
                                   "down")
    for name, moment in (("valid_from", valid_from), ("valid_to", valid_to)):
        if moment is not None and moment.tzinfo is None:
            return Problem("bad_time", f"{name} {moment.isoformat()} has no offset: give it like "
                                       "2025-03-01T09:00+02:00")
    if valid_to is not None and valid_to <= valid_from:
        return Problem("reversed_window", f"the calibration would end ({_iso(valid_to)}) before it starts "
                                          f"({_iso(valid_from)}): swap them, or leave the end out (in force "
                                          "until ended)")
    return None


# --- co-location fit ----------------------------------------------------------------------------------------


class FitRefused(Exception):
    """No fit can be trusted on these pairs; ``code`` is stable, ``message`` says what to do."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Fit:
    """reference ≈ gain × kit + offset, by least squares over ``pairs`` (kit, reference) pairs."""

    gain: float
    offset: float
    r_squared: float
    residual_rms: float
    residual_max: float  # the largest |reference - (gain × kit + offset)|
    pairs: int


def fit(pairs: Sequence[tuple[float, float]], *, min_pairs: int = MIN_PAIRS) -> Fit:
    """The least-squares line through (kit value, reference value) pairs of the same buckets.

    Refused (``FitRefused``) on no pairs, on fewer than ``min_pairs``, and when the kit's values do not vary
    (no line can be told from one point).
    """
    n = len(pairs)
    if n == 0:
        raise FitRefused("no_overlap", "the kit and the reference have no data in the same buckets of the window")
    if n < min_pairs:
        raise FitRefused("too_few_pairs", f"only {n} pair{'s' if n != 1 else ''} of buckets where both have data; "
                                          f"a fit needs at least {min_pairs}: choose a longer window")
    mean_x = math.fsum(x for x, _ in pairs) / n
    mean_y = math.fsum(y for _, y in pairs) / n
    sxx = math.fsum((x - mean_x) ** 2 for x, _ in pairs)
    sxy = math.fsum((x - mean_x) * (y - mean_y) for x, y in pairs)
    syy = math.fsum((y - mean_y) ** 2 for _, y in pairs)
    if sxx <= 1e-12 * max(1.0, mean_x * mean_x) * n:
        raise FitRefused("no_variation", f"the kit's values do not vary over the window (all about {mean_x:g}): "
                                         "choose a window where the quantity changes, e.g. a day and a night")
    gain = sxy / sxx
    offset = mean_y - gain * mean_x
    residuals = [y - (gain * x + offset) for x, y in pairs]
    ss_res = math.fsum(r * r for r in residuals)
    r_squared = 1 - ss_res / syy if syy > 0 else (1.0 if ss_res == 0 else 0.0)
    return Fit(gain=gain, offset=offset, r_squared=r_squared, residual_rms=math.sqrt(ss_res / n),
               residual_max=max(abs(r) for r in residuals), pairs=n)


def bucket_pairs(kit: dict[int, float], reference: dict[int, float]) -> list[tuple[float, float]]:
    """(kit, reference) for every bucket (by its time) where both have a value, in time order."""
    return [(kit[t], reference[t]) for t in sorted(kit.keys() & reference.keys())]
