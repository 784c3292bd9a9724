# When to take the next sample: on multiples of the interval, so kits of a class sample together.


def next_sample_at(now_s, interval_s):
    """The first multiple of interval_s strictly after now_s (seconds of the kit's clock)."""
    return (int(now_s) // interval_s + 1) * interval_s


def sleep_ms_until(now_s, at_s):
    """Milliseconds to wait from now_s until at_s, never negative."""
    wait = (at_s - now_s) * 1000
    return int(wait) if wait > 0 else 0


def missed_slots(last_at_s, now_s, interval_s):
    """How many sample times passed between two samples (after a long blocking reconnect)."""
    if last_at_s is None or now_s <= last_at_s:
        return 0
    return max(0, int((now_s - last_at_s) // interval_s) - 1)
