"""Derived quantities (dew point, sea-level pressure, daily statistics): computed when read, never stored.

STUB: the interface the read path is written against; the derived-quantities helper fills it in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True)
class Derived:
    name: str
    unit: str
    ucum: str
    description: str
    inputs: tuple[str, ...]  # stored quantities it is computed from
    formula: str  # as the datapackage.json shows it
    reference: str  # where the formula comes from
    resolution: float = field(kw_only=True)
    # A daily quantity is one value per school day: ``daily`` is (stored quantity, statistic), computed as
    # that statistic of the day's readings in the site's zone, and dated at the local midnight.
    daily: tuple[str, Literal["min", "max", "mean", "sum"]] | None = field(default=None, kw_only=True)
    needs_elevation: bool = field(default=False, kw_only=True)

    def compute(self, values: Mapping[str, float | None], elevation_m: float | None = None) -> float | None:
        """A per-reading derived value from its inputs at one time (None if an input is missing)."""
        raise NotImplementedError


DERIVED: dict[str, Derived] = {}
