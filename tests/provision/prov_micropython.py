"""Run a script under real MicroPython 1.29 (WebAssembly, firmware/mpy_node.mjs), as tests/firmware does."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "firmware" / "mpy_node.mjs"
PACKAGE = ROOT / "firmware" / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"


def run_micropython(tmp: Path, source: str, timeout_s: float = 120) -> str:
    """The script's stdout; the test fails with MicroPython's error if it raised."""
    if shutil.which("node") is None or not PACKAGE.exists():
        pytest.fail("MicroPython for Node is missing: run `make node-deps` (needs Debian's nodejs and npm)")
    script = tmp / "script.py"
    script.write_text(source)
    result = subprocess.run(["node", str(RUNNER), str(script)], capture_output=True, text=True, timeout=timeout_s,
                            check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout
