# ROHM BH1750 ambient light over I2C: one-time high-resolution mode, lux = count / 1.2.
from lauks_kit.drivers import SensorError

POWER_ON, ONE_TIME_H = 0x01, 0x20


def lux(data):
    if len(data) != 2:
        raise SensorError("bh1750: expected 2 bytes, got %d" % len(data))
    return round(((data[0] << 8) | data[1]) / 1.2, 1)


class BH1750:
    name = "bh1750"

    def __init__(self, i2c, address=0x23, sleep_ms=None):
        self.i2c, self.address, self._sleep_ms = i2c, address, sleep_ms

    def read(self):
        try:
            self.i2c.writeto(self.address, bytes([POWER_ON]))
            self.i2c.writeto(self.address, bytes([ONE_TIME_H]))
            if self._sleep_ms:
                self._sleep_ms(180)  # max. measurement time in H-resolution mode
            data = self.i2c.readfrom(self.address, 2)
        except OSError:
            raise SensorError("bh1750: no answer at I2C address 0x%02x" % self.address)
        return {"light": lux(data)}
