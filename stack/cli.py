"""The ``lauks`` command. Each part of the platform adds its own subcommands through ``register``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import alerting.cli
import api.calibrate_cli
import api.cli
import dashboards.cli
import firmware.cli
import firmware.provision_cli
import gateway.cli
import gateway.rollups_cli
import lauks.brokerauth_cli
import lauks.fleet_cli
from lauks.stack import follow_running_stack

# Each has ``register(commands, kit_commands)`` adding subparsers that set ``func`` (taking the parsed
# args, returning an exit code).
COMMAND_MODULES = (gateway.cli, api.cli, api.calibrate_cli, firmware.cli, dashboards.cli, lauks.brokerauth_cli,
                   gateway.rollups_cli, firmware.provision_cli, alerting.cli, lauks.fleet_cli)


def build_parser() -> tuple[argparse.ArgumentParser, set[str]]:
    parser = argparse.ArgumentParser(prog="lauks", description="Lauks: sensor kits, gateway and datasets for schools")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    up = commands.add_parser("up", help="run the whole stack locally (broker, InfluxDB, services, simulated kits)")
    up.add_argument("--state-dir", type=Path, default=Path(".lauks"), help="where the stack keeps its state")
    up.add_argument("--kits", type=int, default=3, help="how many simulated kits to start")
    up.set_defaults(func=_up)

    kit = commands.add_parser("kit", help="add, flash, simulate and revoke sensor kits")
    kit_commands = kit.add_subparsers(dest="kit_command", metavar="KIT_COMMAND")
    kit.set_defaults(func=lambda args: _usage(kit))

    for module in COMMAND_MODULES:
        module.register(commands, kit_commands)

    available = set(commands.choices) | {f"kit {name}" for name in kit_commands.choices}
    return parser, available


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _up(args: argparse.Namespace) -> int:
    from stack.up import up

    _, available = build_parser()
    return up(args.state_dir, available, kits=args.kits)


def main(argv: Sequence[str] | None = None) -> int:
    parser, _ = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    # `lauks up` writes the stack's description; every other command follows it (and the processes it
    # starts do too). Undone afterwards for a caller in this process, such as a test.
    followed = follow_running_stack(os.environ) if args.command != "up" else {}
    try:
        return int(args.func(args) or 0)
    finally:
        for key in followed:
            os.environ.pop(key, None)


if __name__ == "__main__":
    sys.exit(main())
