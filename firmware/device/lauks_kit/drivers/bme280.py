# Bosch BME280 over I2C: temperature, humidity, pressure, with the datasheet's integer compensation.
import struct

from lauks_kit.drivers import SensorError

CHIP_ID = 0x60
REG_ID, REG_RESET, REG_CTRL_HUM, REG_STATUS, REG_CTRL_MEAS, REG_DATA = 0xD0, 0xE0, 0xF2, 0xF3, 0xF4, 0xF7


def parse_calibration(tp, h1, h):
    """Trimming values from 0x88..0x9F (24 bytes), 0xA1 (1 byte) and 0xE1..0xE7 (7 bytes)."""
    cal = {}
    values = struct.unpack("<HhhHhhhhhhhh", tp)
    for i, name in enumerate(("T1", "T2", "T3", "P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9")):
        cal[name] = values[i]
    cal["H1"] = h1[0]
    cal["H2"] = struct.unpack("<h", h[0:2])[0]
    cal["H3"] = h[2]
    e4 = h[3] - 256 if h[3] > 127 else h[3]
    e6 = h[5] - 256 if h[5] > 127 else h[5]
    cal["H4"] = (e4 << 4) | (h[4] & 0x0F)
    cal["H5"] = (e6 << 4) | (h[4] >> 4)
    cal["H6"] = h[6] - 256 if h[6] > 127 else h[6]
    return cal


def _cdiv(a, b):
    # C's integer division truncates toward zero; Python's // floors
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def compensate_temperature(cal, adc_t):
    """(temperature in 0.01 °C, t_fine) from the 20-bit raw value (datasheet 4.2.3)."""
    var1 = (((adc_t >> 3) - (cal["T1"] << 1)) * cal["T2"]) >> 11
    var2 = (((((adc_t >> 4) - cal["T1"]) * ((adc_t >> 4) - cal["T1"])) >> 12) * cal["T3"]) >> 14
    t_fine = var1 + var2
    return (t_fine * 5 + 128) >> 8, t_fine


def compensate_pressure(cal, adc_p, t_fine):
    """Pressure in Pa as Q24.8 (divide by 256), 64-bit integer version of the datasheet; 0 if invalid."""
    var1 = t_fine - 128000
    var2 = var1 * var1 * cal["P6"]
    var2 = var2 + ((var1 * cal["P5"]) << 17)
    var2 = var2 + (cal["P4"] << 35)
    var1 = ((var1 * var1 * cal["P3"]) >> 8) + ((var1 * cal["P2"]) << 12)
    var1 = (((1 << 47) + var1) * cal["P1"]) >> 33
    if var1 == 0:
        return 0
    p = 1048576 - adc_p
    p = _cdiv(((p << 31) - var2) * 3125, var1)
    var1 = (cal["P9"] * (p >> 13) * (p >> 13)) >> 25
    var2 = (cal["P8"] * p) >> 19
    return ((p + var1 + var2) >> 8) + (cal["P7"] << 4)


def compensate_humidity(cal, adc_h, t_fine):
    """Relative humidity as Q22.10 (divide by 1024), 32-bit integer version of the datasheet."""
    v = t_fine - 76800
    v = ((((adc_h << 14) - (cal["H4"] << 20) - (cal["H5"] * v)) + 16384) >> 15) * (
        ((((((v * cal["H6"]) >> 10) * (((v * cal["H3"]) >> 11) + 32768)) >> 10) + 2097152) * cal["H2"] + 8192) >> 14)
    v = v - (((((v >> 15) * (v >> 15)) >> 7) * cal["H1"]) >> 4)
    v = 0 if v < 0 else v
    v = 419430400 if v > 419430400 else v
    return v >> 12


def convert(cal, data):
    """Catalog quantities from the 8 data bytes 0xF7..0xFE."""
    adc_p = (data[0] << 12) | (data[1] << 4) | (data[2] >> 4)
    adc_t = (data[3] << 12) | (data[4] << 4) | (data[5] >> 4)
    adc_h = (data[6] << 8) | data[7]
    if adc_t == 0x80000 or adc_p == 0x80000 or adc_h == 0x8000:
        raise SensorError("bme280: no measurement yet (raw value is the 'skipped' marker)")
    t100, t_fine = compensate_temperature(cal, adc_t)
    p256 = compensate_pressure(cal, adc_p, t_fine)
    h1024 = compensate_humidity(cal, adc_h, t_fine)
    out = {"temperature": t100 / 100, "pressure": round(p256 / 25600, 2), "humidity": round(h1024 / 1024, 2)}
    if not -40 <= out["temperature"] <= 85 or not 300 <= out["pressure"] <= 1100:
        raise SensorError("bme280: implausible reading %r: check the wiring" % (out,))
    return out


class BME280:
    name = "bme280"

    def __init__(self, i2c, address=0x76, sleep_ms=None):
        self.i2c = i2c
        self.address = address
        self._sleep_ms = sleep_ms
        self.cal = None

    def _setup(self):
        try:
            chip = self.i2c.readfrom_mem(self.address, REG_ID, 1)[0]
        except OSError:
            raise SensorError("bme280: no answer at I2C address 0x%02x" % self.address)
        if chip != CHIP_ID:
            raise SensorError("bme280: chip id 0x%02x at 0x%02x is not a BME280 (0x60)" % (chip, self.address))
        self.cal = parse_calibration(self.i2c.readfrom_mem(self.address, 0x88, 24),
                                     self.i2c.readfrom_mem(self.address, 0xA1, 1),
                                     self.i2c.readfrom_mem(self.address, 0xE1, 7))

    def read(self):
        try:
            if self.cal is None:
                self._setup()
            self.i2c.writeto_mem(self.address, REG_CTRL_HUM, b"\x01")  # humidity x1
            self.i2c.writeto_mem(self.address, REG_CTRL_MEAS, b"\x25")  # temp x1, pressure x1, forced mode
            for _ in range(20):
                if self._sleep_ms:
                    self._sleep_ms(5)
                if not self.i2c.readfrom_mem(self.address, REG_STATUS, 1)[0] & 0x08:
                    break
            data = self.i2c.readfrom_mem(self.address, REG_DATA, 8)
        except OSError:
            self.cal = None
            raise SensorError("bme280: I2C error at 0x%02x" % self.address)
        return convert(self.cal, data)
