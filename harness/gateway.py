"""The gateway as a child process, started from its settings the way an operator starts it
(``lauks gateway`` with ``LAUKS_*`` variables), and ready once /healthz says it is connected to the
broker (connected means subscribed: the gateway's client sets it after the SUBACK). Used by the
tests, the firmware's end-to-end test and the benchmarks alike."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from gateway.settings import GatewaySettings
from harness.process import LauksProcess, inherited_env
from lauks.services import free_port

Health = dict[str, Any]
_SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([-+0-9.eE]+|[-+]?Inf|NaN)")


def settings_env(config: GatewaySettings) -> dict[str, str]:
    """``config`` as the ``LAUKS_*`` variables that give a gateway exactly these settings."""
    env: dict[str, str] = {}
    for name, value in config.model_dump().items():
        if value is not None:
            env[f"LAUKS_{name.upper()}"] = str(value.get_secret_value() if isinstance(value, SecretStr) else value)
    return env


def read_metrics(port: int, labelled: bool = False) -> dict[str, float]:
    """A gateway's /metrics samples by name; with ``labelled``, labelled ones too, by their full text
    (``lauks_gateway_rejections_total{reason="rate_limited"}``)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.fullmatch(line)
        if match and (labelled or not match.group(2)):
            out[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return out


def read_health(port: int) -> Health | None:
    """What a gateway's /healthz says (its JSON, whether it answers 200 or 503), None if it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return dict(json.load(response))
    except urllib.error.HTTPError as error:  # 503 while not ok, with the same JSON
        return dict(json.load(error))
    except (OSError, ValueError):
        return None


def mqtt_connected(health: Health) -> bool:
    return health.get("mqtt_connected") is True


class GatewayProcess(LauksProcess):
    """``lauks gateway`` as a child process with ``config`` in its environment, its output appended to
    ``log_path``. Several workers (``gateway_workers``) serve /healthz and /metrics on consecutive ports,
    all of which ``ports`` lists."""

    def __init__(self, config: GatewaySettings, log_path: Path, *, log_level: str | None = None,
                 env: dict[str, str] | None = None) -> None:
        if not config.gateway_http_port:  # None (off) or 0 (any port): we must know where to ask
            config = config.model_copy(update={"gateway_http_port": free_port()})
        assert config.gateway_http_port is not None
        self.config = config
        self.http_port: int = config.gateway_http_port
        self.ports = [self.http_port + index for index in range(config.gateway_workers)]
        super().__init__(["gateway", *(["--log-level", log_level] if log_level else [])],
                         {**inherited_env(), **settings_env(config), **(env or {})}, log_path)

    def health(self) -> Health | None:
        """/healthz of the first worker (of the gateway, with one)."""
        return read_health(self.http_port)

    def metrics(self, labelled: bool = False) -> dict[str, float]:
        """/metrics of every worker: counters (``*_total``) added up, gauges the highest of them."""
        if len(self.ports) == 1:
            return read_metrics(self.http_port, labelled)
        total: dict[str, float] = {}
        for port in self.ports:
            for name, value in read_metrics(port, labelled).items():
                counter = name.split("{", 1)[0].endswith("_total")
                total[name] = total.get(name, 0.0) + value if counter else max(total.get(name, value), value)
        return total

    def wait_for(self, condition: Callable[[Health], bool] = mqtt_connected, timeout_s: float = 30.0,
                 what: str = "did not connect to the broker") -> list[Health]:
        """Poll /healthz of every worker until ``condition`` holds for each; their answers. Raises
        ProcessFailed (with the log's tail) if the process exits or ``timeout_s`` passes first."""
        answers: list[Health | None] = []

        def ready() -> bool:
            answers[:] = [read_health(port) for port in self.ports]
            return all(answer is not None and condition(answer) for answer in answers)

        self.wait_until(ready, timeout_s, lambda: f"{what}: /healthz said {answers}")
        return [answer for answer in answers if answer is not None]


def start_gateway(config: GatewaySettings, log_path: Path, *, ready: Callable[[Health], bool] | None = mqtt_connected,
                  timeout_s: float = 30.0, log_level: str | None = None,
                  env: dict[str, str] | None = None) -> GatewayProcess:
    """Start a gateway and wait until every worker's /healthz satisfies ``ready`` (by default: connected to
    the broker; None: do not wait). Use it as a context manager to stop it (SIGTERM) afterwards. A gateway
    that does not become ready is killed, and ProcessFailed carries its log's tail."""
    gateway = GatewayProcess(config, log_path, log_level=log_level, env=env)
    if ready is not None:
        try:
            gateway.wait_for(ready, timeout_s)
        except BaseException:
            gateway.kill()
            raise
    return gateway
