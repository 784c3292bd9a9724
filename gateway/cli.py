"""``lauks gateway``: run the gateway until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any


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
    logging.getLogger("gmqtt").setLevel(logging.WARNING)
    from pydantic import ValidationError

    from gateway.settings import GatewaySettings

    try:
        settings = GatewaySettings()
    except ValidationError as error:
        print(f"lauks gateway: the settings are not valid:\n{error}", file=sys.stderr)
        return 2
    return asyncio.run(_main(settings))


async def _main(settings: Any) -> int:
    from gateway.service import Gateway

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    gateway = Gateway(settings)
    await gateway.run(stop)
    return 0
