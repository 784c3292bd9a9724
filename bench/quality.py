"""How long the read-time quality flags take: ``series_masks`` over a million readings of one kit.

    .venv/bin/python -m bench.quality [--readings 1000000] [--runs 5]

Prints the median and the slowest run, in seconds and in readings a second, for a quantity with both
thresholds (temperature), one with a few None (no reading in a point), and one with none (light).
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time

from lauks import quality


def series(n: int, holes: bool, seed: int = 13) -> tuple[list[int], list[float | None]]:
    """A minute series with a daily swing, noise, a stuck hour now and then and a spike or two."""
    rng = random.Random(seed)
    times = [1_700_000_000_000 + i * 60_000 for i in range(n)]
    values: list[float | None] = []
    for i in range(n):
        v = round(10 + 8 * math.sin(i / 1440 * 2 * math.pi) + rng.gauss(0, 0.05), 2)
        if i % 10_000 < 90:
            v = 5.0  # stuck for an hour and a half
        elif i % 7_919 == 0:
            v += 30  # a spike
        values.append(None if holes and i % 17 == 0 else v)
    return times, values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    for quantity, holes in (("temperature", False), ("temperature", True), ("light", False)):
        times, values = series(args.readings, holes)
        took = []
        for _ in range(args.runs):
            start = time.perf_counter()
            masks = quality.series_masks(quantity, times, values)
            took.append(time.perf_counter() - start)
        flagged = sum(1 for m in masks if m)
        median = statistics.median(took)
        label = f"{quantity}{' with None' if holes else ''}"
        print(f"{label:24} {args.readings:>9,} readings: median {median:.3f} s, slowest {max(took):.3f} s "
              f"({args.readings / median / 1e6:.2f} M readings/s), {flagged:,} flagged")
    rng = random.Random(1)
    rows = [(rng.choice((None, 30, 400)), rng.choice((None, 1)), rng.uniform(3.0, 4.2)) for _ in range(args.readings)]
    start = time.perf_counter()
    for late, age, battery in rows:
        quality.reading_mask(late, age, battery)
    took_s = time.perf_counter() - start
    print(f"{'reading_mask':24} {args.readings:>9,} readings: {took_s:.3f} s")


if __name__ == "__main__":
    main()
