"""De-duplication state under many boots: memory, keys.log and reload time (issue 10, item 2).

    python -m bench.dedup [--boots 1000000] [--gateway]

1. Each shape of traffic drives the real ``Dedup`` (the gateway's default bounds, fsync on, one
   ``persist`` per 1,000 keys as the gateway's batches do) in a fresh process, and prints that
   process's peak RSS (``getrusage``), the keys it holds, the size of keys.log, and the time a
   restart takes to load it (and the RSS after). Shapes: one kit raising ``boot`` at every message
   (the attack of issue 10); deep-sleep kits, a new boot at every wake; many kits; and the key budget
   full (kits with long boots, 4,096 keys each).
2. ``--gateway``: the real gateway as a child process, fed ``--boots`` messages, each with a boot of
   its own, through Mosquitto by C publishers (20 kits, fair-share limit off); prints its peak RSS
   (polled every 0.1 s) and its keys.log. Target: peak RSS <= 150 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.command import arguments

SHAPES = {
    "one kit, a new boot every message": (1, None),
    "1,000 deep-sleep kits, a new boot every wake": (1000, None),
    "100,000 kits, a new boot every message": (100_000, None),
    "500 kits, one long boot each (4,096 keys a kit: the budget)": (500, 4096),
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # Linux: KiB


def rss_mb() -> float:
    with open("/proc/self/statm") as file:
        return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def run_shape(kits: int, seqs_per_boot: int | None, messages: int, directory: Path) -> dict[str, float]:
    """In this (fresh) process: drive one Dedup, then load its log as a restart would."""
    from gateway.dedup import Dedup
    from gateway.settings import GatewaySettings

    s = GatewaySettings()
    before = rss_mb()
    dedup = Dedup(directory, s.gateway_dedup_window, fsync=True, max_keys=s.gateway_dedup_max_keys,
                  max_age_s=s.gateway_dedup_max_age_s)
    now_ms = 1_780_000_000_000
    started = time.perf_counter()
    for n in range(messages):
        kit = n % kits
        if seqs_per_boot is None:
            key = ("bench", f"k{kit}", n // kits, 0)
        else:
            key = ("bench", f"k{kit}", 1, n // kits % seqs_per_boot)
        dedup.see(key, now_ms + n // 10)
        if n % 1000 == 999:
            dedup.persist()
    dedup.close()
    see_us = (time.perf_counter() - started) / messages * 1e6
    held = len(dedup)
    peak = peak_rss_mb()
    log_mb = (directory / "keys.log").stat().st_size / 1e6
    del dedup
    started = time.perf_counter()
    again = Dedup(directory, s.gateway_dedup_window, fsync=True, max_keys=s.gateway_dedup_max_keys,
                  max_age_s=s.gateway_dedup_max_age_s)
    reload_s = time.perf_counter() - started
    return {"peak_rss_mb": peak, "rss_before_mb": before, "keys_held": held, "keys_log_mb": log_mb,
            "log_after_restart_mb": (directory / "keys.log").stat().st_size / 1e6, "reload_s": reload_s,
            "rss_after_reload_mb": rss_mb(), "see_and_persist_us": see_us, "reloaded_keys": len(again)}


def shapes(messages: int) -> None:
    for name, (kits, seqs) in SHAPES.items():
        if seqs is not None:
            messages = kits * seqs  # the budget shape: every kit's boot full
        with tempfile.TemporaryDirectory(prefix="lauks-bench-dedup-") as folder:
            out = subprocess.run([sys.executable, "-m", "bench.dedup", "--child", json.dumps([kits, seqs, messages]),
                                  folder], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout)
        print(f"{name}: {messages:,} messages ({messages // kits:,} a kit)")
        print(f"  peak RSS {r['peak_rss_mb']:.1f} MB (a fresh interpreter with the gateway imported: "
              f"{r['rss_before_mb']:.1f} MB); {r['keys_held']:,} keys held; {r['see_and_persist_us']:.2f} µs a "
              f"message (see + persist)")
        print(f"  keys.log {r['keys_log_mb']:.2f} MB, {r['log_after_restart_mb']:.2f} MB after the restart's "
              f"rewrite; restart {r['reload_s']:.2f} s ({r['reloaded_keys']:,} keys), RSS after it "
              f"{r['rss_after_reload_mb']:.1f} MB")


def gateway(messages: int) -> None:
    import psutil

    from bench.gateway_common import stack
    from harness.publisher import publish_with_c_clients

    kits = 20
    start = int(time.time()) - 3600
    per_kit = [[json.dumps({"v": 1, "kit": f"k{kit}", "boot": n, "seq": 0, "fw": "0.3.0",
                            "samples": [{"t": start + n * 0.001, "temperature": 20.5}]}, separators=(",", ":"))
                for n in range(kit, messages, kits)] for kit in range(kits)]
    with stack() as s:
        gateway = s.start_gateway("bench_dedup", gateway_kit_rate=0, gateway_kit_bytes_rate=0)
        process = psutil.Process(gateway.pid)
        peak = [process.memory_info().rss / 1e6]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.1):
                peak.append(process.memory_info().rss / 1e6)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        publish_with_c_clients(s.broker.port, per_kit, s.directory)
        deadline = time.monotonic() + 600
        received = stored = 0.0
        while time.monotonic() < deadline:
            figures = gateway.metrics()
            received = figures.get("lauks_gateway_received_total", 0.0)
            stored = figures.get("lauks_gateway_stored_messages_total", 0.0)
            if stored >= messages:
                break
            time.sleep(0.2)
        took = time.monotonic() - started
        done.set()
        sampler.join()
        log = s.directory / "state" / "dedup-bench" / "keys.log"
        print(f"gateway fed {messages:,} messages, each a boot of its own (20 kits): {received:,.0f} received, "
              f"{stored:,.0f} stored in {took:.1f} s")
        print(f"  gateway RSS at start {peak[0]:.1f} MB, peak {max(peak):.1f} MB (target <= 150 MB); keys.log "
              f"{log.stat().st_size / 1e6:.2f} MB")
        code = s.stop_gateway()
        print(f"  stopped with exit code {code}")


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--boots", type=int, default=1_000_000, help="messages, each a new boot (per shape)")
    parser.add_argument("--gateway", action="store_true", help="also feed a real gateway through the broker")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("folder", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kits, seqs, messages = json.loads(args.child)
        print(json.dumps(run_shape(kits, seqs, messages, Path(args.folder))))
        return
    shapes(args.boots)
    if args.gateway:
        gateway(args.boots)


if __name__ == "__main__":
    main()
