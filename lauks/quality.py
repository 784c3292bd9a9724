"""Quality flags, worked out when data is read (never stored, never altering a reading). Pure functions.

A flag set is an ``int`` bit mask, so a million readings cost a million small ints, not sets. Raw readings get
``series_masks`` (stuck, spike: from the kit's series of one quantity) or'ed with ``reading_mask`` (battery low,
backfilled, clock estimated: from the point's own facts); an aggregated bucket gets ``bucket_mask`` from its
statistics alone, so a rollup and the raw aggregate flag the same buckets. docs/schema.md, "Quality flags",
defines each flag for people.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import pairwise

from lauks.catalog import CATALOG

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
# Two readings further apart than this many typical intervals are not one run: a gap breaks runs and rates.
GAP_INTERVALS = 3
# A fast change and a fast change back within this many readings are one spike (the readings between them are
# flagged, the return is not); further apart, each is a step and flags only the first reading after it.
SPIKE_MAX_READINGS = 5

TIDY_SEPARATOR = ";"  # between the flag names of one value: "stuck;battery_low"
WIDE_SEPARATOR = " "  # between a row's quantity:flags pairs: "temperature:stuck humidity:spike+battery_low"
WIDE_JOINER = "+"  # between the flag names of one quantity in the wide layout


class UnknownQuantity(ValueError):
    """A quantity neither the catalog nor the derived quantities know."""


def names(mask: int) -> list[str]:
    """The flag names of ``mask`` in FLAGS order."""
    return [name for name, bit in FLAGS.items() if mask & bit]


def mask_of(flag_names: Iterable[str]) -> int:
    """The mask of flag names; ``ValueError`` naming the unknown one and the known ones."""
    mask = 0
    for name in flag_names:
        bit = FLAGS.get(name)
        if bit is None:
            raise ValueError(f"{name!r} is not a quality flag: choose from {', '.join(FLAGS)}")
        mask |= bit
    return mask


def tidy_text(mask: int) -> str:
    """A tidy row's ``flags`` cell: names joined by ";" ("" for none)."""
    return TIDY_SEPARATOR.join(names(mask)) if mask else ""


def wide_text(quantities: Sequence[str], masks: Sequence[int]) -> str:
    """A wide row's ``flags`` cell: "temperature:stuck humidity:spike+battery_low", quantities in the row's
    column order, only those flagged ("" for none)."""
    return WIDE_SEPARATOR.join(f"{q}:{WIDE_JOINER.join(names(m))}" for q, m in zip(quantities, masks, strict=True) if m)


def _thresholds(quantity: str) -> tuple[float | None, float | None]:
    """(stuck_minutes, max_rate) of a quantity; a derived one has none (its inputs carry the flags)."""
    row = CATALOG.get(quantity)
    if row is not None:
        return row.stuck_minutes, row.max_rate
    from lauks.derived import DERIVED  # here: the derived quantities may be built on this module one day

    if quantity in DERIVED:
        return None, None
    raise UnknownQuantity(f"{quantity!r} is not a quantity Lauks knows: choose one of the catalog "
                          f"({', '.join(CATALOG)}) or a derived one")


TYPICAL_SAMPLE = 10_001  # the typical interval of a longer series is the median of this many of its intervals


