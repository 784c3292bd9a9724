"""Quality flags, worked out when data is read (never stored, never altering a reading). Pure functions.

STUB: the interface the read path (api/) is written against; the flags helper fills it in.
A flag set is an ``int`` bit mask, so a million readings cost a million small ints, not sets.
"""

from __future__ import annotations

from collections.abc import Sequence

STUCK = 1  # the same value repeated for the catalog's stuck_minutes where the quantity normally varies
SPIKE = 2  # a change faster than the catalog's max_rate (units a minute)
BATTERY_LOW = 4  # taken while the kit's battery was under BATTERY_LOW_V
BACKFILLED = 8  # arrived more than BACKFILL_S after its time (the stored late_s)
CLOCK_ESTIMATED = 16  # dated from 'age' (the stored from_age)
CALIBRATED = 32  # a calibration changed the value (set by the read path, calibration=applied)
FLAGS: dict[str, int] = {"stuck": STUCK, "spike": SPIKE, "battery_low": BATTERY_LOW, "backfilled": BACKFILLED,
                         "clock_estimated": CLOCK_ESTIMATED, "calibrated": CALIBRATED}
BATTERY_LOW_V = 3.3
BACKFILL_S = 300
# Readings this far either side of a window are read too, so a run or a jump at its edge is judged whole.
CONTEXT_MS = 12 * 3600 * 1000


def names(mask: int) -> list[str]:
    """The flag names of ``mask`` in FLAGS order."""
    return [name for name, bit in FLAGS.items() if mask & bit]


def series_masks(quantity: str, times_ms: Sequence[int], values: Sequence[float | None]) -> list[int]:
    """STUCK and SPIKE of one kit's readings of one quantity, in time order (a None is no reading)."""
    raise NotImplementedError


def reading_mask(late_s: int | None, from_age: int | None, battery_v: float | None) -> int:
    """BACKFILLED, CLOCK_ESTIMATED and BATTERY_LOW of one reading from its stored facts."""
    raise NotImplementedError


def bucket_mask(quantity: str, every_s: int, minimum: float | None, maximum: float | None, count: int | None,
                battery_min: float | None, late_s_max: int | None, from_age_count: int | None) -> int:
    """The flags of an aggregated bucket from its statistics alone (so rollups and raw give the same)."""
    raise NotImplementedError
