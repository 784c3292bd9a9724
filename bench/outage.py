"""An InfluxDB outage at a steady 1,000 msg/s: the gateway's peak memory, then how fast the spool drains.

    python -m bench.outage [--outage-s 40] [--rate 1000]      # about a minute
    python -m bench.outage --full                              # the 5-minute outage of the issue

Prints the gateway's peak RSS during the outage (target <= 150 MB) and the spool's drain rate once
InfluxDB is back, divided by the arrival rate (target >= 10), while messages keep arriving.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator

from bench.command import arguments
from bench.gateway_common import influx_count, rss_mb, stack
from harness.publisher import Publisher

KITS = 20


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--outage-s", type=float, default=40.0)
    parser.add_argument("--full", action="store_true", help="a 5-minute outage")
    args = parser.parse_args()
    outage_s = 300.0 if args.full else args.outage_s
    with stack() as s:
        database = "outage"
        gateway = s.start_steady_gateway(database, args.rate, KITS)
        publisher = Publisher(s.broker.port)
        stop = threading.Event()
        t0_ms = int(time.time() * 1000) - 3_600_000

        def messages() -> Iterator[tuple[str, bytes]]:
            for index in itertools.count():
                kit = f"k{index % KITS}"
                # one millisecond of its own per message, so that the count of points is the count of messages
                payload = json.dumps({"v": 1, "kit": kit, "boot": 1, "seq": index, "samples": [
                    {"t": (t0_ms + index) / 1000, "temperature": 20.0 + (index % 50) / 10}]}).encode()
                yield f"lauks/v1/bench/{kit}/readings", payload

        thread = threading.Thread(target=publisher.publish_all, args=(messages(), args.rate),
                                  kwargs={"stop": stop}, daemon=True)
        thread.start()
        time.sleep(5)  # five seconds of steady load (a measured period, not a wait for readiness)
        base_rss = rss_mb(gateway.pid)
        print(f"steady: {args.rate:.0f} msg/s, gateway RSS {base_rss:.0f} MB; stopping InfluxDB for {outage_s:.0f} s")
        s.store.stop()
        peak = base_rss
        outage_end = time.monotonic() + outage_s
        while time.monotonic() < outage_end:
            peak = max(peak, rss_mb(gateway.pid))
            time.sleep(0.5)
        before = gateway.metrics()
        depth = before.get("lauks_gateway_spool_depth_points", 0)
        print(f"during the outage: peak RSS {peak:.0f} MB; {depth:.0f} points in the spool; "
              f"inflight {before.get('lauks_gateway_inflight', 0):.0f}")
        s.store.start()
        restarted = time.monotonic()
        replayed_before = before.get("lauks_gateway_replayed_points_total", 0)
        drained_at = None
        while time.monotonic() - restarted < 300:
            figures = gateway.metrics()
            peak = max(peak, rss_mb(gateway.pid))
            if figures.get("lauks_gateway_spool_depth_points", 1) == 0 and \
                    figures.get("lauks_gateway_replayed_points_total", 0) > replayed_before:
                drained_at = time.monotonic()
                break
            time.sleep(0.05)
        figures = gateway.metrics()
        stop.set()
        thread.join()
        acked = publisher.wait_acked(publisher.sent, 60, check=False)
        publisher.close()
        settle = time.monotonic() + 60
        stored = 0
        while time.monotonic() < settle:
            stored = influx_count(s.store.url, database, "SELECT count(temperature) FROM readings")
            if stored >= acked:
                break
            time.sleep(0.2)
        s.stop_gateway()
    if drained_at is None:
        print(f"the spool did not drain within 300 s; stored {stored} of {acked} accepted")
        print("drain_ratio=0")
        return
    drain_s = drained_at - restarted
    replayed = figures.get("lauks_gateway_replayed_points_total", 0) - replayed_before
    drain_rate = replayed / drain_s
    print(f"after InfluxDB came back: {replayed:.0f} points replayed in {drain_s:.2f} s "
          f"(from InfluxDB answering again) = {drain_rate:,.0f} points/s while {args.rate:.0f} msg/s kept arriving")
    print(f"stored {stored} of {acked} messages the broker accepted ({publisher.sent} published); "
          f"peak RSS {peak:.0f} MB (target <= 150)")
    print(f"drain_ratio={drain_rate / args.rate:.1f}")


if __name__ == "__main__":
    main()
