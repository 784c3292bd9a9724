"""``lauks api`` as a child process, ready once /v1/health answers 200; for the API's process tests and
bench.export."""

from __future__ import annotations

import contextlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from harness.process import LauksProcess


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/v1/health", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class ApiProcess(LauksProcess):
    """``lauks api`` with ``env`` (LAUKS_API_PORT must be set) as its environment; its output goes to
    ``log_path``, or to a temporary file removed when it stops."""

    def __init__(self, env: dict[str, str], log_path: Path | None = None) -> None:
        self.url = f"http://127.0.0.1:{env['LAUKS_API_PORT']}"
        self._own_log = log_path is None
        if log_path is None:
            fd, name = tempfile.mkstemp(prefix="lauks-api-", suffix=".log")
            os.close(fd)
            log_path = Path(name)
        super().__init__(["api"], env, log_path)

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        self.wait_until(lambda: _answers(self.url), timeout_s, lambda: "did not answer /v1/health")

    def stop(self, timeout_s: float = 10.0) -> int:
        try:
            return super().stop(timeout_s)
        finally:
            if self._own_log:
                with contextlib.suppress(FileNotFoundError):
                    self.log_path.unlink()


def start_api(env: dict[str, str], log_path: Path | None = None, timeout_s: float = 30.0) -> ApiProcess:
    """Start ``lauks api`` and wait for its /v1/health; use it as a context manager to stop it afterwards."""
    api = ApiProcess(env, log_path)
    try:
        api.wait_ready(timeout_s)
    except BaseException:
        api.kill()
        api.stop()
        raise
    return api
