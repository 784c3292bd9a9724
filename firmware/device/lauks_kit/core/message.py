# Building the contract v1 messages (docs/contract.md) from ring records, status and config.
import json

MAX_BYTES = 16 * 1024
MAX_SAMPLES = 30  # ~6 KB for a full weather sample: well under the 16 KiB limit


def dumps(obj):
    try:
        return json.dumps(obj, separators=(",", ":"))
    except TypeError:  # an older MicroPython json without separators
        return json.dumps(obj)


def sample_time(record, clock):
    """("t", unix seconds) or ("age", seconds ago) for one record, given the kit's clock now.

    clock: dict with epoch (this boot's RTC epoch), now (kit clock seconds), offset (unix - kit clock
    when the clock is set this epoch, else None) and uptime (seconds since this epoch began).
    """
    if record.synced:
        return "t", _time_value(record.secs, record.ms)
    kit_time = record.secs + record.ms / 1000
    if (record.epoch & 0xFFFF) == (clock["epoch"] & 0xFFFF):
        if clock["offset"] is not None:
            return "t", _time_value(int(kit_time + clock["offset"]), 0)
        age = clock["now"] - kit_time
        return "age", _age_value(age)
    # An earlier epoch whose clock was never set: the time the kit was off is unknown, so the age
    # is a lower bound (the newer end of that epoch's samples plus this epoch's uptime).
    end = clock.get("ends", {}).get(record.epoch & 0xFFFF, kit_time)
    return "age", _age_value(end - kit_time + clock["uptime"])


def _time_value(secs, ms):
    return secs if not ms else secs + ms / 1000


def _age_value(age):
    if age < 0:
        age = 0
    whole = int(age)
    return whole if age - whole < 0.001 else round(age, 3)


def readings(kit, boot, seq, fw, records, clock):
    """The readings message for these records (at most MAX_SAMPLES); bytes of UTF-8 JSON."""
    ends = {}
    for record in records:
        if not record.synced:
            key = record.epoch & 0xFFFF
            kit_time = record.secs + record.ms / 1000
            if ends.get(key, -1) < kit_time:
                ends[key] = kit_time
    clock = dict(clock)
    clock["ends"] = ends
    samples = []
    for record in records:
        key, value = sample_time(record, clock)
        sample = {key: value}
        for name in record.values:
            sample[name] = record.values[name]
        samples.append(sample)
    message = {"v": 1, "kit": kit, "boot": boot, "seq": seq, "fw": fw, "samples": samples}
    return dumps(message).encode()


def status(state, fw=None, **fields):
    """A status message: state is online, offline or sleeping; the other fields are optional."""
    message = {"v": 1, "state": state}
    if fw is not None:
        message["fw"] = fw
    for key in ("boot", "interval_s", "sensors", "failed_sensors", "battery", "rssi", "buffered", "dropped",
                "awake_ms", "update"):
        if fields.get(key) is not None:
            message[key] = fields[key]
    return dumps(message).encode()


OFFLINE = b'{"v":1,"state":"offline"}'


def parse_config(payload):
    """The interval from a retained config message, or (None, reason) if it is not usable."""
    try:
        data = json.loads(payload)
    except ValueError:
        return None, "config is not JSON"
    if not isinstance(data, dict):
        return None, "config is not a JSON object"
    interval = data.get("interval_s")
    if not isinstance(interval, int) or isinstance(interval, bool) or not 10 <= interval <= 86400:
        return None, "interval_s must be a whole number of seconds from 10 to 86400"
    return interval, None
