# Maxim DS18B20 temperature probes on one 1-Wire bus; each probe's ROM code is mapped to a quantity.
from lauks_kit.core.crc import crc8_maxim
from lauks_kit.drivers import SensorError

CONVERT_T, READ_SCRATCHPAD = 0x44, 0xBE


def temperature(scratchpad):
    """°C from the 9-byte scratchpad, after its CRC; SensorError for garbage or the power-on value."""
    if len(scratchpad) != 9:
        raise SensorError("ds18b20: scratchpad of %d bytes, expected 9" % len(scratchpad))
    if crc8_maxim(scratchpad[:8]) != scratchpad[8]:
        raise SensorError("ds18b20: scratchpad CRC mismatch (a bad contact or a long cable)")
    raw = scratchpad[0] | (scratchpad[1] << 8)
    if raw & 0x8000:
        raw -= 0x10000
    if raw == 0x0550:
        raise SensorError("ds18b20: 85 °C power-on value: the conversion did not run (check power)")
    return raw / 16


def rom_ok(rom):
    return len(rom) == 8 and rom[0] == 0x28 and crc8_maxim(rom[:7]) == rom[7]


class DS18B20:
    name = "ds18b20"

    def __init__(self, onewire, probes, sleep_ms=None):
        """probes: list of (rom bytes, quantity) e.g. (b'\\x28...', 'water_temperature')."""
        self.ow, self.probes, self._sleep_ms = onewire, probes, sleep_ms

    def read(self):
        try:
            if not self.ow.reset():
                raise SensorError("ds18b20: no probe answers on the 1-Wire bus")
            self.ow.writebyte(0xCC)  # skip ROM: every probe converts at once
            self.ow.writebyte(CONVERT_T)
            if self._sleep_ms:
                self._sleep_ms(750)
            sums = {}
            for rom, quantity in self.probes:
                self.ow.reset()
                self.ow.select_rom(rom)
                self.ow.writebyte(READ_SCRATCHPAD)
                buf = bytearray(9)
                self.ow.readinto(buf)
                total, n = sums.get(quantity, (0.0, 0))
                sums[quantity] = (total + temperature(buf), n + 1)
        except OSError:
            raise SensorError("ds18b20: 1-Wire bus error")
        out = {}
        for quantity in sums:
            total, n = sums[quantity]
            out[quantity] = round(total / n, 2)  # several probes of one quantity: their mean
        return out
