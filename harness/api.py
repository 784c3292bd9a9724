"""``lauks api`` as a child process, ready once /v1/health answers 200; for the API's process tests and
bench.export."""

from __future__ import annotations

import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from types import TracebackType
from typing import Self

from harness.command import ROOT, lauks_command


class ApiFailed(RuntimeError):
    """The API exited, or did not answer in time; the message ends with its output's tail."""


class ApiProcess:
    """``lauks api`` with ``env`` (LAUKS_API_PORT must be set), its output kept in a temporary file."""

    def __init__(self, env: dict[str, str]) -> None:
        self.url = f"http://127.0.0.1:{env['LAUKS_API_PORT']}"
        self._output = tempfile.TemporaryFile()
        self.process = subprocess.Popen(lauks_command("api"), env=env, cwd=ROOT, stdout=self._output,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self, chars: int = 3000) -> str:
        self._output.seek(0)
        return self._output.read().decode(errors="replace")[-chars:]

    def wait_ready(self, timeout_s: float = 30.0) -> Self:
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                raise ApiFailed(f"lauks api exited with {self.process.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/v1/health", timeout=1) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise ApiFailed(f"lauks api did not answer within {timeout_s:g} s:\n{self.tail()}")
            time.sleep(0.05)

    def stop(self, timeout_s: float = 10.0) -> int:
        """SIGTERM and its exit code; killed if it has not exited in ``timeout_s``."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(10)
        finally:
            self._output.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


def start_api(env: dict[str, str], timeout_s: float = 30.0) -> ApiProcess:
    """Start ``lauks api`` and wait for its /v1/health; use it as a context manager to stop it afterwards."""
    api = ApiProcess(env)
    try:
        return api.wait_ready(timeout_s)
    except BaseException:
        api.stop()
        raise
