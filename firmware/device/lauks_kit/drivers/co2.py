# CO2 over I2C: Sensirion SCD30 (3 big-endian floats) and SCD4x (3 words); every word has a CRC-8.
import struct

from lauks_kit.core.crc import crc8_sensirion
from lauks_kit.drivers import SensorError


def words(data, name):
    """The 16-bit words of a Sensirion reply (word, crc, word, crc, ...), each checked."""
    if len(data) % 3:
        raise SensorError("%s: reply of %d bytes is not whole words" % (name, len(data)))
    out = []
    for i in range(0, len(data), 3):
        if crc8_sensirion(data[i:i + 2]) != data[i + 2]:
            raise SensorError("%s: CRC mismatch in word %d" % (name, i // 3))
        out.append((data[i] << 8) | data[i + 1])
    return out


def scd30_measurement(data):
    w = words(data, "scd30")
    if len(w) != 6:
        raise SensorError("scd30: expected 18 bytes")
    co2, temp, rh = struct.unpack(">fff", struct.pack(">HHHHHH", *w))
    if not 0 < co2 <= 40000:
        raise SensorError("scd30: CO2 %r ppm is not a measurement" % co2)
    return {"co2": round(co2, 1), "temperature": round(temp, 2), "humidity": round(rh, 2)}


def scd4x_measurement(data):
    w = words(data, "scd4x")
    if len(w) != 3:
        raise SensorError("scd4x: expected 9 bytes")
    if w[0] == 0:
        raise SensorError("scd4x: CO2 0 ppm: the sensor is still starting")
    return {"co2": float(w[0]), "temperature": round(-45 + 175 * w[1] / 65535, 2),
            "humidity": round(100 * w[2] / 65535, 2)}


def command(code, argument=None):
    out = bytes([code >> 8, code & 0xFF])
    if argument is not None:
        arg = bytes([argument >> 8, argument & 0xFF])
        out += arg + bytes([crc8_sensirion(arg)])
    return out


class CO2:
    def __init__(self, i2c, kind="scd30", sleep_ms=None):
        self.i2c, self.kind, self.name, self._sleep_ms = i2c, kind, kind, sleep_ms
        self.address = 0x61 if kind == "scd30" else 0x62
        self.started = False

    def read(self):
        try:
            if self.kind == "scd30":
                if not self.started:
                    self.i2c.writeto(self.address, command(0x0010, 0))  # continuous, no pressure compensation
                    self.started = True
                self.i2c.writeto(self.address, command(0x0202))  # data ready?
                if not words(self.i2c.readfrom(self.address, 3), "scd30")[0]:
                    raise SensorError("scd30: no new measurement yet")
                self.i2c.writeto(self.address, command(0x0300))
                return scd30_measurement(self.i2c.readfrom(self.address, 18))
            if not self.started:
                self.i2c.writeto(self.address, command(0x21B1))  # start periodic measurement
                self.started = True
            self.i2c.writeto(self.address, command(0xE4B8))  # get data ready status
            if not words(self.i2c.readfrom(self.address, 3), "scd4x")[0] & 0x07FF:
                raise SensorError("scd4x: no new measurement yet")
            self.i2c.writeto(self.address, command(0xEC05))
            return scd4x_measurement(self.i2c.readfrom(self.address, 9))
        except OSError:
            self.started = False
            raise SensorError("%s: no answer at I2C address 0x%02x" % (self.kind, self.address))
