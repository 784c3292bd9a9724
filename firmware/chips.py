"""The ESP32 chips `lauks kit prepare` knows: where MicroPython's image goes on each. No imports beyond the
standard library, so ``lauks`` can offer the choices without loading the tools (every service starts through
the ``lauks`` command, and loading the metadata store there cost each of them about 27 MB)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chip:
    name: str  # esptool's --chip
    label: str  # what esptool and the board's label print
    offset: int  # where the whole-flash image (bootloader first) goes
    image_chip_id: int  # the chip id an image's extended header names
    board: str  # MicroPython's download page for it


# From esptool's own chip definitions (BOOTLOADER_FLASH_OFFSET, IMAGE_CHIP_ID; a test holds them to it).
CHIPS = {c.name: c for c in (
    Chip("esp32", "ESP32", 0x1000, 0, "ESP32_GENERIC"),
    Chip("esp32s2", "ESP32-S2", 0x1000, 2, "ESP32_GENERIC_S2"),
    Chip("esp32s3", "ESP32-S3", 0x0, 9, "ESP32_GENERIC_S3"),
    Chip("esp32c3", "ESP32-C3", 0x0, 5, "ESP32_GENERIC_C3"),
    Chip("esp32c6", "ESP32-C6", 0x0, 13, "ESP32_GENERIC_C6"),
)}
