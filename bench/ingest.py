"""Ingest throughput: the gateway against the broker's own ceiling, on our message mix.

    python -m bench.ingest [--messages 100000] [--kits 20]

1. The ceiling: ``mosquitto_sub -q 1`` (the C client) drains the messages as C publishers send them.
2. The gateway (``lauks gateway`` as a child process, fsync on) takes the same messages; the time
   runs from the first publish until InfluxDB has acknowledged every sample (the gateway's
   ``stored_points`` counter, polled every 20 ms); a count query afterwards checks InfluxDB holds them.
Prints both rates and, on the last line, ``ratio=<gateway msg/s / ceiling msg/s>`` (target >= 0.5).
"""

from __future__ import annotations

import subprocess
import time

from bench.command import arguments
from bench.gateway_common import influx_count, message_mix, stack
from harness.gateway import GatewayProcess
from harness.publisher import publish_with_c_clients
from lauks.services import find_program


def gateway_cpu_s(gateway: GatewayProcess) -> float:
    """User + system CPU seconds of the gateway and its workers so far."""
    import psutil

    root = psutil.Process(gateway.pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        times = process.cpu_times()
        total += times.user + times.system
    return total


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--kits", type=int, default=20)
    parser.add_argument("--batch-points", type=int, default=5000)
    parser.add_argument("--batch-ms", type=int, default=50)
    parser.add_argument("--max-inflight", type=int, default=4000)
    parser.add_argument("--concurrent-writes", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1, help="gateway worker processes (one share group)")
    args = parser.parse_args()
    per_kit, samples = message_mix(args.kits, args.messages)
    print(f"messages={args.messages} samples={samples} kits={args.kits} (90% one sample, 10% a 10-sample backfill)")
    with stack() as s:
        # --- the ceiling: the C subscriber at QoS 1 ---
        # subscribed before the first publish: a persistent session subscribes and waits for its SUBACK (-E),
        # then the counting subscriber takes that session over, so nothing published in between is missed
        subscriber = [find_program("mosquitto_sub"), "-h", "127.0.0.1", "-p", str(s.broker.port), "-q", "1",
                      "-c", "-i", "bench-ceiling", "-t", "lauks/v1/+/+/readings"]
        subprocess.run([*subscriber, "-E"], check=True, timeout=30)
        sub = subprocess.Popen([*subscriber, "-C", str(args.messages)], stdout=subprocess.DEVNULL)
        started = time.monotonic()
        publish_s = publish_with_c_clients(s.broker.port, per_kit, s.directory)
        sub.wait(600)
        ceiling_s = time.monotonic() - started
        ceiling = args.messages / ceiling_s
        print(f"ceiling (mosquitto_sub, QoS 1): {ceiling:,.0f} msg/s  ({ceiling_s:.2f} s; publishing took "
              f"{publish_s:.2f} s)")

        # --- the gateway ---
        database = "bench"
        # each kit here sends thousands of messages a second, far past a kit's fair share (docs/gateway.md):
        # bursts big enough that none is limited, while every message still goes through the bucket check
        each = args.messages // args.kits + 1
        gateway = s.start_gateway(database, gateway_kit_burst=2 * each + 5000,
                                  gateway_kit_burst_bytes=max(5 << 20, 4096 * each),
                                  gateway_batch_points=args.batch_points, gateway_batch_ms=args.batch_ms,
                                  gateway_max_inflight=args.max_inflight,
                                  gateway_concurrent_writes=args.concurrent_writes, gateway_workers=args.workers)
        started = time.monotonic()
        publish_s = publish_with_c_clients(s.broker.port, per_kit, s.directory)
        deadline = time.monotonic() + 600
        figures: dict[str, float] = {}
        while time.monotonic() < deadline:
            # the gateway's own count of samples InfluxDB has acknowledged: cheap to ask often, where a
            # count query over the growing measurement would take InfluxDB's CPU from the run it measures
            figures = gateway.metrics()  # every worker's, counters added up
            if figures.get("lauks_gateway_stored_points_total", 0) >= samples:
                break
            if figures.get("lauks_gateway_received_total", 0) >= args.messages and \
                    figures.get("lauks_gateway_inflight", 1) == 0 and \
                    figures.get("lauks_gateway_rejected_messages_total", 0) > 0:
                print("some samples were rejected: the message mix is wrong", flush=True)
                break
            time.sleep(0.02)
        gateway_s = time.monotonic() - started
        cpu_s = gateway_cpu_s(gateway)
        stored = influx_count(s.store.url, database, "SELECT count(temperature) FROM readings")
        code = s.stop_gateway()
        rate = args.messages / gateway_s
        print(f"gateway: {rate:,.0f} msg/s, {samples / gateway_s:,.0f} samples/s stored in InfluxDB "
              f"({gateway_s:.2f} s; {stored} of {samples} samples counted in InfluxDB afterwards, "
              f"{figures.get('lauks_gateway_spooled_points_total', 0):.0f} spooled; publishing took {publish_s:.2f} s)")
        if stored != samples:
            print(f"NOT ALL STORED: InfluxDB holds {stored} of {samples} samples", flush=True)
        print(f"gateway counters: received={figures.get('lauks_gateway_received_total', 0):.0f} "
              f"duplicates={figures.get('lauks_gateway_duplicates_total', 0):.0f} "
              f"write p50={figures.get('lauks_gateway_write_latency_ms_p50', 0):.1f} ms "
              f"p99={figures.get('lauks_gateway_write_latency_ms_p99', 0):.1f} ms; exit code {code}")
        print(f"gateway CPU: {cpu_s:.2f} s in all processes, {cpu_s / args.messages * 1e6:.0f} us per message "
              "(start-up included)")
        print(f"ratio={rate / ceiling:.2f}")


if __name__ == "__main__":
    main()