def typical_interval_ms(times_ms: Sequence[int]) -> int:
    """The median time between consecutive readings (0 with fewer than two). Of a long series, the median of
    ``TYPICAL_SAMPLE`` intervals spread evenly over it: a kit's interval is the same all along, and sorting a
    million intervals would cost more than the flags themselves."""
    n = len(times_ms)
    if n > TYPICAL_SAMPLE + 1:
        step = (n - 1) // TYPICAL_SAMPLE
        pairs: Iterable[tuple[int, int]] = ((times_ms[i], times_ms[i + 1]) for i in range(0, n - 1, step))
    else:
        pairs = pairwise(times_ms)
    diffs = sorted(b - a for a, b in pairs if b > a)
    return diffs[(len(diffs) - 1) // 2] if diffs else 0


def series_masks(quantity: str, times_ms: Sequence[int], values: Sequence[float | None], *,
                 interval_ms: int | None = None) -> list[int]:
    """STUCK and SPIKE of one kit's readings of one quantity, in time order (a None is no reading).

    Readings more than ``GAP_INTERVALS`` x the interval apart are in different runs: the interval is
    ``interval_ms`` when the caller knows the kit's (its status messages' interval_s), else the median time
    between the readings given.

    STUCK: every reading of a run of identical values whose first and last readings are at least the
    quantity's stuck_minutes apart.

    SPIKE: a change between consecutive readings faster than max_rate (units a minute) is a fast change. A fast
    change followed, within ``SPIKE_MAX_READINGS`` readings, by a fast change the other way is a spike: the
    readings from the first change up to (not including) the return are flagged, so a one-reading spike flags
    that reading alone. A fast change with no return in reach is a step: only the first reading after it (the
    first at the new level) is flagged, not its honest predecessor. At the start of a run the first reading
    is taken as honest.
    """
    n = len(values)
    if len(times_ms) != n:
        raise ValueError(f"{len(times_ms)} times for {n} values: give one time per value")
    masks = [0] * n
    stuck_minutes, max_rate = _thresholds(quantity)
    if n < 2 or (stuck_minutes is None and max_rate is None):
        return masks
    ts: Sequence[int] = times_ms
    vs: Sequence[float] = values  # type: ignore[assignment]  # unless it holds a None, taken out just below
    where: list[int] | None = None  # the readings' places in ``values`` when some are None
    if None in values:
        where = kept = [i for i, v in enumerate(values) if v is not None]
        ts = list(map(times_ms.__getitem__, kept))
        vs = list(map(values.__getitem__, kept))  # type: ignore[arg-type]  # no None left
    m = len(ts)
    if m < 2:
        return masks
    interval = interval_ms if interval_ms is not None and interval_ms > 0 else typical_interval_ms(ts)
    max_gap = GAP_INTERVALS * interval
    flagged: list[tuple[int, int]] = []  # (index in ts, bit); few, so the masks are touched only for them
    if stuck_minutes is not None:
        _stuck(ts, vs, max_gap, int(stuck_minutes * 60_000), flagged)
    if max_rate is not None:
        _spikes(ts, vs, max_gap, max_rate / 60_000, flagged)
    for k, bit in flagged:
        masks[k if where is None else where[k]] |= bit
    return masks


def _stuck(ts: Sequence[int], vs: Sequence[float], max_gap: int, stuck_ms: int, flagged: list[tuple[int, int]]) -> None:
    start, start_t = 0, ts[0]
    prev_t, prev_v = ts[0], vs[0]
    k = 0
    for t, v in zip(ts, vs, strict=True):
        if v != prev_v or t - prev_t > max_gap:
            if prev_t - start_t >= stuck_ms and k - 1 > start:
                flagged.extend((i, STUCK) for i in range(start, k))
            start, start_t = k, t
        prev_t, prev_v = t, v
        k += 1
    if prev_t - start_t >= stuck_ms and k - 1 > start:
        flagged.extend((i, STUCK) for i in range(start, k))


def _spikes(ts: Sequence[int], vs: Sequence[float], max_gap: int, rate_per_ms: float,
            flagged: list[tuple[int, int]]) -> None:
    pending = -1  # the first reading after a fast change not yet known to be a spike or a step
    pending_up = False
    prev_t, prev_v = ts[0], vs[0]
    k = 0
    for t, v in zip(ts, vs, strict=True):
        dt = t - prev_t
        if dt > max_gap:
            if pending >= 0:
                flagged.append((pending, SPIKE))
                pending = -1
        elif dt > 0:
            dv = v - prev_v
            if dv > rate_per_ms * dt or -dv > rate_per_ms * dt:
                up = dv > 0
                if pending >= 0 and up != pending_up and k - pending <= SPIKE_MAX_READINGS:
                    flagged.extend((i, SPIKE) for i in range(pending, k))
                    pending = -1
                else:
                    if pending >= 0:
                        flagged.append((pending, SPIKE))
                    pending, pending_up = k, up
        prev_t, prev_v = t, v
        k += 1
    if pending >= 0:
        flagged.append((pending, SPIKE))


def reading_mask(late_s: int | None, from_age: int | None, battery_v: float | None) -> int:
    """BACKFILLED, CLOCK_ESTIMATED and BATTERY_LOW of one reading from its stored facts."""
    mask = 0
    if late_s is not None and late_s > BACKFILL_S:
        mask |= BACKFILLED
    if from_age:
        mask |= CLOCK_ESTIMATED
    if battery_v is not None and battery_v < BATTERY_LOW_V:
        mask |= BATTERY_LOW
    return mask


def bucket_mask(quantity: str, every_s: int, minimum: float | None, maximum: float | None, count: int | None,
                battery_min: float | None, late_s_max: int | None, from_age_count: int | None) -> int:
    """The flags of an aggregated bucket from its statistics alone (so rollups and raw give the same).

    STUCK: the bucket is at least stuck_minutes long and holds at least two readings, all the same. SPIKE: the
    bucket's range is more than max_rate x its minutes, so some change in it was certainly too fast.
    BATTERY_LOW: its lowest battery reading is under BATTERY_LOW_V. BACKFILLED: its latest-arriving reading was
    more than BACKFILL_S late. CLOCK_ESTIMATED: a reading in it was dated from 'age'.
    """
    stuck_minutes, max_rate = _thresholds(quantity)
    mask = 0
    if minimum is not None and maximum is not None:
        if stuck_minutes is not None and every_s >= stuck_minutes * 60 and count is not None and count >= 2 \
                and minimum == maximum:
            mask |= STUCK
        if max_rate is not None and maximum - minimum > max_rate * every_s / 60:
            mask |= SPIKE
    if battery_min is not None and battery_min < BATTERY_LOW_V:
        mask |= BATTERY_LOW
    if late_s_max is not None and late_s_max > BACKFILL_S:
        mask |= BACKFILLED
    if from_age_count:
        mask |= CLOCK_ESTIMATED
    return mask
