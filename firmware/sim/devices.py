"""Stand-ins for the buses a kit's sensors sit on, answering with the bytes the real chips would send.

The firmware's drivers read them exactly as on a kit, so the simulated kits exercise the real
register parsing, CRCs and compensation arithmetic.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from firmware.device_path import use_device_code

use_device_code()
from lauks_kit.core.crc import crc8_maxim, crc8_sensirion  # noqa: E402
from lauks_kit.drivers import bme280  # noqa: E402

# Trimming values of the BMP280 datasheet's worked example (T and P), plus typical humidity trimming.
BME280_TP = struct.pack("<HhhHhhhhhhhh", 27504, 26435, -1000, 36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000)
BME280_H1 = bytes([75])
BME280_H = bytes([0x6A, 0x01, 0x00, 0x13, 0x2A, 0x03, 0x1E])


def _search(f: Callable[[int], float], target: float, lo: int, hi: int, increasing: bool) -> int:
    """The raw value whose compensated reading is closest to target (f monotonic on [lo, hi])."""
    for _ in range(40):
        if hi - lo <= 1:
            break
        mid = (lo + hi) // 2
        if (f(mid) < target) == increasing:
            lo = mid
        else:
            hi = mid
    return lo


class FakeBME280:
    def __init__(self, values: Callable[[], dict[str, float]]) -> None:
        self.values = values
        self.cal = bme280.parse_calibration(BME280_TP, BME280_H1, BME280_H)

    def raw(self) -> bytes:
        v = self.values()
        cal = self.cal
        adc_t = _search(lambda a: bme280.compensate_temperature(cal, a)[0] / 100, v["temperature"], 0, 1 << 20, True)
        t_fine = bme280.compensate_temperature(cal, adc_t)[1]
        adc_p = _search(lambda a: bme280.compensate_pressure(cal, a, t_fine) / 25600, v["pressure"], 0, 1 << 20,
                        False)
        adc_h = _search(lambda a: bme280.compensate_humidity(cal, a, t_fine) / 1024, v["humidity"], 0, 1 << 16, True)
        return bytes([adc_p >> 12, (adc_p >> 4) & 0xFF, (adc_p & 0xF) << 4,
                      adc_t >> 12, (adc_t >> 4) & 0xFF, (adc_t & 0xF) << 4, adc_h >> 8, adc_h & 0xFF])

    def readfrom_mem(self, reg: int, n: int) -> bytes:
        if reg == 0xD0:
            return bytes([0x60])
        if reg == 0x88:
            return BME280_TP[:n]
        if reg == 0xA1:
            return BME280_H1
        if reg == 0xE1:
            return BME280_H[:n]
        if reg == 0xF3:
            return b"\x00"
        if reg == 0xF7:
            return self.raw()[:n]
        return bytes(n)

    def write(self, data: bytes) -> None:
        pass

    def read(self, n: int) -> bytes:
        return bytes(n)


class FakeBH1750:
    def __init__(self, lux: Callable[[], float]) -> None:
        self.lux = lux

    def write(self, data: bytes) -> None:
        pass

    def read(self, n: int) -> bytes:
        count = max(0, min(65535, round(self.lux() * 1.2)))
        return bytes([count >> 8, count & 0xFF])

    def readfrom_mem(self, reg: int, n: int) -> bytes:
        return bytes(n)


def _sensirion_words(values: list[int]) -> bytes:
    out = bytearray()
    for w in values:
        pair = bytes([w >> 8, w & 0xFF])
        out += pair + bytes([crc8_sensirion(pair)])
    return bytes(out)


class FakeSCD30:
    def __init__(self, values: Callable[[], dict[str, float]]) -> None:
        self.values = values
        self.last = 0

    def write(self, data: bytes) -> None:
        self.last = (data[0] << 8) | data[1]

    def read(self, n: int) -> bytes:
        if self.last == 0x0202:
            return _sensirion_words([1])
        v = self.values()
        raw = struct.pack(">fff", v["co2"], v["temperature"], v["humidity"])
        return _sensirion_words(list(struct.unpack(">HHHHHH", raw)))

    def readfrom_mem(self, reg: int, n: int) -> bytes:
        return bytes(n)


class FakeI2C:
    """machine.I2C's methods, dispatching to the fake chips by address; no chip = OSError (no ACK)."""

    def __init__(self) -> None:
        self.devices: dict[int, Any] = {}
        self.dead: set[int] = set()

    def _dev(self, addr: int) -> Any:
        if addr not in self.devices or addr in self.dead:
            raise OSError(19, "ENODEV")
        return self.devices[addr]

    def readfrom_mem(self, addr: int, reg: int, n: int) -> bytes:
        return bytes(self._dev(addr).readfrom_mem(reg, n))

    def writeto_mem(self, addr: int, reg: int, data: bytes) -> None:
        self._dev(addr)

    def writeto(self, addr: int, data: bytes) -> None:
        self._dev(addr).write(data)

    def readfrom(self, addr: int, n: int) -> bytes:
        return bytes(self._dev(addr).read(n))


class FakeADC:
    def __init__(self, u16: Callable[[], int] | None = None, uv: Callable[[], int] | None = None) -> None:
        self._u16, self._uv = u16, uv

    def read_u16(self) -> int:
        return self._u16() if self._u16 else 0

    def read_uv(self) -> int:
        return self._uv() if self._uv else 0


class FakeUART:
    def __init__(self, frame: Callable[[], bytes]) -> None:
        self.frame = frame

    def read(self) -> bytes:
        return b"\x00\x17" + self.frame() + self.frame()[:4]  # as a UART read: mid-frame start and end


def sds011_frame(pm2_5: float, pm10: float) -> bytes:
    a, b = round(pm2_5 * 10), round(pm10 * 10)
    data = bytes([a & 0xFF, a >> 8, b & 0xFF, b >> 8, 0x12, 0x34])
    return b"\xaa\xc0" + data + bytes([sum(data) & 0xFF]) + b"\xab"


class FakeOneWire:
    """onewire.OneWire for DS18B20 probes: reset, writebyte, select_rom, readinto."""

    def __init__(self, probes: dict[bytes, Callable[[], float]]) -> None:
        self.probes = probes
        self.selected: bytes | None = None
        self.present = True

    def reset(self) -> bool:
        return self.present

    def writebyte(self, b: int) -> None:
        pass

    def select_rom(self, rom: bytes) -> None:
        self.selected = bytes(rom)

    def readinto(self, buf: bytearray) -> None:
        read = self.probes.get(self.selected or b"")
        if read is None:
            buf[:] = b"\xff" * len(buf)
            return
        raw = round(read() * 16) & 0xFFFF
        pad = bytes([raw & 0xFF, raw >> 8, 0x4B, 0x46, 0x7F, 0xFF, 0x0C, 0x10])
        buf[:] = pad + bytes([crc8_maxim(pad)])


def rom_code(serial: int) -> bytes:
    body = bytes([0x28]) + serial.to_bytes(6, "little")
    return body + bytes([crc8_maxim(body)])
