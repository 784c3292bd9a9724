"""Where the device code lives, and how host tools import it (the real firmware, not a copy)."""

from __future__ import annotations

import sys
from pathlib import Path

DEVICE_DIR = Path(__file__).resolve().parent / "device"


def use_device_code() -> None:
    """Make ``import lauks_kit`` load firmware/device/lauks_kit under CPython."""
    if str(DEVICE_DIR) not in sys.path:
        sys.path.insert(0, str(DEVICE_DIR))


def device_files() -> list[Path]:
    """Every file that goes onto a kit."""
    return sorted(p for p in DEVICE_DIR.rglob("*.py") if "__pycache__" not in p.parts)
