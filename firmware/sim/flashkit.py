"""Simulated kits that run the firmware installed in their own flash folder, each in a process of its own.

The thread simulator (runner.py) shares one CPython's modules among its kits, so a kit there cannot run a
version of its own. For updates over the air a kit must: its flash folder holds main.py, lauks_boot.py and
lauks_kit/ as flashed (then as updated), and firmware/sim/kitproc.py runs it the way a kit boots. A reset ends
the process and this supervisor starts it again on the same folder (RAM gone, flash kept); ``power_cut`` kills
it on the spot.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from firmware.device_path import DEVICE_DIR
from firmware.sim.board import POWER_CUT, Faults
from firmware.sim.kitproc import RESET, SLEEP
from firmware.sim.world import Clock
from lauks.privatefile import write_private

ROOT = DEVICE_DIR.parents[1]


def install(flash: Path, config: dict[str, Any], source: Path = DEVICE_DIR) -> None:
    """Flash a kit: the firmware's files (as `lauks kit flash` copies them) and its config.json."""
    flash.mkdir(parents=True, exist_ok=True)
    for file in sorted(source.rglob("*.py")):
        if "__pycache__" in file.parts:
            continue
        target = flash / file.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, target)
    write_private(flash / "config.json", json.dumps(config, indent=2))  # it holds the kit's passwords


@dataclass
class FlashKit:
    flash: Path
    config: dict[str, Any]
    broker: tuple[str, int]
    clock: Clock
    topic_root: str = "lauks"
    seed: int = 0
    faults: Faults = field(default_factory=Faults)
    exits: list[int] = field(default_factory=list)  # how each run of the process ended
    error: str | None = None
    on_exit: Callable[[int], None] | None = None  # called with each exit code before the kit powers on again
    trial_s: float | None = None  # lauks_boot.TRIAL_S for this kit (world seconds), to test it in less time
    _proc: subprocess.Popen[bytes] | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def log_file(self) -> Path:
        return self.flash.parent / (self.flash.name + ".log")

    def log(self) -> str:
        return self.log_file.read_text() if self.log_file.exists() else ""

    def _spec(self, woke: bool, first_start: float) -> Path:
        broker = self.config.get("broker", {})
        spec = {"flash": str(self.flash), "speedup": self.clock.speedup, "start_ago_s": self.clock.start_ago_s,
                "real_start": self.clock.real_start, "first_start": first_start, "seed": self.seed,
                "broker": list(self.broker), "broker_alias": [broker.get("host", ""), broker.get("port", 1883)],
                "topic_root": self.topic_root, "faults": asdict(self.faults), "woke": woke, "trial_s": self.trial_s,
                "rtc_file": str(self.flash.parent / (self.flash.name + ".rtc.json")),
                "log_prefix": f"[{self.config.get('site')}/{self.config.get('kit')}] "}
        path = self.flash.parent / (self.flash.name + ".spec.json")
        path.write_text(json.dumps(spec))
        return path

    def _supervise(self) -> None:
        first_start = self.clock.now()
        woke = False
        with self.log_file.open("ab") as out:
            while not self._stop.is_set():
                spec = self._spec(woke, first_start)
                self._proc = subprocess.Popen([sys.executable, "-m", "firmware.sim.kitproc", str(spec)], cwd=ROOT,
                                              stdout=out, stderr=subprocess.STDOUT)
                code = self._proc.wait()
                self.exits.append(code)
                if self.on_exit is not None:
                    self.on_exit(code)
                woke = False
                if self._stop.is_set():
                    return
                if code == POWER_CUT:
                    self.faults.power_cut_after_http_bytes = None  # the power comes back, and stays
                elif code == SLEEP:
                    rtc = json.loads(Path(json.loads(spec.read_text())["rtc_file"]).read_text())
                    self.clock.sleep(rtc["sleep_ms"] / 1000, self._stop)
                    woke = True
                elif code not in (RESET, -signal.SIGKILL):
                    self.error = f"the kit's process ended with {code}: see {self.log_file}"
                    return

    def start(self) -> None:
        self._thread = threading.Thread(target=self._supervise, name=f"flashkit-{self.flash.name}", daemon=True)
        self._thread.start()

    def power_cut(self) -> None:
        """Cut the power now: the process dies with no clean-up; the supervisor powers it on again."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()

    def boots(self) -> int:
        return len(self.exits) + (1 if self._proc is not None and self._proc.poll() is None else 0)

    def stop(self, timeout_s: float = 15.0) -> None:
        self._stop.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._thread is not None:
            self._thread.join(timeout_s)


def wait_until(predicate: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())
