"""One simulated kit in a process of its own, running the firmware installed in its flash folder.

What a kit does at power-on: lauks_boot.start (the boot loader, from the flash folder, as main.py calls it)
and then the firmware's Kit with a SimBoard. The process ends as the kit's power does: exit code RESET for
machine.reset() (or a simulated reboot), SLEEP for a deep sleep (the RTC memory in the rtc file), 0 when the
simulator stops it (SIGTERM). firmware/sim/flashkit.py starts it again with the same flash folder.
Run by flashkit as ``python -m firmware.sim.kitproc SPEC.json``.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from firmware.device_path import DEVICE_DIR
from lauks.services import event_on_signals

RESET, SLEEP = 3, 4


def _only_the_flash_folder(flash: Path) -> None:
    """Imports of lauks_kit and lauks_boot come from the kit's flash folder and nowhere else: the repository's
    firmware/device is marked as already on the path (so use_device_code adds nothing) with no finder."""
    sys.path.insert(0, str(flash))
    sys.path.append(str(DEVICE_DIR))
    sys.path_importer_cache[str(DEVICE_DIR)] = None  # None: no finder for it


def main(spec_file: str) -> int:
    spec: dict[str, Any] = json.loads(Path(spec_file).read_text())
    flash = Path(spec["flash"])
    _only_the_flash_folder(flash)
    from firmware.sim.world import Clock

    clock = Clock(spec["speedup"], spec["start_ago_s"], spec["real_start"])
    stop = event_on_signals(signals=(signal.SIGTERM,))  # lauks.services says why not a handler that sets it
    prefix = spec.get("log_prefix", "")

    def log(text: str) -> None:
        print(f"{prefix}{text}", flush=True)

    # the kit's own boot loader, untyped MicroPython code (pyproject's mypy overrides cover lauks_kit only)
    lauks_boot: Any = importlib.import_module("lauks_boot")

    fs = lauks_boot.Flash(str(flash))
    if spec.get("trial_s"):  # a shorter trial for tests, in world seconds
        lauks_boot.TRIAL_S = spec["trial_s"]
    rtc_file = Path(spec["rtc_file"])
    rtc: dict[str, Any] = {}
    if spec.get("woke") and rtc_file.exists():
        saved = json.loads(rtc_file.read_text())
        rtc = {k: (bytes.fromhex(v) if k == "memory" else v) for k, v in saved.items()}

    def load() -> Any:
        from lauks_kit import app

        from firmware.sim.board import Faults, SimBoard, SimDeepSleep, SimReboot, SimStop
        from firmware.sim.world import Weather

        if not str(Path(app.__file__).resolve()).startswith(str(flash.resolve())):
            raise SystemExit(f"the firmware came from {app.__file__}, not the kit's flash {flash}")
        board = SimBoard(flash, clock, Weather(spec["seed"]), stop, Faults(**spec.get("faults", {})),
                         spec["first_start"], tuple(spec["broker"]), rtc, bool(spec.get("woke")), prefix)
        board.broker_alias = (spec["broker_alias"][0], spec["broker_alias"][1])
        kit = app.Kit(board, spec["topic_root"])

        class PowerOn:
            """Kit.run, its resets and deep sleeps turned into the process's end (never a crash)."""

            def run(self) -> None:
                try:
                    kit.run()
                except SimReboot:
                    if kit.mqtt is not None:
                        kit.mqtt.close()  # no DISCONNECT: the broker publishes the last will
                    raise SystemExit(RESET) from None
                except SimDeepSleep as sleep:
                    saved = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in board.rtc.items()}
                    rtc_file.write_text(json.dumps({**saved, "sleep_ms": sleep.ms}))
                    raise SystemExit(SLEEP) from None
                except SimStop:
                    if kit.mqtt is not None:
                        kit.mqtt.close()
                    raise SystemExit(0) from None

        return PowerOn()

    def on_trial() -> None:
        def trial_over() -> None:  # lauks_boot.main's machine.Timer: not confirmed in time counts as a failed boot
            clock.sleep(lauks_boot.TRIAL_S, stop)
            if not stop.is_set() and lauks_boot.read_state(fs).get("state") == "trial":
                log("not confirmed within the trial time: reset")
                os._exit(RESET)

        threading.Thread(target=trial_over, daemon=True).start()

    _, rolled_back = lauks_boot.start(fs, load, bool(spec.get("woke")), log, on_trial)
    if not rolled_back:
        clock.sleep(30, stop)  # main.py's pause before it resets a crashed firmware
    return 0 if stop.is_set() else RESET


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
