"""How the tests and the benchmarks run the ``lauks`` command: ``stack.cli`` (pyproject's [project.scripts])
by this interpreter, so that it is this checkout's code whether or not the console script is installed."""

from __future__ import annotations

from pathlib import Path

from stack.up import LAUKS_COMMAND

ROOT = Path(__file__).resolve().parents[1]


def lauks_command(*args: str) -> list[str]:
    return [*LAUKS_COMMAND, *args]
