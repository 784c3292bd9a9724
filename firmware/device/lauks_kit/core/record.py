# One sample as bytes in the flash ring: small, fixed layout, with a CRC so a torn write is noticed.
#
#   0xA5 | flags u8 | epoch u16 | secs u32 | ms u16 | n u8 | n x (quantity id u8, value float32) | crc8
#
# flags bit 0: secs is Unix time (the clock was set by NTP); else secs counts on the kit's own clock
# of that epoch (the boot whose RTC it was), and the time is sent as an age.
import struct

from lauks_kit.core.crc import crc8_sensirion
from lauks_kit.core.quantities import IDS, NAMES

MARK = 0xA5
SYNCED = 1
_HEAD = "<BBHIHB"
HEAD_SIZE = struct.calcsize(_HEAD)  # 11


class Record:
    __slots__ = ("flags", "epoch", "secs", "ms", "values")

    def __init__(self, flags, epoch, secs, ms, values):
        self.flags = flags
        self.epoch = epoch
        self.secs = secs
        self.ms = ms
        self.values = values

    @property
    def synced(self):
        return bool(self.flags & SYNCED)


def encode(record):
    names = [name for name in record.values if name in IDS]
    out = bytearray(struct.pack(_HEAD, MARK, record.flags, record.epoch & 0xFFFF, record.secs & 0xFFFFFFFF,
                                record.ms, len(names)))
    for name in names:
        out += struct.pack("<Bf", IDS[name], record.values[name])
    out.append(crc8_sensirion(out))
    return bytes(out)


def _short(value):
    # a float32 back as the shortest decimal that names it, so 1013.2 is not sent as 1013.2000122
    text = "%.7g" % value
    return float(text)


def decode(buf, pos):
    """(record, next position), or (None, -1) if the bytes at pos are not a whole, valid record."""
    if pos + HEAD_SIZE + 1 > len(buf) or buf[pos] != MARK:
        return None, -1
    mark, flags, epoch, secs, ms, n = struct.unpack_from(_HEAD, buf, pos)
    end = pos + HEAD_SIZE + 5 * n
    if end + 1 > len(buf) or crc8_sensirion(buf[pos:end]) != buf[end]:
        return None, -1
    values = {}
    at = pos + HEAD_SIZE
    for _ in range(n):
        qid, value = struct.unpack_from("<Bf", buf, at)
        at += 5
        if qid < len(NAMES):
            values[NAMES[qid]] = _short(value)
    return Record(flags, epoch, secs, ms, values), end + 1
