"""``lauks kit prepare|probe``: MicroPython onto a new ESP32, and what is wired to it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from firmware.kitconfig import KIT_TYPES


def register(commands: argparse._SubParsersAction[Any], kit_commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``lauks kit prepare`` and ``lauks kit probe``."""
    from firmware.chips import CHIPS

    prepare = kit_commands.add_parser("prepare", help="put MicroPython on a new ESP32 (esptool: erase, then write)")
    prepare.add_argument("--port", required=True, help="the kit's serial port, e.g. /dev/ttyUSB0")
    prepare.add_argument("--image", required=True, metavar="FILE|URL",
                         help="MicroPython's .bin for the chip (https://micropython.org/download/ESP32_GENERIC/)")
    prepare.add_argument("--chip", default="auto", choices=["auto", *CHIPS],
                         help="default: ask the kit (with --dry-run: the chip the image is for)")
    prepare.add_argument("--dry-run", action="store_true", help="check the image, print the esptool commands")
    prepare.set_defaults(func=_prepare)

    probe = kit_commands.add_parser("probe", help="list what a kit finds on its buses and propose its sensors")
    probe.add_argument("--port", required=True, help="the kit's serial port, e.g. /dev/ttyUSB0")
    probe.add_argument("--type", dest="kit_type", choices=list(KIT_TYPES), help="default: guessed from what is found")
    probe.add_argument("--soil-dry", type=int, metavar="N", help="the soil probe's reading in dry air")
    probe.add_argument("--soil-wet", type=int, metavar="N", help="the soil probe's reading in water")
    probe.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the kit (default 30)")
    probe.add_argument("--write", type=Path, metavar="CONFIG",
                       help="put the proposed sensors into this config.json (then 'lauks kit flash' it)")
    probe.add_argument("--json", action="store_true", help="print only the sensors block")
    probe.set_defaults(func=_probe)


def _fail(message: str) -> int:
    print(f"lauks kit: {message}", file=sys.stderr)
    return 2


def _prepare(args: argparse.Namespace) -> int:
    from firmware.provision import prepare
    from firmware.tools import ToolError

    try:
        plan = prepare(args.port, args.image, args.chip, args.dry_run)
    except ToolError as e:
        return _fail(str(e))
    image = plan.image
    what = f"MicroPython {image.version or ''} for the {plan.chip.label}".replace("  ", " ")
    if args.dry_run:
        print(f"# {image.path}: {what}, {image.size} bytes, written at 0x{plan.chip.offset:x}")
        print(plan.describe())
    else:
        print(f"{what} is on {args.port}. Next: .venv/bin/lauks kit probe --port {args.port}")
    return 0


def _probe(args: argparse.Namespace) -> int:
    from firmware.provision import probe, propose, write_sensors
    from firmware.tools import ToolError

    try:
        found = probe(args.port, args.timeout)
        proposal = propose(found, args.kit_type, args.soil_dry, args.soil_wet)
        if args.write:
            write_sensors(args.write, proposal.sensors)
    except ToolError as e:
        return _fail(str(e))
    if args.json:
        print(json.dumps(proposal.sensors, indent=2))
        return 0
    print(proposal.describe())
    for error in found.get("errors", []):
        print(f"  (the kit said: {error})")
    if args.write:
        print(f"wrote these sensors into {args.write}; next: .venv/bin/lauks kit flash --port {args.port} "
              f"--config {args.write}")
    return 0
