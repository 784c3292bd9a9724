"""``lauks kit prepare|probe`` parsed and run as the ``lauks`` command does (stack/cli.py), with only this
part's commands registered, so these tests do not depend on the other parts' imports."""

from __future__ import annotations

import argparse

from firmware import provision_cli


def lauks(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lauks")
    commands = parser.add_subparsers(dest="command")
    kit_commands = commands.add_parser("kit").add_subparsers(dest="kit_command")
    provision_cli.register(commands, kit_commands)
    args = parser.parse_args(argv)
    return int(args.func(args))
