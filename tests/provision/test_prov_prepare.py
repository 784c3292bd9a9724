"""``lauks kit prepare``: the image is checked (chip, whole-flash layout, MicroPython) before anything
reaches the kit, and --dry-run prints esptool's erase and its write at the chip's offset."""

from __future__ import annotations

import http.server
import shlex
import socket
import struct
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from prov_cli import lauks as main

from firmware.provision import CHIPS, PARTITION_TABLE_AT, chip_from_esptool, inspect_image, prepare
from firmware.tools import ToolError


def image_bytes(chip: str, *, app_only: bool = False, micropython: bool = True, size: int = 256 * 1024) -> bytes:
    """An image laid out like MicroPython's firmware.bin: an ESP image header naming the chip, the
    partition table at 0x8000 of flash, and MicroPython's banner."""
    c = CHIPS[chip]
    data = bytearray(size)
    data[0], data[1] = 0xE9, 3
    struct.pack_into("<H", data, 12, c.image_chip_id)
    if not app_only:
        data[PARTITION_TABLE_AT - c.offset:PARTITION_TABLE_AT - c.offset + 2] = b"\xaa\x50"
    if micropython:
        banner = b"MicroPython v1.24.1 on 2024-11-29; Generic ESP32 module with " + c.label.encode()
        data[100_000:100_000 + len(banner)] = banner
    return bytes(data)


def write_image(folder: Path, chip: str, **kind: bool) -> Path:
    path = folder / f"{chip.upper()}_GENERIC-20241129-v1.24.1.bin"
    path.write_bytes(image_bytes(chip, **kind))
    return path


def test_the_chip_table_is_esptools_own() -> None:
    from esptool.targets import CHIP_DEFS

    for name, chip in CHIPS.items():
        assert CHIP_DEFS[name].BOOTLOADER_FLASH_OFFSET == chip.offset, name
        assert CHIP_DEFS[name].IMAGE_CHIP_ID == chip.image_chip_id, name
        assert CHIP_DEFS[name].CHIP_NAME == chip.label, name


@pytest.mark.parametrize(("chip", "offset"), [("esp32", "0x1000"), ("esp32s3", "0x0"), ("esp32c3", "0x0")])
def test_dry_run_prints_erase_then_write_at_the_chips_offset(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             chip: str, offset: str) -> None:
    image = write_image(tmp_path, chip)
    assert main(["kit", "prepare", "--port", "/dev/ttyUSB7", "--image", str(image), "--dry-run"]) == 0
    out = capsys.readouterr().out
    commands = [shlex.split(line) for line in out.splitlines() if not line.startswith("#")]
    base = [sys.executable, "-m", "esptool", "--chip", chip, "--port", "/dev/ttyUSB7", "--baud", "460800"]
    assert commands == [[*base, "erase-flash"], [*base, "write-flash", offset, str(image)]]
    assert f"MicroPython v1.24.1 for the {CHIPS[chip].label}" in out


def test_the_commands_it_prints_are_ones_esptool_accepts(tmp_path: Path) -> None:
    import subprocess

    plan = prepare("/dev/ttyUSB7", str(write_image(tmp_path, "esp32")), "esp32", dry_run=True)
    for command in plan.commands:
        at = command.index("--baud") + 2
        result = subprocess.run([*command[:at], command[at], "--help"], capture_output=True, text=True, timeout=60,
                                check=False)
        assert result.returncode == 0, result.stderr


def test_an_explicit_chip_that_the_image_is_not_for_is_refused(tmp_path: Path) -> None:
    image = write_image(tmp_path, "esp32")
    with pytest.raises(ToolError, match=r"MicroPython for the ESP32, but the kit is an ESP32-S3: .*ESP32_GENERIC_S3"):
        prepare("/dev/ttyUSB7", str(image), "esp32s3", dry_run=True)


def test_a_missing_image_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kit", "prepare", "--port", "/dev/ttyUSB7", "--image", str(tmp_path / "nope.bin"),
                 "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "no image file at" in err and "micropython.org/download/ESP32_GENERIC" in err


