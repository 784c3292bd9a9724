# What must survive: the boot counter in flash (state.json); boot, seq, clock and interval in RTC
# memory across deep sleep (RAM is lost, the RTC domain is not).
import json


def next_boot(path):
    """Raise the boot counter kept in flash by one and return it (0 on a kit's first start)."""
    boot = -1
    try:
        with open(path) as f:
            boot = int(json.loads(f.read()).get("boot", -1))
    except (OSError, ValueError, AttributeError):
        pass
    boot += 1
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps({"boot": boot}))
    import os
    os.rename(tmp, path)
    return boot


def pack_rtc(values):
    return json.dumps(values).encode()


def unpack_rtc(data):
    """The dict kept in RTC memory, or None if it is empty or not ours."""
    try:
        values = json.loads(data)
    except (ValueError, TypeError):
        return None
    if not isinstance(values, dict) or values.get("magic") != "lauks1":
        return None
    return values
