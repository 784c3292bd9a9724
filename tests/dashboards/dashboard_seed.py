"""Three kits and one gateway, three hours of data, written in the stored schema of docs/schema.md.

demo/k01 is healthy; demo/k02 went silent 30 minutes ago, said offline and has a low battery;
river-2/k-03 is healthy but backfilled some late samples and is sending a burst of rejected values.
"""

from __future__ import annotations

from dataclasses import dataclass

from lauks.catalog import CATALOG
from lauks.lineprotocol import line

MINUTE_MS = 60_000
HOURS = 3
SILENT_MINUTES = 30
KITS = (("demo", "k01"), ("demo", "k02"), ("river-2", "k-03"))
HEALTHY_BATTERY, LOW_BATTERY = 3.95, 3.2
BURST = 30


@dataclass(frozen=True)
class Kit:
    site: str
    kit: str
    silent_minutes: int = 0
    battery: float = HEALTHY_BATTERY
    late_every: int = 0  # every n-th sample arrived late


SEEDED = (Kit("demo", "k01"), Kit("demo", "k02", SILENT_MINUTES, LOW_BATTERY), Kit("river-2", "k-03", late_every=10))


def _values(kit: Kit, i: int) -> dict[str, float]:
    values = {name: q.minimum + (q.maximum - q.minimum) * (0.3 + 0.01 * (i % 20)) for name, q in CATALOG.items()}
    values["battery"] = kit.battery
    values["rssi"] = -61.0 - i % 5
    return values


def lines(now_ms: int) -> list[str]:
    out: list[str] = []
    minutes = HOURS * 60
    for kit in SEEDED:
        tags = {"site": kit.site, "kit": kit.kit}
        last = now_ms - kit.silent_minutes * MINUTE_MS - 5_000
        for i in range(minutes - kit.silent_minutes):
            t = last - i * MINUTE_MS
            out.append(line("readings", tags, _values(kit, i), t))
            late = 1 if kit.late_every and i % kit.late_every == 0 else 0
            out.append(line("kit_status", tags, {"seen": 1, "samples": 1, "late": late, "boot": 3, "fw": "0.3.0"},
                            t + 500))
        for j in range(0, minutes - kit.silent_minutes, 30):
            out.append(line("kit_status", tags, {
                "state": "online", "fw": "0.3.0", "boot": 3, "interval_s": 60, "sensors": "bme280,ds18b20",
                "failed_sensors": "", "battery": kit.battery, "rssi": -63.0, "buffered": j % 7, "dropped": 0,
                "awake_ms": 1800}, last - j * MINUTE_MS + 200))
        if kit.silent_minutes:
            out.append(line("kit_status", tags, {"state": "offline"}, last + MINUTE_MS))
    for i in range(3):
        out.append(line("rejections", {"site": "demo", "kit": "k01", "reason": "out_of_range"},
                        {"count": 1, "detail": "humidity 140 % is above 100 %"}, now_ms - (20 + 40 * i) * MINUTE_MS))
    for i in range(BURST):
        out.append(line("rejections", {"site": "river-2", "kit": "k-03", "reason": "not_a_number"},
                        {"count": 1, "detail": 'pressure "high" is not a number'}, now_ms - 10_000 * (i + 1)))
    received = 0
    for i in range(HOURS * 360, -1, -1):
        received += 5
        out.append(line("gateway", {"instance": "gw-1"}, {
            "received": received, "stored_messages": received - 1, "stored_points": received * 4,
            "duplicates": i // 100, "rejected": i // 50, "spooled": 0, "spool_depth": 1 if i % 90 == 0 else 0,
            "inflight": i % 4,
            "write_latency_ms_p50": 7.5, "write_latency_ms_p99": 31.0}, now_ms - i * 10_000))
    return out
