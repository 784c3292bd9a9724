"""Three kits and one gateway, three hours of data, stored by the gateway's own ingest path.

Each kit's messages (readings, status, its last will) go through ``gateway.core.Ingest`` in the order and at
the time they arrive, so the seeded points are exactly what the gateway writes, ``seen`` points and
rejections included: a dashboard reading a name the gateway does not write finds nothing.

demo/k01 is healthy but sent a humidity of 140 % three times, its temperature sensor was stuck for two hours
and some of its samples were dated from 'age'; demo/k02 went silent 30 minutes ago, said offline and has a low
battery; river-2/k-03 is healthy but backfilled some late samples, had one temperature spike and is sending a
burst of rejected values. Every quantity changes slowly otherwise, so nothing else is stuck or spiky.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gateway.core import LATE_MS, Ingest, Stats
from gateway.dedup import Dedup
from lauks.catalog import CATALOG
from lauks.topics import Kind, Topics

MINUTE_MS = 60_000
HOURS = 3
SILENT_MINUTES = 30
HEALTHY_BATTERY, LOW_BATTERY = 3.95, 3.2
BURST = 30
GATEWAY_EVERY_MS = 10_000  # how often the gateway service sweeps the seen points and writes its own


@dataclass(frozen=True)
class Kit:
    site: str
    kit: str
    silent_minutes: int = 0
    battery: float = HEALTHY_BATTERY
    late_every: int = 0  # every n-th sample arrived late
    too_humid_at: tuple[int, ...] = ()  # minutes ago it sent a humidity out of range
    burst: int = 0  # messages of nothing but a broken pressure sensor in the last minutes, one every 10 s
    stuck: tuple[int, int] | None = None  # from and to (minutes ago) its temperature read one value
    spike_at: int = -1  # minutes ago its temperature jumped up by SPIKE_C for one reading
    age_every: int = 0  # every n-th sample was dated from 'age' (the kit's clock was not set)


SPIKE_C = 40.0
STUCK_C = -19.7  # within the slow wave temperature follows otherwise, so the stuck run starts and ends smoothly
SEEDED = (Kit("demo", "k01", too_humid_at=(20, 60, 100), stuck=(140, 20), age_every=7),
          Kit("demo", "k02", SILENT_MINUTES, LOW_BATTERY),
          Kit("river-2", "k-03", late_every=10, burst=BURST, spike_at=90))

Message = tuple[int, Kind, Kit, dict[str, Any]]  # arrival (ms), topic, kit, payload


def _values(kit: Kit, i: int) -> dict[str, float]:
    """Up and down by a thousandth of the quantity's range a minute: slower than any catalog max_rate."""
    wave = i % 40 if i % 40 < 20 else 40 - i % 40
    values = {name: q.minimum + (q.maximum - q.minimum) * (0.3 + 0.001 * wave) for name, q in CATALOG.items()}
    values["battery"] = kit.battery
    values["rssi"] = -61.0 - i % 5
    if i in kit.too_humid_at:
        values["humidity"] = 140.0
    if kit.stuck is not None and kit.stuck[1] <= i <= kit.stuck[0]:
        values["temperature"] = STUCK_C
    if i == kit.spike_at:
        values["temperature"] += SPIKE_C
    return values


def _messages(kit: Kit, now_ms: int) -> list[Message]:
    """What the kit sent, in no particular order."""
    out: list[Message] = []
    minutes = HOURS * 60 - kit.silent_minutes
    last = now_ms - kit.silent_minutes * MINUTE_MS - 5_000
    seq = 0

    def readings(arrival: int, samples: list[dict[str, Any]]) -> None:
        nonlocal seq
        out.append((arrival, Kind.READINGS, kit, {"v": 1, "kit": kit.kit, "boot": 3, "seq": seq, "fw": "0.3.0",
                                                  "samples": samples}))
        seq += 1

    for i in range(minutes):
        t = last - i * MINUTE_MS
        # a late sample waited in the kit's buffer for 6 minutes, arriving between two on-time ones
        late = kit.late_every and i % kit.late_every == kit.late_every - 1
        arrival = t + LATE_MS + MINUTE_MS + 20_000 if late else t + 500
        when = {"age": (arrival - t) / 1000} if kit.age_every and i % kit.age_every == 0 else {"t": t / 1000}
        readings(arrival, [{**when, **_values(kit, i)}])
    for j in range(0, minutes, 30):
        out.append((last - j * MINUTE_MS + 200, Kind.STATUS, kit, {
            "v": 1, "state": "online", "fw": "0.3.0", "boot": 3, "interval_s": 60, "sensors": ["bme280", "ds18b20"],
            "failed_sensors": [], "battery": kit.battery, "rssi": -63.0, "buffered": j % 7, "dropped": 0,
            "awake_ms": 1800}))
    if kit.silent_minutes:  # its last will
        out.append((last + MINUTE_MS, Kind.STATUS, kit, {"v": 1, "state": "offline"}))
    for b in range(kit.burst):
        arrival = now_ms - 10_000 * (b + 1)
        readings(arrival, [{"t": arrival / 1000, "pressure": "high"}])
    return out


def _gateway_counters(left: int) -> Stats:
    """gw-1's counters with ``left`` ticks of 10 s to go: 5 messages received in every 10 s, a few duplicates and
    rejections, writes taking 7.5 ms (p50) and 31 ms (p99)."""
    received = 5 * (HOURS * 360 - left + 1)
    stats = Stats(received=received, stored_messages=received - 1, stored_points=received * 4,
                  duplicates=left // 100, rejected=left // 50, spooled=0)
    stats.write_latency_ms.extend([7.5] * 98 + [31.0] * 2)
    return stats


def lines(now_ms: int) -> list[str]:
    """Every point the gateway writes for the seeded kits and its own counters over the three hours to ``now_ms``.

    Messages go through ``Ingest.message`` in arrival order; every 10 s, as the gateway service does, the
    ``seen`` points still due are swept and a ``gateway`` point is written (by ``Ingest.gateway_line``, with
    the counters of ``_gateway_counters``: gw-1 stands for a busier gateway than these three kits make).
    """
    topics = Topics()
    ingest = Ingest(topics, Dedup(None))
    gateway = Ingest(topics, Dedup(None))
    messages = [m for kit in SEEDED for m in _messages(kit, now_ms)]
    events = [(arrival, 0, index) for index, (arrival, *_) in enumerate(messages)]
    events += [(now_ms - left * GATEWAY_EVERY_MS, 1, left) for left in range(HOURS * 360, -1, -1)]
    out: list[str] = []
    for at, is_tick, number in sorted(events):
        if is_tick:
            out.extend(ingest.activity.sweep(at))
            gateway.stats = _gateway_counters(number)
            out.append(gateway.gateway_line("gw-1", at, spool_depth=1 if number % 90 == 0 else 0, inflight=number % 4))
            continue
        _, kind, kit, payload = messages[number]
        outcome = ingest.message(topics.topic(kit.site, kit.kit, kind), json.dumps(payload).encode(), at / 1000)
        assert outcome.lines and not outcome.drop, (kind, kit, payload, outcome)
        out.extend(outcome.lines)
    return out
