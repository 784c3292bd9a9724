"""The firmware's pure core under CPython: the same checks test_micropython.py runs under MicroPython."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import fw_core_checks as core_checks
import pytest


@pytest.mark.parametrize(("name", "check"), core_checks.all_checks(), ids=[n for n, _ in core_checks.all_checks()])
def test_core_check(name: str, check: Callable[[], None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    check()
