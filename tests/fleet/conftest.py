"""The fleet tests' fixtures, from fleet_helpers."""

from fleet_helpers import api, broker

__all__ = ["api", "broker"]
