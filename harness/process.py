"""``lauks <command>`` as a child process for the tests and the benchmarks (run as harness.command says),
its output appended to a log, dying with the process that started it, stopped with SIGTERM and a bounded
wait."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

from harness.command import ROOT, lauks_command
from lauks.services import die_with_parent


class ProcessFailed(RuntimeError):
    """The child exited, did not become ready in time, or did not stop; the message ends with its log's tail."""

    def __init__(self, message: str, process: subprocess.Popen[bytes]) -> None:
        super().__init__(message)
        self.process = process


class LauksProcess:
    """``lauks <args>`` with ``env`` as its whole environment, its output appended to ``log_path``."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = f"lauks {args[0]}"
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(lauks_command(*args), cwd=ROOT, env=env, stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            preexec_fn=die_with_parent)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, chars: int = 3000) -> str:
        return self.log_text()[-chars:]

    def failed(self, why: str) -> ProcessFailed:
        return ProcessFailed(f"{self.name}: {why}\n{self.tail()}", self.process)

    def wait_until(self, ready: Callable[[], bool], timeout_s: float, what: Callable[[], str]) -> None:
        """Poll ``ready`` until true; ProcessFailed if the child exits or ``timeout_s`` passes first (with
        ``what()``: what it said last)."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                raise self.failed(f"exited with {self.process.returncode}:")
            if ready():
                return
            if time.monotonic() > deadline:
                raise self.failed(f"{what()} (waited {timeout_s:g} s)")
            time.sleep(0.05)

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM, and its exit code; killed (and ProcessFailed) if it has not exited in ``timeout_s``."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise self.failed(f"did not exit within {timeout_s:g} s of SIGTERM (killed)") from None

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would: nothing is flushed."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self.process.poll() is None:
            try:
                self.stop()
            except ProcessFailed:
                if kind is None:
                    raise


def inherited_env() -> dict[str, str]:
    """This process's environment without its ``LAUKS_*`` variables: a child's settings are the ones it is
    given, whatever the shell that runs the tests or the benchmarks has set."""
    return {name: value for name, value in os.environ.items() if not name.startswith("LAUKS_")}
