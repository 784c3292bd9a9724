"""What every benchmark's command line starts with (kept light: bench.dedup's children import it too)."""

from __future__ import annotations

import argparse
import sys


def arguments(doc: str | None) -> argparse.ArgumentParser:
    """A parser with the benchmark's docstring as its help; from here on, each printed figure is shown as it
    is measured (line-buffered), not when the run ends."""
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
