"""Commands of this part of Lauks (none yet)."""

from __future__ import annotations

import argparse
from typing import Any


def register(commands: argparse._SubParsersAction[Any], kit_commands: argparse._SubParsersAction[Any]) -> None:
    """Add this part's subcommands to ``lauks`` and to ``lauks kit``."""
