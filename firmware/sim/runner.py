"""Run simulated kits: each a thread running the real firmware's Kit loop against a real broker.

A simulated reboot restarts the Kit with the same flash folder (RAM and RTC lost); a deep sleep
restarts it with the RTC memory kept. SIGTERM or Ctrl-C stops every kit and returns cleanly.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firmware.device_path import use_device_code
from firmware.sim.board import ESP32_RTC_START, Faults, SimBoard, SimDeepSleep, SimReboot, SimStop
from firmware.sim.world import Clock, Weather
from lauks.privatefile import write_private

use_device_code()
from lauks_kit.app import Kit  # noqa: E402
from lauks_kit.core.record import Record  # noqa: E402


@dataclass
class SimKit:
    root: Path
    config: dict[str, Any]
    faults: Faults = field(default_factory=Faults)
    seed: int = 0
    boards: list[SimBoard] = field(default_factory=list)
    error: BaseException | None = None
    taken: list[float] = field(default_factory=list)  # world Unix time of every sample put in the ring


class SimulatedKit(Kit):  # type: ignore[misc]  # the firmware's Kit, untyped MicroPython code
    """The firmware's Kit, noting when each sample went into the ring (for tests and benchmarks)."""

    def __init__(self, board: SimBoard, topic_root: str, taken: list[float]) -> None:
        super().__init__(board, topic_root)
        self._taken = taken

    def start(self) -> bool:
        if not super().start():
            return False
        append, board = self.ring.append, self.board

        def noting(record: Record) -> None:
            when = record.secs + record.ms / 1000
            self._taken.append(when if record.synced else when - ESP32_RTC_START + board.power_on)
            append(record)

        self.ring.append = noting
        return True

    def run_update(self, offer: dict[str, Any]) -> bool:
        # these kits share one process's modules, so none can run a version of its own: refused, and said so
        reason = "a kit of lauks kit simulate cannot switch versions (firmware/sim/flashkit.py runs kits that can)"
        self.board.log(f"update offer refused: {reason}")
        self.update, self.status_dirty = {"version": offer["version"], "state": "failed", "reason": reason}, True
        return False


class Simulation:
    def __init__(self, kits: list[SimKit], broker: tuple[str, int], topic_root: str = "lauks",
                 speedup: float = 1.0, start_ago_s: float = 0.0, quiet: bool = False) -> None:
        self.kits = kits
        self.broker = broker
        self.topic_root = topic_root
        self.clock = Clock(speedup=speedup, start_ago_s=start_ago_s)
        self.stop = threading.Event()
        self.quiet = quiet
        self.threads: list[threading.Thread] = []

    def _run_kit(self, sim: SimKit) -> None:
        sim.root.mkdir(parents=True, exist_ok=True)
        write_private(sim.root / "config.json", json.dumps(sim.config, indent=2))  # it holds the kit's password
        first_start = self.clock.now()
        rtc: dict[str, Any] = {}
        woke = False
        prefix = f"[{sim.config.get('site')}/{sim.config.get('kit')}] "
        while not self.stop.is_set():
            board = SimBoard(sim.root, self.clock, Weather(sim.seed), self.stop, sim.faults, first_start,
                             self.broker, rtc, woke, "" if self.quiet else prefix)
            broker = sim.config.get("broker", {})
            board.broker_alias = (broker.get("host", ""), broker.get("port", 1883))
            sim.boards.append(board)
            kit = SimulatedKit(board, self.topic_root, sim.taken)
            try:
                kit.run()
            except SimReboot:
                board.log("simulated power loss: rebooting")
                if kit.mqtt is not None:
                    kit.mqtt.close()  # no DISCONNECT: the broker publishes the last will
                rebooted = rtc.get("rebooted")
                rtc.clear()
                rtc["rebooted"] = rebooted
                woke = False
            except SimDeepSleep as sleep:
                woke = True
                self.clock.sleep(sleep.ms / 1000, self.stop)
            except SimStop:
                if kit.mqtt is not None:
                    kit.mqtt.close()
                return
            except BaseException as e:  # a firmware bug: keep it for the caller, stop this kit only
                sim.error = e
                board.log(f"firmware crashed: {e!r}")
                return

    def start(self) -> None:
        for sim in self.kits:
            name = f"kit-{sim.config.get('site')}-{sim.config.get('kit')}"
            thread = threading.Thread(target=self._run_kit, args=(sim,), name=name, daemon=True)
            thread.start()
            self.threads.append(thread)

    def shutdown(self, timeout_s: float = 15.0) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout_s)
