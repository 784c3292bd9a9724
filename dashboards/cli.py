"""``lauks dashboards build``: regenerate the Grafana dashboards and alert rules from their Python definition."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(commands: argparse._SubParsersAction[Any], kit_commands: argparse._SubParsersAction[Any]) -> None:
    """Add this part's subcommands to ``lauks`` and to ``lauks kit``."""
    dashboards = commands.add_parser("dashboards", help="Grafana dashboards and alert rules")
    sub = dashboards.add_subparsers(dest="dashboards_command", metavar="DASHBOARDS_COMMAND")
    dashboards.set_defaults(func=lambda args: _usage(dashboards))
    build = sub.add_parser("build", help="regenerate dashboards/json/*.json and the alerting provisioning file")
    build.add_argument("--check", action="store_true",
                       help="change nothing; exit 1 if the committed files differ from the definition")
    build.add_argument("--root", type=Path, default=None, help="write under this folder instead of dashboards/")
    build.set_defaults(func=_build)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _build(args: argparse.Namespace) -> int:
    from dashboards import build

    root = args.root or build.ROOT
    if args.check:
        problems = build.differences(root)
        for problem in problems:
            print(problem)
        if problems:
            print("run `lauks dashboards build` and commit the result")
            return 1
        print(f"{len(build.generated(root))} generated files are up to date")
        return 0
    changed = build.build(root)
    for path in changed:
        print(f"wrote {path}")
    print(f"{len(changed)} of {len(build.generated(root))} files changed")
    return 0
