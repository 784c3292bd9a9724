"""Simulated kits (the real firmware under CPython) against the real Mosquitto: what they publish
holds to the contract, remote settings apply, failures are reported, and SIGTERM exits cleanly."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from firmware.kitconfig import kit_config
from firmware.sim.board import Faults
from firmware.sim.runner import SimKit, Simulation
from firmware.tools import configure
from harness.inbox import Inbox
from lauks.contract import decode_readings, decode_status
from lauks.services import Mosquitto
from lauks.stack import write_stack_env
from lauks.topics import Topics

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def running(tmp: Path, port: int, topics: Topics, kits: list[SimKit], speedup: float = 60,
            start_ago_s: float = 6 * 3600) -> Iterator[tuple[Simulation, Inbox]]:
    inbox = Inbox(port, topics)
    sim = Simulation(kits, ("127.0.0.1", port), topics.root, speedup, start_ago_s, quiet=True)
    sim.start()
    try:
        yield sim, inbox
    finally:
        sim.shutdown()
        inbox.close()
        for kit in kits:
            assert kit.error is None, repr(kit.error)


def test_weather_and_environment_kits_publish_what_the_gateway_accepts(
        tmp_path: Path, mosquitto: Mosquitto, topics: Topics) -> None:
    kits = [SimKit(tmp_path / "a", kit_config("demo", "w1", "weather", interval_s=10), seed=1),
            SimKit(tmp_path / "b", kit_config("demo", "e1", "environment", interval_s=10), seed=2)]
    with running(tmp_path, mosquitto.port, topics, kits) as (_, inbox):
        assert inbox.wait_for(lambda: len(inbox.of("readings", "w1")) >= 3 and len(inbox.of("readings", "e1")) >= 3)
    for topic, payload in inbox.messages:
        kind, kit = topic.split("/")[-1], topic.split("/")[3]
        if kind == "readings":
            readings = decode_readings(payload, "demo", kit, time.time())
            assert readings.rejections == [], readings.rejections
        elif kind == "status":
            decode_status(payload)
    weather = {q for m in inbox.of("readings", "w1") for s in m["samples"] for q in s}
    assert {"temperature", "humidity", "pressure", "light", "wind_speed", "wind_gust", "wind_direction", "rain",
            "battery", "rssi"} <= weather
    env = {q for m in inbox.of("readings", "e1") for s in m["samples"] for q in s}
    assert {"water_temperature", "soil_temperature", "soil_moisture", "pm2_5", "pm10", "co2", "battery"} <= env
    status = [s for s in inbox.of("status", "w1") if s["state"] == "online"][-1]
    assert status["state"] == "online" and status["failed_sensors"] == [] and status["interval_s"] == 10
    # each simulated kit's copy of its config.json holds its broker password: the owner's alone
    assert {(kit.root / "config.json").stat().st_mode & 0o777 for kit in kits} == {0o600}


def test_a_retained_config_changes_the_interval_without_reflashing(
        tmp_path: Path, mosquitto: Mosquitto, topics: Topics) -> None:
    kits = [SimKit(tmp_path / "a", kit_config("demo", "c1", "weather", interval_s=60), seed=1)]
    with running(tmp_path, mosquitto.port, topics, kits) as (_, inbox):
        assert inbox.wait_for(lambda: len(inbox.of("status", "c1")) >= 1)
        configure("demo", "c1", 20, "127.0.0.1", mosquitto.port, topics)
        assert inbox.wait_for(lambda: any(s.get("interval_s") == 20 for s in inbox.of("status", "c1")))
        before = len(inbox.of("readings", "c1"))
        assert inbox.wait_for(lambda: len(inbox.of("readings", "c1")) >= before + 4)
    times = [s["t"] for m in inbox.of("readings", "c1")[before:] for s in m["samples"]]
    gaps = [b - a for a, b in itertools.pairwise(times[1:])]
    assert gaps and all(15 <= g <= 25 for g in gaps), gaps


def test_a_dead_sensor_is_reported_in_status_and_the_kit_goes_on(
        tmp_path: Path, mosquitto: Mosquitto, topics: Topics) -> None:
    faults = Faults(dead_sensor="bme280", dead_at=0)
    kits = [SimKit(tmp_path / "a", kit_config("demo", "d1", "weather", interval_s=10), faults, seed=1)]
    with running(tmp_path, mosquitto.port, topics, kits) as (_, inbox):
        assert inbox.wait_for(lambda: len(inbox.of("readings", "d1")) >= 3)
    assert [s for s in inbox.of("status", "d1") if s["state"] == "online"][-1]["failed_sensors"] == ["bme280"]
    samples = [s for m in inbox.of("readings", "d1") for s in m["samples"]]
    assert all("temperature" not in s and "light" in s for s in samples)


def test_a_kit_whose_clock_is_never_set_sends_age(tmp_path: Path, mosquitto: Mosquitto, topics: Topics) -> None:
    kits = [SimKit(tmp_path / "a", kit_config("demo", "n1", "weather", interval_s=10), Faults(no_ntp=True), seed=1)]
    with running(tmp_path, mosquitto.port, topics, kits) as (_, inbox):
        assert inbox.wait_for(lambda: len(inbox.of("readings", "n1")) >= 3)
    samples = [s for m in inbox.of("readings", "n1") for s in m["samples"]]
    assert all("age" in s and "t" not in s and s["age"] >= 0 for s in samples)


def test_a_full_ring_during_an_outage_drops_the_oldest_and_says_so(
        tmp_path: Path, mosquitto: Mosquitto, topics: Topics) -> None:
    cfg = kit_config("demo", "r1", "weather", interval_s=10)
    cfg["ring_segment_samples"], cfg["ring_segments"] = 5, 3  # room for 15 samples
    faults = Faults(wifi_drop_at=30, wifi_drop_for=600)
    kits = [SimKit(tmp_path / "a", cfg, faults, seed=1)]
    with running(tmp_path, mosquitto.port, topics, kits, speedup=120) as (_, inbox):
        assert inbox.wait_for(lambda: any(s.get("dropped", 0) > 0 for s in inbox.of("status", "r1")), 30)
    after = [m for m in inbox.of("readings", "r1") if len(m["samples"]) > 1]
    assert after and len(after[0]["samples"]) <= 15


def test_lauks_kit_simulate_runs_beside_a_stack_on_its_broker_and_stops_cleanly_on_sigterm(
        tmp_path: Path, mosquitto: Mosquitto, topics: Topics) -> None:
    inbox = Inbox(mosquitto.port, topics)
    # the broker's port only in the running stack's stack.env (this process stands in for `lauks up`), as
    # under `make run` with 1883 taken by another broker
    write_stack_env(tmp_path, {"LAUKS_MQTT_HOST": "127.0.0.1", "LAUKS_MQTT_PORT": str(mosquitto.port)}, os.getpid())
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAUKS_")}
    env.update(LAUKS_TOPIC_ROOT=topics.root, LAUKS_STATE_DIR=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-m", "stack", "kit", "simulate", "--kits", "2", "--interval", "10",
                             "--speedup", "30", "--quiet"], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        assert inbox.wait_for(lambda: {"sim01", "sim02"} <= {t.split("/")[3] for t, _ in inbox.messages
                                                            if t.endswith("/readings")}, 30)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
        inbox.close()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert (tmp_path / "sim-kits" / "demo-sim01" / "ring" / "cursor.json").exists()


def test_a_deep_sleeping_kit_keeps_boot_and_seq_and_reports_its_awake_time(
        tmp_path: Path, mosquitto: Mosquitto, topics: Topics) -> None:
    cfg = kit_config("demo", "s1", "weather", interval_s=10)
    cfg["deep_sleep"] = True
    kits = [SimKit(tmp_path / "a", cfg, seed=1)]
    with running(tmp_path, mosquitto.port, topics, kits) as (_, inbox):
        assert inbox.wait_for(lambda: len(inbox.of("readings", "s1")) >= 3)
    readings = inbox.of("readings", "s1")
    assert {m["boot"] for m in readings} == {0}
    assert [m["seq"] for m in readings] == list(range(len(readings)))
    sleeping = [s for s in inbox.of("status", "s1") if s["state"] == "sleeping"]
    assert sleeping and all(s["awake_ms"] >= 0 for s in sleeping[1:])
    assert len(kits[0].boards) >= 3  # every wake-up is a fresh start of the firmware, RAM lost