@pytest.mark.parametrize(("content", "says"), [
    (b"<!DOCTYPE html><html>Not Found</html>" + b" " * 70000, "a web page"),
    (b"UF2\n" + b"\0" * 70000, "a UF2 file"),
    (b"\x7fELF" + b"\0" * 70000, "an ELF file"),
    (b"hello", "too small"),
    (image_bytes("esp32", app_only=True), "app-only image"),
    (image_bytes("esp32", micropython=False), "not MicroPython"),
])
def test_a_file_that_is_not_a_micropython_image_is_refused(tmp_path: Path, content: bytes, says: str) -> None:
    path = tmp_path / "firmware.bin"
    path.write_bytes(content)
    with pytest.raises(ToolError, match=says):
        inspect_image(path)


@pytest.fixture
def image_server(tmp_path: Path) -> Iterator[str]:
    folder = tmp_path / "www"
    folder.mkdir()
    write_image(folder, "esp32s3")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kw: object) -> None:
            super().__init__(*args, directory=str(folder), **kw)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_an_image_url_is_downloaded_and_checked(image_server: str, tmp_path: Path) -> None:
    plan = prepare("/dev/ttyUSB7", image_server + "ESP32S3_GENERIC-20241129-v1.24.1.bin", dry_run=True,
                   downloads=tmp_path / "dl")
    assert plan.chip.name == "esp32s3" and plan.commands[1][-2:] == ["0x0", str(plan.image.path)]
    assert plan.image.path.read_bytes() == image_bytes("esp32s3")


def test_a_url_the_server_does_not_have_is_a_clear_error(image_server: str) -> None:
    with pytest.raises(ToolError, match="the server answered 404"):
        prepare("/dev/ttyUSB7", image_server + "missing.bin", dry_run=True)


def test_a_url_nothing_answers_is_a_clear_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free: nothing listens there once closed
    with pytest.raises(ToolError, match=r"cannot download .*Connection refused \(check the URL"):
        prepare("/dev/ttyUSB7", f"http://127.0.0.1:{port}/firmware.bin", dry_run=True)


@pytest.mark.parametrize("url", ["ftp://example.org/firmware.bin", "file:///etc/passwd"])
def test_a_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(ToolError, match="http:// or https://"):
        prepare("/dev/ttyUSB7", url, dry_run=True)


def test_prepare_on_a_port_with_no_kit_says_what_to_check(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match=r"no serial port /dev/ttyLAUKS9: is the kit plugged in"):
        prepare("/dev/ttyLAUKS9", str(write_image(tmp_path, "esp32")))


@pytest.mark.parametrize(("output", "chip"), [
    ("esptool v5.6.0\nConnected to ESP32-S3 on /dev/ttyUSB0:\nChip type:          ESP32-S3 (QFN56) (revision v0.2)\n",
     "esp32s3"),
    ("esptool.py v4.7.0\nSerial port /dev/ttyUSB0\nConnecting....\nDetecting chip type... ESP32\n"
     "Chip is ESP32-D0WD-V3 (revision v3.1)\n", "esp32"),
    ("Connecting...\nDetecting chip type... ESP32-C3\nChip is ESP32-C3 (QFN32) (revision v0.4)\n", "esp32c3"),
])
def test_the_chip_is_read_from_esptools_words_old_and_new(output: str, chip: str) -> None:
    found = chip_from_esptool(output)
    assert found is not None and found.name == chip


def test_no_chip_in_esptools_words_is_none() -> None:
    assert chip_from_esptool("A fatal error occurred: Failed to connect to Espressif device") is None


def test_the_lauks_command_has_prepare_and_probe() -> None:
    from stack.cli import build_parser

    _, available = build_parser()
    assert {"kit prepare", "kit probe"} <= available


def test_prepare_on_a_port_where_nothing_answers_changes_nothing_and_says_why(tmp_path: Path) -> None:
    import os
    import time

    controller, device = os.openpty()  # a serial line with no ESP32 behind it
    try:
        started = time.monotonic()
        with pytest.raises(ToolError, match=r"esptool found no ESP32 on /dev/pts/\d+ \(Failed to connect .*\): "
                                            r"hold the BOOT button"):
            prepare(os.ttyname(device), str(write_image(tmp_path, "esp32")))
        assert time.monotonic() - started < 30
    finally:
        os.close(controller)
        os.close(device)
