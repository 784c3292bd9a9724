"""A supervisor stops on SIGTERM: the event is set by a thread, never by the handler (lauks.services says why)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

CHILD = """
import sys, time
from lauks.services import stop_on_signals
stopping = stop_on_signals()
print("ready", flush=True)
began = time.monotonic()
while not stopping.wait(0.0001):  # the main thread inside Event.wait nearly all the time, as a supervisor is
    if time.monotonic() - began > 20:
        sys.exit(3)
sys.exit(0)
"""


def test_sigterm_sets_the_stop_event_of_a_supervisor_waiting_on_it() -> None:
    for _ in range(5):
        child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        time.sleep(0.05)
        sent = time.monotonic()
        child.send_signal(signal.SIGTERM)
        assert child.wait(10) == 0
        assert time.monotonic() - sent < 2


def test_the_handler_sets_no_lock() -> None:
    # the handler only notes the signal; Event.set (which takes the event's lock) runs on the watcher thread
    from lauks import services

    source = services.event_on_signals.__code__.co_consts
    handler = next(c for c in source if getattr(c, "co_name", "") == "_note")
    assert "set" not in handler.co_names, handler.co_names
