"""Gaps: intervals with no readings longer than 3 x the kit's interval, per kit (a dataset carries them).

A kit is in a gap where none of the chosen quantities has a reading for longer than ``GAP_INTERVALS`` times its
interval. The work is done in InfluxDB: ``ELAPSED()`` in a subquery with a ``WHERE`` on it returns only the
spaces between readings that are too long, and ``LIMIT 1`` the first and last reading, so a year of one-minute
data comes back as a handful of rows and is never held in memory. Quantities are taken one after the other and
each is read only inside the gaps the ones before left (a gap of the kit lies inside a gap of every quantity),
so a dataset of several quantities costs about one pass over one of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lauks import influxql, schema
from lauks.catalog import CATALOG
from lauks.derived import DERIVED, stored_inputs
from lauks.influx import InfluxClient

GAP_INTERVALS = 3  # a gap is longer than this many of the kit's intervals
DEFAULT_INTERVAL_S = 60
# Past this many gaps left by the quantities before, the next quantity is read over the whole window and the two
# lists intersected, rather than asked about gap by gap (a kit whose first quantity comes every 10 minutes only).
MAX_PIECES_ASKED = 64
# A long window is read a slice at a time: a year of one-minute readings is 12 requests of a month each, run a few
# at once (InfluxDB runs each request on one core), and none comes near the client's timeout.
SLICE_MS = 31 * 86_400_000
STATEMENTS_PER_REQUEST = 3 * 4  # 3 per slice; they travel in the request's URL, about 300 characters each
CONCURRENT_REQUESTS = 4

_READINGS = influxql.identifier(schema.READINGS)
_STATUS = influxql.identifier(schema.KIT_STATUS)
_SITE = influxql.identifier(schema.SITE)
_KIT = influxql.identifier(schema.KIT)
_INTERVAL = influxql.identifier(schema.INTERVAL_S)

Piece = tuple[int, int]  # (start ms, end ms): no reading strictly between


@dataclass(frozen=True, slots=True)
class Gap:
    kit: str
    start: datetime  # the last reading before it (or the window's start)
    end: datetime  # the first reading after it (or the window's end)

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


async def kit_intervals(client: InfluxClient, database: str, site: str, kits: list[str]) -> dict[str, int]:
    """Each kit's interval in seconds (its last status message's interval_s, else DEFAULT_INTERVAL_S)."""
    found = dict.fromkeys(kits, DEFAULT_INTERVAL_S)
    if not kits:
        return found
    statement = (f"SELECT last({_INTERVAL}) FROM {_STATUS} WHERE {_SITE} = {influxql.string(site)} "
                 f"AND {_KIT} =~ {influxql.regex_exact(list(kits))} GROUP BY {_KIT}")
    async for series in client.query(statement, database=database):
        kit = series.tags.get(schema.KIT)
        if kit not in found or not series.values:
            continue
        value = series.values[-1][-1]
        # the gateway stores only 1..86400 (the contract), but the store is a public interface: anything else is
        # taken as unknown rather than making every reading a gap or none
        if isinstance(value, int | float) and not isinstance(value, bool) and 1 <= value <= 86_400:
            found[kit] = int(value)
    return found


def gap_quantities(quantities: Iterable[str]) -> tuple[str, ...]:
    """The stored quantities whose readings count for gaps: the catalog ones, and a derived one's inputs.
    ``ValueError`` names a quantity that is neither."""
    names = tuple(quantities)
    unknown = [name for name in names if name not in CATALOG and name not in DERIVED]
    if unknown:
        raise ValueError(f"no quantity is called {', '.join(map(repr, unknown))}: gaps need catalog or derived "
                         f"quantities (GET /v1/quantities lists them)")
    stored = stored_inputs(names)
    if not stored:
        raise ValueError("gaps need at least one quantity to look for readings of")
    return stored


async def find_gaps(client: InfluxClient, database: str, site: str, kits: list[str], quantities: list[str],
                    start: datetime, end: datetime, intervals: Mapping[str, int], *,
                    now: datetime | None = None) -> list[Gap]:
    """The gaps of each kit in [start, end) in readings of any of ``quantities``, by kit (in the order of
    ``kits``) then time.

    A derived quantity counts through its inputs. The window ends at ``now`` at the latest (default: the clock):
    the time since a kit's last reading is a gap only once it is longer than 3 of the kit's intervals, so a
    rolling window that ends now shows a kit that is late, not one whose next reading is simply not due yet.
    ``ValueError`` for an unknown quantity or a naive time.
    """
    stored = gap_quantities(quantities)
    if start.tzinfo is None or end.tzinfo is None or (now is not None and now.tzinfo is None):
        raise ValueError("gaps need timezone-aware times")
    stop = min(end, now or datetime.now(UTC))
    first_ms, stop_ms = _ms(start), _ms(stop)
    limit = asyncio.Semaphore(CONCURRENT_REQUESTS)

    async def of_kit(kit: str) -> list[Gap]:
        interval = intervals.get(kit, DEFAULT_INTERVAL_S)
        if not 1 <= interval <= 86_400:  # as kit_intervals reads them: 0 would make every space a gap
            interval = DEFAULT_INTERVAL_S
        longest_ms = GAP_INTERVALS * int(interval) * 1000
        pieces = await _kit_pieces(client, database, site, kit, stored, first_ms, stop_ms, longest_ms, limit)
        return [Gap(kit, _time(a), _time(b)) for a, b in pieces]

    found = await asyncio.gather(*(of_kit(kit) for kit in dict.fromkeys(kits)))
    return [gap for gaps in found for gap in gaps]


async def _kit_pieces(client: InfluxClient, database: str, site: str, kit: str, quantities: Sequence[str],
                      first_ms: int, stop_ms: int, longest_ms: int, limit: asyncio.Semaphore) -> list[Piece]:
    """Where ``kit`` has no reading of any of ``quantities`` for longer than ``longest_ms``."""
    pieces: list[Piece] = [(first_ms, stop_ms)] if stop_ms - first_ms > longest_ms else []
    for quantity in quantities:
        if not pieces:
            break
        if len(pieces) <= MAX_PIECES_ASKED:
            pieces = await _free(client, database, site, kit, quantity, pieces, longest_ms, limit)
        else:
            whole = await _free(client, database, site, kit, quantity, [(first_ms, stop_ms)], longest_ms, limit)
            pieces = intersect(pieces, whole, longest_ms)
    return pieces


async def _free(client: InfluxClient, database: str, site: str, kit: str, quantity: str, pieces: Sequence[Piece],
                longest_ms: int, limit: asyncio.Semaphore) -> list[Piece]:
    """The parts of ``pieces`` longer than ``longest_ms`` with no reading of ``quantity``, in time order.

    A long piece is asked about a slice at a time, the slices in requests of their own at once, so InfluxDB
    uses more than one core and no request runs long; the slices are joined again in ``free_parts``."""
    sliced = [split(piece, SLICE_MS) for piece in pieces]
    statements = [s for parts in sliced for a, b in parts for s in slice_statements(site, kit, quantity, a, b,
                                                                                   longest_ms)]
    answers: list[list[tuple[int, int]]] = [[] for _ in statements]  # (time, elapsed or 0) per row

    async def ask(offset: int) -> None:
        chunk = statements[offset:offset + STATEMENTS_PER_REQUEST]
        async with limit:
            async for series in client.query(";".join(chunk), database=database):
                elapsed = series.statement_id % 3 == 2
                answers[offset + series.statement_id].extend(
                    (int(row[0]), int(row[1]) if elapsed else 0) for row in series.values)

    await asyncio.gather(*(ask(offset) for offset in range(0, len(statements), STATEMENTS_PER_REQUEST)))
    found: list[Piece] = []
    n = 0
    for (start_ms, end_ms), parts in zip(pieces, sliced, strict=True):
        told = []
        for _part in parts:
            first, last, spaces = answers[n:n + 3]
            told.append(Slice(first[0][0] if first else None, last[0][0] if last else None,
                              [(t - e, t) for t, e in spaces]))
            n += 3
        found += free_parts(start_ms, end_ms, told, longest_ms)
    return found


def split(piece: Piece, slice_ms: int) -> list[Piece]:
    """``piece`` in consecutive slices of at most ``slice_ms``."""
    start_ms, end_ms = piece
    return [(a, min(a + slice_ms, end_ms)) for a in range(start_ms, end_ms, slice_ms)] or [piece]


def slice_statements(site: str, kit: str, quantity: str, start_ms: int, end_ms: int, longest_ms: int) -> list[str]:
    """InfluxQL for the first and the last reading of ``quantity`` in [start_ms, end_ms), and every space between
    two of its readings there longer than ``longest_ms`` (its end's time and its length, ms)."""
    field = influxql.identifier(quantity)
    where = (f"{_SITE} = {influxql.string(site)} AND {_KIT} = {influxql.string(kit)} "
             f"AND time >= {start_ms * 1_000_000} AND time < {end_ms * 1_000_000}")
    return [f"SELECT {field} FROM {_READINGS} WHERE {where} LIMIT 1",
            f"SELECT {field} FROM {_READINGS} WHERE {where} ORDER BY time DESC LIMIT 1",
            f'SELECT "e" FROM (SELECT elapsed({field}, 1ms) AS "e" FROM {_READINGS} WHERE {where}) '
            f'WHERE "e" > {int(longest_ms)}']


@dataclass(frozen=True, slots=True)
class Slice:
    """What InfluxDB said of one quantity in one slice of time: its first and last reading, and the long spaces
    between its readings."""

    first_ms: int | None
    last_ms: int | None
    spaces: list[Piece]


def free_parts(start_ms: int, end_ms: int, slices: Iterable[Slice], longest_ms: int) -> list[Piece]:
    """The gaps in [start_ms, end_ms) from its consecutive slices: before the first reading, the long spaces in
    each slice, the spaces from one slice's last reading to the next slice's first, and after the last."""
    parts: list[Piece] = []
    before = start_ms
    for part in slices:
        if part.first_ms is None or part.last_ms is None:
            continue
        parts.append((before, part.first_ms))
        parts += part.spaces
        before = part.last_ms
    parts.append((before, end_ms))
    return [(a, b) for a, b in parts if b - a > longest_ms]


def intersect(left: Sequence[Piece], right: Sequence[Piece], longest_ms: int) -> list[Piece]:
    """Where two time-ordered lists of disjoint pieces overlap, pieces no longer than ``longest_ms`` left out."""
    found: list[Piece] = []
    i = j = 0
    while i < len(left) and j < len(right):
        a = max(left[i][0], right[j][0])
        b = min(left[i][1], right[j][1])
        if b - a > longest_ms:
            found.append((a, b))
        if left[i][1] < right[j][1]:
            i += 1
        else:
            j += 1
    return found


def _ms(moment: datetime) -> int:
    return int(influxql.time_literal(moment)) // 1_000_000


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _time(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)
