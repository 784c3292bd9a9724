"""One kit floods at full speed while 20 well-behaved kits report once a second (issue 10, item 3).

    python -m bench.flood [--seconds 60] [--quiet-kits 20] [--big-bytes 12000] [--flood-rate 0] [--no-limit]

Two phases of half the time each: a kit floods with ~12 KB readings messages, then another with small
ones (one sample), at QoS 1 as fast as the broker acknowledges (``Flooder``: packets encoded ahead,
written in large chunks, at most 2,000 unacknowledged; ``mosquitto_pub -l`` would queue without bound
in its own memory when fed faster than the broker takes it). All
the while 20 kits publish one message a second each (paho, QoS 1), every sample's ``t`` the moment it
was published; a poller asks InfluxDB every 20 ms for their new points (as bench.latency does), so a
point's latency is when it first showed up minus its ``t`` (polling included: an upper bound).

Prints, per phase and overall: the well-behaved kits' publish-to-stored p50/p99 (target p99 <= 1 s)
and how many of their readings were stored out of published; the flooder's messages received,
accepted and rate-limited, and the notices it was sent; the peak RSS of broker and gateway. The
gateway runs with its default fair share (``--no-limit``: LAUKS_GATEWAY_KIT_RATE=0, for comparison);
the broker with the limits of ``lauks.services.BROKER_LIMITS``. Last line: ``p99_ms=<overall>``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import multiprocessing
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bench.command import arguments
from bench.gateway_common import Stack, influx_count, rss_mb, stack
from gateway.settings import GatewaySettings
from harness.gateway import GatewayProcess
from harness.publisher import Publisher
from lauks.services import BROKER_LIMITS

SITE = "bench"
LIMITED = 'lauks_gateway_rejections_total{reason="rate_limited"}'


def flood_lines(kit: str, target_bytes: int, start_seq: int, count: int) -> bytes:
    """``count`` readings messages of about ``target_bytes`` each (samples an hour old, 5 quantities)."""
    t0 = int(time.time()) - 3600
    sample = {"t": t0, "temperature": 21.5, "humidity": 55.2, "pressure": 1013.2, "battery": 3.92, "rssi": -67}
    per_sample = len(json.dumps(sample, separators=(",", ":"))) + 4
    samples = max(1, (target_bytes - 80) // per_sample)
    body = ",".join(json.dumps(dict(sample, t=t0 - n * 0.01), separators=(",", ":")) for n in range(samples))
    return b"".join(f'{{"v":1,"kit":"{kit}","boot":1,"seq":{seq},"samples":[{body}]}}\n'.encode()
                    for seq in range(start_seq, start_seq + count))


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        value, byte = value >> 7, value & 0x7F
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


class Flooder:
    """One kit publishing at QoS 1 as fast as the broker acknowledges: MQTT 3.1.1 PUBLISH packets encoded
    ahead and written in 256 KB chunks on a plain socket, at most WINDOW unacknowledged (so its memory,
    unlike ``mosquitto_pub -l``'s queue, stays flat). It runs in a process of its own, so it does not
    take the GIL from the well-behaved kits' publisher; Python only moves bytes here."""

    WINDOW = 2000

    def __init__(self, port: int, kit: str, message_bytes: int, rate: float = 0.0) -> None:
        context = multiprocessing.get_context("spawn")
        self.kit = kit
        self.stop_event = context.Event()
        self.acked_value = context.Value("q", 0)
        self.process = context.Process(target=_flood, args=(port, kit, message_bytes, rate, self.stop_event,
                                                            self.acked_value), daemon=True)
        self.process.start()

    @property
    def acked(self) -> int:
        return int(self.acked_value.value)

    def stop(self) -> None:
        self.stop_event.set()
        self.process.join(10)


def _flood(port: int, kit: str, message_bytes: int, rate: float, stop: Any, acked_value: Any) -> None:
    """The flooder's process: ``rate`` messages a second, or as fast as the broker acknowledges (0)."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client_id = f"flood-{kit}".encode()
    body = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(client_id).to_bytes(2, "big") + client_id
    sock.sendall(b"\x10" + varint(len(body)) + body)
    connack = sock.recv(4)
    if connack[:1] != b"\x20" or connack[3:4] != b"\x00":
        raise RuntimeError(f"the broker refused the flooder: {connack!r}")
    topic = f"lauks/v1/{SITE}/{kit}/readings".encode()
    topic = len(topic).to_bytes(2, "big") + topic
    per_chunk = max(8, min(2048, 256 * 1024 // message_bytes))
    if rate:
        per_chunk = max(1, min(per_chunk, int(rate / 100)))  # 100 chunks a second at most
    payloads = flood_lines(kit, message_bytes, 0, per_chunk * 16).splitlines()  # seqs repeat: copies cost the same
    sent = ack_bytes = 0
    started = time.monotonic()
    with contextlib.suppress(OSError):
        while not stop.is_set():
            if rate and (ahead := sent / rate - (time.monotonic() - started)) > 0:
                time.sleep(ahead)
            parts: list[bytes] = []
            for _ in range(per_chunk):
                payload = payloads[sent % len(payloads)]
                variable = topic + (sent % 65535 + 1).to_bytes(2, "big")
                parts += (b"\x32", varint(len(variable) + len(payload)), variable, payload)
                sent += 1
            sock.sendall(b"".join(parts))
            while True:  # only PUBACKs come back: 4 bytes each
                block = sent - ack_bytes // 4 > Flooder.WINDOW and not stop.is_set()
                sock.setblocking(block)
                try:
                    data = sock.recv(1 << 20)
                except BlockingIOError:
                    break
                finally:
                    sock.setblocking(True)
                if not data:
                    raise ConnectionError("the broker closed the flooder's connection")
                ack_bytes += len(data)
                acked_value.value = ack_bytes // 4
                if not block:
                    break
        sock.sendall(b"\xe0\x00")  # DISCONNECT
    sock.close()


@dataclass
class Phase:
    name: str
    flooder: str
    message_bytes: int
    started: float = 0.0
    ended: float = 0.0
    before: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)
    written: int = 0
    quiet_published: int = 0
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds in the phase, by process


def cpu_s(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def settled(gateway: GatewayProcess, timeout_s: float = 30.0) -> dict[str, float]:
    """The gateway's metrics once it has taken what the broker still held for it: nothing in flight, and no
    more received in the last 0.2 s."""
    deadline = time.monotonic() + timeout_s
    last = gateway.metrics(labelled=True)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = gateway.metrics(labelled=True)
        if now.get("lauks_gateway_inflight", 0) == 0 and \
                now.get("lauks_gateway_received_total") == last.get("lauks_gateway_received_total"):
            return now
        last = now
    return last


def percentile(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(p * len(values)))] if values else float("nan")


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--seconds", type=float, default=60.0, help="both phases together")
    parser.add_argument("--quiet-kits", type=int, default=20)
    parser.add_argument("--big-bytes", type=int, default=12_000)
    parser.add_argument("--no-limit", action="store_true", help="LAUKS_GATEWAY_KIT_RATE=0: no fair share")
    parser.add_argument("--flood-rate", type=float, default=0.0,
                        help="messages a second the flooder sends (default 0: as fast as the broker takes them)")
    args = parser.parse_args()
    defaults = GatewaySettings()
    limits = "off (LAUKS_GATEWAY_KIT_RATE=0)" if args.no_limit else (
        f"{defaults.gateway_kit_rate:g} msg/s after a burst of {defaults.gateway_kit_burst:,}, "
        f"{defaults.gateway_kit_bytes_rate / 1024:g} KiB/s after {defaults.gateway_kit_burst_bytes / 2**20:g} MiB "
        "(the defaults)")
    broker_limits = ", ".join(line for line in BROKER_LIMITS if line.startswith(("max_queued", "memory_limit",
                                                                                 "max_packet")))
    print(f"broker: {broker_limits}")
    print(f"gateway fair share per kit: {limits}")
    print(f"flooder: {f'{args.flood_rate:,.0f} msg/s' if args.flood_rate else 'as fast as the broker takes it'}; "
          f"{args.quiet_kits} well-behaved kits at 1 msg/s each")
    phases = [Phase("big", "flood-big", args.big_bytes), Phase("small", "flood-small", 0)]
    with stack() as s:
        database = "flood"
        gateway = s.start_gateway(database, **({"gateway_kit_rate": 0} if args.no_limit else {}))
        run(s, gateway, database, args, phases)


def run(s: Stack, gateway: GatewayProcess, database: str, args: argparse.Namespace, phases: list[Phase]) -> None:
    assert s.broker.child is not None and s.broker.child.process is not None
    assert s.store.child is not None and s.store.child.process is not None
    broker_pid, gateway_pid = s.broker.child.process.pid, gateway.pid
    pids = {"gateway": gateway_pid, "broker": broker_pid, "influxd": s.store.child.process.pid}
    peak = {"broker": rss_mb(broker_pid), "gateway": rss_mb(gateway_pid)}
    print(f"at rest: broker RSS {peak['broker']:.0f} MB, gateway RSS {peak['gateway']:.0f} MB")
    listener = Publisher(s.broker.port)
    listener.subscribe(f"lauks/v1/{SITE}/+/rejected")

    stop = threading.Event()

    def sample_rss() -> None:
        while not stop.is_set():
            with contextlib.suppress(Exception):
                peak["broker"] = max(peak["broker"], rss_mb(broker_pid))
                peak["gateway"] = max(peak["gateway"], rss_mb(gateway_pid))
            time.sleep(0.2)

    published: dict[tuple[str, int], tuple[float, int]] = {}  # (kit, t_ms) -> (publish time, phase index)
    phase_now = [0]
    quiet = Publisher(s.broker.port)

    def quiet_messages() -> Iterator[tuple[str, bytes]]:
        for index in itertools.count():  # made when due: its sample time is its publish time
            kit = f"q{index % args.quiet_kits}"
            now = time.time()
            t_ms = int(now * 1000)
            payload = json.dumps({"v": 1, "kit": kit, "boot": 1, "seq": index // args.quiet_kits, "samples": [
                {"t": t_ms / 1000, "temperature": 20.0, "humidity": 50.0}]}).encode()
            published[(kit, t_ms)] = (now, phase_now[0])
            phases[phase_now[0]].quiet_published += 1
            yield f"lauks/v1/{SITE}/{kit}/readings", payload

    latencies: list[tuple[float, int]] = []
    timeline: list[tuple[float, float]] = []  # (seconds since the run began, latency ms)
    began = time.time()
    seen: set[tuple[str, int]] = set()
    watermark = [int(time.time() * 1000) - 1000]

    def poll_once() -> None:
        query = urllib.parse.urlencode({"db": database, "epoch": "ms", "q": "SELECT temperature, kit FROM readings "
                                        f"WHERE kit =~ /^q/ AND time > {watermark[0]}ms"})
        with urllib.request.urlopen(f"{s.store.url}/query?{query}", timeout=30) as response:
            result = json.loads(response.read())
        arrived = time.time()
        series = result["results"][0].get("series", [])
        newest = watermark[0]
        for row in series[0]["values"] if series else []:
            key = (row[2], int(row[0]))
            if key not in seen and key in published:
                seen.add(key)
                sent, phase = published[key]
                latencies.append(((arrived - sent) * 1000, phase))
                timeline.append((sent - began, (arrived - sent) * 1000))
            newest = max(newest, int(row[0]))
        watermark[0] = max(watermark[0], newest - 2000)  # overlap: batches can land out of time order

    threads = [threading.Thread(target=sample_rss, daemon=True),
               threading.Thread(target=quiet.publish_all, args=(quiet_messages(), args.quiet_kits),
                                kwargs={"stop": stop}, daemon=True)]
    for thread in threads:
        thread.start()
    for index, phase in enumerate(phases):
        phase_now[0] = index
        phase.before = gateway.metrics(labelled=True)
        phase.started = time.monotonic()
        cpu_before = {name: cpu_s(pid) for name, pid in pids.items()}
        flooder = Flooder(s.broker.port, phase.flooder, phase.message_bytes or 1, args.flood_rate)
        while time.monotonic() - phase.started < args.seconds / len(phases):
            poll_once()
            time.sleep(0.02)
        phase.cpu = {name: cpu_s(pid) - cpu_before[name] for name, pid in pids.items()}
        phase.cpu["flooder"] = cpu_s(flooder.process.pid or 0)
        flooder.stop()
        phase.written = flooder.acked
        phase.ended = time.monotonic()
        phase.after = gateway.metrics(labelled=True)
    stop.set()
    threads[1].join(5)
    deadline = time.time() + 30
    while len(seen) < len(published) and time.time() < deadline:
        poll_once()
        time.sleep(0.05)
    final = settled(gateway)
    threads[0].join(5)
    quiet.close()
    listener.close()
    notices: dict[str, int] = {}
    for topic, _ in listener.drain():
        kit = topic.split("/")[3]
        notices[kit] = notices.get(kit, 0) + 1
    stored_quiet = influx_count(s.store.url, database, "SELECT count(temperature) FROM readings WHERE kit =~ /^q/")
    code = s.stop_gateway()

    for index, phase in enumerate(phases):
        seconds = phase.ended - phase.started
        received = (phase.after.get("lauks_gateway_received_total", 0)
                    - phase.before.get("lauks_gateway_received_total", 0))
        flood_received = received - phase.quiet_published
        limited = phase.after.get(LIMITED, 0) - phase.before.get(LIMITED, 0)
        ours = sorted(ms for ms, p in latencies if p == index)
        size = "small messages (1 sample)" if not phase.message_bytes else f"{phase.message_bytes:,}-byte messages"
        print(f"phase {phase.name}: {phase.flooder} floods with {size} for {seconds:.0f} s: "
              f"{flood_received:,.0f} received by the gateway ({flood_received / seconds:,.0f} msg/s), "
              f"{flood_received - limited:,.0f} accepted, {limited:,.0f} rate-limited; "
              f"{notices.get(phase.flooder, 0)} notices sent to it")
        print(f"  the broker acknowledged {phase.written:,} of the flooder's messages "
              f"({phase.written / seconds:,.0f}/s); CPU seconds: "
              + ", ".join(f"{name} {value:.1f}" for name, value in phase.cpu.items()))
        print(f"  well-behaved: {len(ours)} of {phase.quiet_published} readings seen; publish-to-stored "
              f"p50={percentile(ours, 0.5):.0f} ms p99={percentile(ours, 0.99):.0f} ms "
              f"max={(ours[-1] if ours else float('nan')):.0f} ms")
    seconds_p99 = []
    for second in range(int(max((t for t, _ in timeline), default=0)) + 1):
        values = sorted(ms for t, ms in timeline if second <= t < second + 1)
        seconds_p99.append(f"{percentile(values, 0.99) / 1000:.1f}")
    print(f"well-behaved p99 by the second they were published (s): {' '.join(seconds_p99)}")
    everything = sorted(ms for ms, _ in latencies)
    quiet_notices = sum(n for kit, n in notices.items() if kit.startswith("q"))
    print(f"overall: well-behaved readings stored {stored_quiet} of {len(published)} published "
          f"({quiet_notices} notices to them); publish-to-stored p50={percentile(everything, 0.5):.0f} ms "
          f"p99={percentile(everything, 0.99):.0f} ms (target p99 <= 1000 ms; includes up to 20 ms of polling)")
    print(f"gateway: {final.get('lauks_gateway_received_total', 0):,.0f} received, "
          f"{final.get(LIMITED, 0):,.0f} rate-limited, {final.get('lauks_gateway_stored_points_total', 0):,.0f} "
          f"points stored, write p99 {final.get('lauks_gateway_write_latency_ms_p99', 0):.0f} ms; exit code {code}")
    print(f"peak RSS: broker {peak['broker']:.0f} MB, gateway {peak['gateway']:.0f} MB")
    print(f"p99_ms={percentile(everything, 0.99):.0f}")


if __name__ == "__main__":
    main()
