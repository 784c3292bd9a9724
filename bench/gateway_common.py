"""Shared pieces of the gateway benchmarks: a private broker and InfluxDB, the gateway as a child
process, our message mix, and fast C publishers (mosquitto_pub -l, one process per kit)."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lauks.services import Influxd, Mosquitto, find_program, free_port

ROOT = Path(__file__).resolve().parents[1]
QUANTITIES = ("temperature", "humidity", "pressure", "battery", "rssi")


@dataclass
class Stack:
    directory: Path
    broker: Mosquitto
    store: Influxd
    gateway: subprocess.Popen[bytes] | None = None
    http_port: int = 0

    @property
    def gateway_log(self) -> Path:
        return self.directory / "gateway.log"

    def start_gateway(self, database: str, **env: str) -> None:
        self.http_port = free_port()
        variables = dict(os.environ, LAUKS_MQTT_PORT=str(self.broker.port), LAUKS_INFLUX_URL=self.store.url,
                         LAUKS_INFLUX_DATABASE=database, LAUKS_STATE_DIR=str(self.directory / "state"),
                         LAUKS_GATEWAY_HTTP_PORT=str(self.http_port), LAUKS_GATEWAY_INSTANCE="bench",
                         LAUKS_TOPIC_ROOT="lauks")
        variables.update(env)
        with self.gateway_log.open("ab") as log:
            self.gateway = subprocess.Popen([sys.executable, "-m", "lauks", "gateway", "--log-level", "WARNING"],
                                            cwd=ROOT, env=variables, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if metrics(self.http_port).get("lauks_gateway_mqtt_connected") == 1.0:
                    time.sleep(0.3)
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the gateway did not connect:\n{self.gateway_log.read_text()[-2000:]}")

    def stop_gateway(self) -> int:
        if self.gateway is None:
            return 0
        self.gateway.terminate()
        return self.gateway.wait(60)


@contextmanager
def stack() -> Iterator[Stack]:
    with tempfile.TemporaryDirectory(prefix="lauks-bench-") as name:
        directory = Path(name)
        broker = Mosquitto(directory / "mosquitto", free_port())
        store = Influxd(directory / "influxdb", free_port())
        broker.start()
        store.start()
        running = Stack(directory, broker, store)
        try:
            yield running
        finally:
            if running.gateway is not None and running.gateway.poll() is None:
                running.stop_gateway()
            broker.stop()
            store.stop()


def metrics(port: int, labelled: bool = False) -> dict[str, float]:
    """The gateway's /metrics samples by name; with ``labelled``, labelled ones too, by their full text
    (``lauks_gateway_rejections_total{reason="rate_limited"}``)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        match = re.fullmatch(r"([a-z0-9_]+)(\{[^}]*\})? ([-0-9.e+]+)", line)
        if match and (labelled or not match.group(2)):
            out[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return out


def influx_count(url: str, database: str, statement: str) -> int:
    query = urllib.parse.urlencode({"db": database, "q": statement})
    with urllib.request.urlopen(f"{url}/query?{query}", timeout=30) as response:
        result = json.loads(response.read())
    try:
        return int(result["results"][0]["series"][0]["values"][0][1])
    except (KeyError, IndexError):
        return 0


def message_mix(kits: int, messages: int, seed: int = 1, now: float | None = None) -> tuple[list[list[str]], int]:
    """Our mix: 90 % one weather sample with 5 quantities and 't'; 10 % a backfill of 10 samples after an
    outage. Lines per kit (JSON, one message each) and the number of samples in all."""
    rng = random.Random(seed)
    start = int(now or time.time()) - 3600 - messages // kits - 1  # every sample in the past
    per_kit: list[list[str]] = [[] for _ in range(kits)]
    samples = 0
    for index in range(messages):
        kit = index % kits
        seq = index // kits
        base = start + seq  # one second per message and kit: every sample has a time of its own
        count = 10 if rng.random() < 0.1 else 1
        body = [{"t": base - 0.01 * n, "temperature": round(rng.uniform(-5, 30), 2),
                 "humidity": round(rng.uniform(20, 99), 1), "pressure": round(rng.uniform(980, 1030), 1),
                 "battery": round(rng.uniform(3.3, 4.2), 2), "rssi": rng.randint(-90, -40)} for n in range(count)]
        samples += count
        per_kit[kit].append(json.dumps({"v": 1, "kit": f"k{kit}", "boot": 1, "seq": seq, "fw": "0.3.0",
                                        "samples": body}, separators=(",", ":")))
    return per_kit, samples


def publish_with_c_clients(port: int, per_kit: list[list[str]], directory: Path, topic_root: str = "lauks") -> float:
    """Publish every kit's lines with its own ``mosquitto_pub -l -q 1``; seconds until all exited."""
    program = find_program("mosquitto_pub")
    files = []
    for kit, lines in enumerate(per_kit):
        path = directory / f"kit{kit}.jsonl"
        path.write_text("\n".join(lines) + "\n")
        files.append(path)
    started = time.monotonic()
    processes = []
    for kit, path in enumerate(files):
        with path.open("rb") as stdin:
            processes.append(subprocess.Popen(
                [program, "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-M", "1000",
                 "-t", f"{topic_root}/v1/bench/k{kit}/readings", "-l"], stdin=stdin))
    for process in processes:
        process.wait(600)
    return time.monotonic() - started


def rss_mb(pid: int) -> float:
    import psutil

    return float(psutil.Process(pid).memory_info().rss) / 1e6




class Publisher:
    """A paho client publishing at QoS 1 (messages kept until the broker acknowledges them)."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.client = paho.Client(CallbackAPIVersion.VERSION2)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.acked = 0
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_publish(self, *args: object) -> None:
        self.acked += 1  # paho calls this from its one network thread

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1)

    def wait_acked(self, count: int, timeout_s: float = 60.0) -> int:
        deadline = time.monotonic() + timeout_s
        while self.acked < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.acked

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
