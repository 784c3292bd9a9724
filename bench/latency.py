"""Publish-to-queryable latency at a steady rate (default 1,000 msg/s for 30 s).

    python -m bench.latency [--rate 1000] [--seconds 30]

Each message's sample time ``t`` is the moment it is published; a poller asks InfluxDB every 20 ms
for the points it has not seen yet, and a point's latency is when it first showed up minus its ``t``.
The polling interval is included, so the figures are an upper bound. Target: p99 <= 250 ms.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator

from bench.command import arguments
from bench.gateway_common import stack
from harness.publisher import Publisher

KITS = 10


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    with stack() as s:
        database = "latency"
        gateway = s.start_steady_gateway(database, args.rate, KITS)
        publisher = Publisher(s.broker.port)
        total = int(args.rate * args.seconds)
        published: dict[tuple[str, int], float] = {}
        latencies: list[float] = []
        last_ms: dict[str, int] = {}

        def messages() -> Iterator[tuple[str, bytes]]:
            for index in range(total):  # made when due: its sample time is its publish time
                kit = f"k{index % KITS}"
                now = time.time()
                t_ms = max(int(now * 1000), last_ms.get(kit, 0) + 1)  # a millisecond of its own per point
                last_ms[kit] = t_ms
                published[(kit, t_ms)] = now
                payload = json.dumps({"v": 1, "kit": kit, "boot": 1, "seq": index, "samples": [
                    {"t": t_ms / 1000, "temperature": 20.0, "humidity": 50.0}]}).encode()
                yield f"lauks/v1/bench/{kit}/readings", payload

        thread = threading.Thread(target=publisher.publish_all, args=(messages(), args.rate), daemon=True)
        thread.start()
        seen: set[tuple[str, int]] = set()
        watermark = int(time.time() * 1000) - 1000
        deadline = time.time() + args.seconds + 30
        while time.time() < deadline and len(seen) < total:
            query = urllib.parse.urlencode({"db": database, "epoch": "ms", "q":
                                            f"SELECT temperature, kit FROM readings WHERE time > {watermark}ms"})
            with urllib.request.urlopen(f"{s.store.url}/query?{query}", timeout=10) as response:
                result = json.loads(response.read())
            arrived = time.time()
            series = result["results"][0].get("series", [])
            newest = watermark
            for row in series[0]["values"] if series else []:
                key = (row[2], int(row[0]))
                if key not in seen and key in published:
                    seen.add(key)
                    latencies.append((arrived - published[key]) * 1000)
                newest = max(newest, int(row[0]))
            # keep a second of overlap: batches can land slightly out of time order
            watermark = max(watermark, newest - 1000)
            time.sleep(0.02)
        figures = gateway.metrics()
        publisher.close()
        s.stop_gateway()
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else float("nan")

    print(f"rate={args.rate:.0f} msg/s for {args.seconds:.0f} s: {len(latencies)} of {total} points seen")
    print(f"gateway write latency p50={figures.get('lauks_gateway_write_latency_ms_p50', 0):.1f} ms "
          f"p99={figures.get('lauks_gateway_write_latency_ms_p99', 0):.1f} ms")
    if latencies:
        print(f"publish-to-queryable: mean={statistics.fmean(latencies):.0f} ms p50={pct(0.5):.0f} ms "
              f"p99={pct(0.99):.0f} ms max={latencies[-1]:.0f} ms (includes up to 20 ms of polling)")
    print(f"p99_ms={pct(0.99):.0f}")


if __name__ == "__main__":
    main()
