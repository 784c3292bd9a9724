"""A sparkline drawn on the server: the SVG path of a short series, where a missing bucket breaks the line.

Pure. The site page shows a sparkline per value of every kit; drawing them here keeps the page readable
without JavaScript and costs no request per card. A gap is a gap: the path lifts the pen (a new ``M``)
at every missing bucket, so a kit that was silent for two hours never looks as if it measured a straight
line through them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 100.0  # the viewBox; the CSS gives the size (the SVG is drawn with preserveAspectRatio="none")
HEIGHT = 24.0
PAD = 2.0  # so the stroke at the lowest and highest value is not cut off


@dataclass(frozen=True, slots=True)
class Spark:
    """The path of a sparkline and what a screen reader says about it."""

    path: str  # the ``d`` of the SVG path; '' when there is no value at all
    low: float | None
    high: float | None
    points: int  # values drawn
    gaps: int  # runs of missing buckets between values


def _coordinate(value: float) -> str:
    """A tenth of the 100-wide viewBox is finer than a pixel of a 6rem sparkline."""
    text = f"{value:.1f}"
    if text.endswith(".0"):
        text = text[:-2]
    return "0" if text == "-0" else text


@functools.cache
def _xs(count: int, width: float) -> tuple[str, ...]:
    """Every bucket's x, made once per length: the site page draws dozens of sparklines of one length."""
    step = width / max(count - 1, 1)
    return tuple(_coordinate(index * step) for index in range(count))


def spark(values: Sequence[float | None], width: float = WIDTH, height: float = HEIGHT) -> Spark:
    """The path of ``values`` (one per time bucket, in time order, ``None`` for a bucket without a reading).

    x spreads the buckets over ``width``; y maps the lowest value to the bottom and the highest to the top
    (a flat series is drawn in the middle). A value with no neighbour is a dot: a zero-length segment,
    which the round line cap of the stylesheet draws.
    """
    present = [v for v in values if v is not None]
    if not present:
        return Spark("", None, None, 0, 0)
    low, high = min(present), max(present)
    span = high - low
    xs = _xs(len(values), width)
    inner = height - 2 * PAD

    def y_of(value: float) -> float:
        if span == 0:
            return height / 2
        return PAD + (high - value) / span * inner

    parts: list[str] = []
    gaps = 0
    pen_down = False
    seen_value = False
    run = 0  # values in the current stretch of the line
    for index, value in enumerate(values):
        if value is None:
            if pen_down:
                if run == 1:
                    parts.append("h0")  # a lone value: a dot
                pen_down = False
            continue
        x, y = xs[index], _coordinate(y_of(value))
        if not pen_down:
            if seen_value:
                gaps += 1
            parts.append(f"M{x} {y}")
            pen_down, run = True, 1
        else:
            parts.append(f"L{x} {y}")
            run += 1
        seen_value = True
    if pen_down and run == 1:
        parts.append("h0")
    return Spark("".join(parts), low, high, len(present), gaps)
