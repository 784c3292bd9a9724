# Particulate matter over UART: Nova SDS011 (10-byte frames) and Plantower PMS5003 (32-byte frames).
from lauks_kit.drivers import SensorError


def sds011_frame(frame):
    """pm2_5 and pm10 in µg/m³ from one 10-byte frame AA C0 .. CS AB; SensorError on a bad frame."""
    if len(frame) != 10 or frame[0] != 0xAA or frame[1] != 0xC0 or frame[9] != 0xAB:
        raise SensorError("sds011: not a data frame")
    if sum(frame[2:8]) & 0xFF != frame[8]:
        raise SensorError("sds011: checksum mismatch")
    return {"pm2_5": ((frame[3] << 8) | frame[2]) / 10, "pm10": ((frame[5] << 8) | frame[4]) / 10}


def pms5003_frame(frame):
    """pm1, pm2_5 and pm10 (atmospheric environment) from one 32-byte frame 42 4D ..."""
    if len(frame) != 32 or frame[0] != 0x42 or frame[1] != 0x4D or ((frame[2] << 8) | frame[3]) != 28:
        raise SensorError("pms5003: not a data frame")
    if sum(frame[:30]) & 0xFFFF != (frame[30] << 8) | frame[31]:
        raise SensorError("pms5003: checksum mismatch")

    def word(i):
        return (frame[4 + 2 * i] << 8) | frame[5 + 2 * i]

    return {"pm1": float(word(3)), "pm2_5": float(word(4)), "pm10": float(word(5))}


def find_frame(buf, kind):
    """The newest whole valid frame in buf (a UART read may start mid-frame), or SensorError."""
    head, size, parse = (b"\xaa\xc0", 10, sds011_frame) if kind == "sds011" else (b"\x42\x4d", 32, pms5003_frame)
    last_error = "%s: no data frame in %d bytes from the UART" % (kind, len(buf))
    pos = len(buf) - size
    while pos >= 0:
        if buf[pos:pos + 2] == head:
            try:
                return parse(bytes(buf[pos:pos + size]))
            except SensorError as e:
                last_error = str(e)
        pos -= 1
    raise SensorError(last_error)


class ParticulateMatter:
    def __init__(self, uart, kind="sds011"):
        self.uart, self.kind, self.name = uart, kind, kind

    def read(self):
        buf = self.uart.read()
        if not buf:
            raise SensorError("%s: nothing on the UART: check power and the TX/RX wires" % self.kind)
        return find_frame(buf, self.kind)
