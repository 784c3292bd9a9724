# The offline buffer: every sample goes here first and leaves only after the broker's PUBACK.
#
# Append-only segment files (one flash sector or so each) in one folder; a small cursor file says
# where the unsent samples start and which message is in flight. A full ring deletes its oldest
# segment and counts the unsent samples it held as dropped. Survives reboot, deep sleep and power loss:
# a record torn by a power cut fails its CRC, and the writer then starts a fresh segment.
import json
import os

from lauks_kit.core.record import decode, encode

CURSOR = "cursor.json"


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


class Ring:
    def __init__(self, folder, seg_records=60, max_segments=64):
        self.folder = folder
        self.seg_records = seg_records
        self.max_segments = max_segments
        if not _exists(folder):
            os.mkdir(folder)
        self.segments = sorted(int(name[:-4]) for name in os.listdir(folder) if name.endswith(".seg"))
        self.seg = 0  # cursor: segment number and byte offset of the first unsent record
        self.off = 0
        self.dropped = 0
        self.pending = None  # [boot, seq, count] of the message in flight, kept across a reboot
        self._load_cursor()
        self._tail_count = 0
        self._tail_torn = False
        if self.segments:
            count, torn = self._scan(self.segments[-1])
            self._tail_count, self._tail_torn = count, torn
        if not self.segments or self.seg < self.segments[0]:
            self.seg, self.off = (self.segments[0] if self.segments else 0), 0
        self._buffered = self._count_buffered()

    # -- files ---------------------------------------------------------------------------------
    def _path(self, number):
        return "%s/%08d.seg" % (self.folder, number)

    def _read(self, number):
        try:
            with open(self._path(number), "rb") as f:
                return f.read()
        except OSError:
            return b""

    def _scan(self, number, start=0):
        """(whole records from start, whether garbage follows them)."""
        buf = self._read(number)
        pos, count = start, 0
        while pos < len(buf):
            record, nxt = decode(buf, pos)
            if record is None:
                return count, True
            count, pos = count + 1, nxt
        return count, False

    def _load_cursor(self):
        try:
            with open(self.folder + "/" + CURSOR) as f:
                state = json.loads(f.read())
            self.seg, self.off = state["seg"], state["off"]
            self.dropped = state.get("dropped", 0)
            self.pending = state.get("pending")
        except (OSError, ValueError, KeyError):
            pass  # no cursor yet, or one torn by a power cut: start at the oldest segment

    def _save_cursor(self):
        tmp = self.folder + "/cursor.tmp"
        with open(tmp, "w") as f:
            f.write(json.dumps({"seg": self.seg, "off": self.off, "dropped": self.dropped,
                                "pending": self.pending}))
        os.rename(tmp, self.folder + "/" + CURSOR)  # atomic on LittleFS and POSIX

    def _count_buffered(self):
        if not self.segments:
            return 0
        total = 0
        for number in self.segments:
            if number < self.seg:
                continue
            start = self.off if number == self.seg else 0
            if number == self.segments[-1] or start:
                total += self._scan(number, start)[0]
            else:
                total += self.seg_records  # a closed segment holds exactly seg_records records
        return total

    # -- writing -------------------------------------------------------------------------------
    @property
    def buffered(self):
        return self._buffered

    def append(self, record):
        if not self.segments or self._tail_count >= self.seg_records or self._tail_torn:
            number = self.segments[-1] + 1 if self.segments else 0
            self.segments.append(number)
            self._tail_count, self._tail_torn = 0, False
            if len(self.segments) > self.max_segments:
                self._drop_oldest()
        with open(self._path(self.segments[-1]), "ab") as f:
            f.write(encode(record))
        self._tail_count += 1
        self._buffered += 1

    def _drop_oldest(self):
        oldest = self.segments.pop(0)
        if self.seg <= oldest:
            lost = self._scan(oldest, self.off if self.seg == oldest else 0)[0]
            self.dropped += lost
            self._buffered -= lost
            self.seg, self.off = self.segments[0], 0
            self.pending = None  # what was in flight is gone with its segment
        try:
            os.remove(self._path(oldest))
        except OSError:
            pass
        self._save_cursor()

    # -- sending -------------------------------------------------------------------------------
    def peek(self, limit):
        """Up to limit unsent records, oldest first (they stay in the ring until ack)."""
        out = []
        for number in self.segments:
            if number < self.seg or len(out) >= limit:
                continue
            buf = self._read(number)
            pos = self.off if number == self.seg else 0
            while pos < len(buf) and len(out) < limit:
                record, nxt = decode(buf, pos)
                if record is None:
                    break  # a torn tail: the rest of this segment is lost
                out.append(record)
                pos = nxt
        return out

    def begin(self, boot, seq, count):
        """Note the message about to be published, so a reboot before its PUBACK resends it as is."""
        self.pending = [boot, seq, count]
        self._save_cursor()

    def ack(self, count):
        """The broker has the oldest count records: move the cursor past them, free whole segments."""
        while count > 0 and self.segments:
            if self.seg not in self.segments:
                self.seg, self.off = self.segments[0], 0
            buf = self._read(self.seg)
            while count > 0:
                record, nxt = decode(buf, self.off)
                if record is None:
                    break
                self.off, count = nxt, count - 1
                self._buffered -= 1
            finished = self.off >= len(buf) or decode(buf, self.off)[0] is None
            is_tail = self.seg == self.segments[-1]
            if finished and not is_tail:
                os.remove(self._path(self.seg))
                self.segments.remove(self.seg)
                self.seg, self.off = self.segments[0], 0
            elif finished:
                break
        self.pending = None
        if self._buffered < 0:
            self._buffered = 0
        self._save_cursor()
