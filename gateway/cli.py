"""``lauks gateway``: run the gateway until SIGTERM or Ctrl-C (one process, or several workers)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

from lauks.brokerauth import GATEWAY_WORKER_USERS, gateway_worker_username
from lauks.services import die_with_parent, stop_on_signals

if TYPE_CHECKING:
    from gateway.settings import GatewaySettings

log = logging.getLogger("lauks.gateway")


def register(commands: argparse._SubParsersAction[Any], kit_commands: argparse._SubParsersAction[Any]) -> None:
    """Add this part's subcommands to ``lauks`` and to ``lauks kit``."""
    gateway = commands.add_parser(
        "gateway", help="run the gateway: MQTT readings -> validation -> InfluxDB",
        description="Run the gateway. Settings come from LAUKS_* variables (see docs/gateway.md).")
    gateway.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    gateway.set_defaults(func=run_gateway)


def run_gateway(args: argparse.Namespace) -> int:
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.INFO), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request at INFO: thousands of lines a minute that hide ours.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from pydantic import ValidationError

    from gateway.settings import GatewaySettings

    try:
        settings = GatewaySettings()
    except ValidationError as error:
        print(f"lauks gateway: the settings are not valid:\n{error}", file=sys.stderr)
        return 2
    if settings.gateway_workers > 1:
        if settings.mqtt_username and settings.gateway_workers > GATEWAY_WORKER_USERS:
            print(f"lauks gateway: LAUKS_GATEWAY_WORKERS is {settings.gateway_workers}, but the broker has users "
                  f"for {GATEWAY_WORKER_USERS} workers ({gateway_worker_username(settings.mqtt_username, 0)} .. "
                  f"-w{GATEWAY_WORKER_USERS - 1}): run at most {GATEWAY_WORKER_USERS}", file=sys.stderr)
            return 2
        return supervise(settings, args.log_level)
    return asyncio.run(_main(settings))


async def _main(settings: GatewaySettings) -> int:
    from gateway.service import Gateway

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    gateway = Gateway(settings)
    await gateway.run(stop)
    return 0


def worker_env(settings: GatewaySettings, index: int) -> dict[str, str]:
    """The environment of worker ``index``: its own instance, client id, state and port; one share group; the
    rollup worker in worker 0 only.

    With a username, each worker logs in as ``<username>-w<index>`` (lauks.brokerauth makes those users,
    with the same password and rights): our brokers use the username as the client id, so workers
    sharing one user would share one session and knock each other off."""
    env = dict(os.environ)
    instance = f"{settings.gateway_instance}-w{index}"
    env.update({
        "LAUKS_GATEWAY_WORKERS": "1",
        "LAUKS_GATEWAY_INSTANCE": instance,
        "LAUKS_GATEWAY_CLIENT_ID": f"{settings.client_id}-w{index}",
        "LAUKS_GATEWAY_SHARE_GROUP": settings.gateway_share_group or "lauks-gateway",
    })
    if index > 0:
        # one rollup worker is enough: the others would recompute the same buckets (harmless, but double the work)
        env["LAUKS_GATEWAY_ROLLUPS"] = "false"
    if settings.mqtt_username:
        env["LAUKS_MQTT_USERNAME"] = gateway_worker_username(settings.mqtt_username, index)
    for name in ("GATEWAY_SPOOL_DIR", "GATEWAY_DEAD_LETTER_DIR", "GATEWAY_DEDUP_DIR"):
        if env.get(f"LAUKS_{name}"):
            env[f"LAUKS_{name}"] = f"{env[f'LAUKS_{name}']}-w{index}"
    if settings.gateway_http_port is not None:
        env["LAUKS_GATEWAY_HTTP_PORT"] = str(settings.gateway_http_port + index if settings.gateway_http_port else 0)
    return env


def supervise(settings: GatewaySettings, log_level: str) -> int:
    """Run ``gateway_workers`` gateways in one shared subscription; restart one that dies; SIGTERM stops all."""
    stopping = stop_on_signals()
    command = [sys.executable, "-m", "stack", "gateway", "--log-level", log_level]
    # Workers die with the supervisor, however it dies, so a killed supervisor leaves no orphan gateways.
    workers = [subprocess.Popen(command, env=worker_env(settings, i), preexec_fn=die_with_parent)
               for i in range(settings.gateway_workers)]
    log.info("started %d gateway workers in share group %s%s", len(workers),
             settings.gateway_share_group or "lauks-gateway",
             f", as broker users {gateway_worker_username(settings.mqtt_username, 0)} .." if settings.mqtt_username
             else "")
    while not stopping.wait(0.2):
        for index, worker in enumerate(workers):
            if worker.poll() is not None and not stopping.is_set():
                log.error("gateway worker %d exited with %s; starting it again", index, worker.returncode)
                time.sleep(1)
                workers[index] = subprocess.Popen(command, env=worker_env(settings, index), preexec_fn=die_with_parent)
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    codes = [worker.wait(60) for worker in workers]
    return 0 if all(code == 0 for code in codes) else 1
