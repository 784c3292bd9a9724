"""Commands of calibrations: ``lauks kit calibrate|calibrations`` and ``lauks calibrate end|delete|colocate``.

Times are read as the API reads them (``api.query.parse_time``), in the site's time zone unless they have an
offset. Every refusal is a sentence on stderr and exit status 1, with nothing stored.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from sqlalchemy.orm import Session

    from api.colocate import KitRef
    from lauks.calibration import Calibration, Fit

# The imports below are made where they are needed: every `lauks` command imports this module.


class Refused(Exception):
    """A command's input refused before the store is touched; the message says what to change."""


def _run(action: Callable[[Session, argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A command on the store that the settings name, printing refusals of the store, of a time or of a fit."""

    def handler(args: argparse.Namespace) -> int:
        from api.errors import ApiError
        from lauks.influx import InfluxError
        from metastore.db import one_session
        from metastore.errors import StoreError
        from metastore.settings import StoreSettings

        try:
            with one_session(StoreSettings().database_url) as session:
                return action(session, args)
        except (StoreError, ApiError) as error:
            print(f"lauks: {error.message}", file=sys.stderr)
        except Refused as error:
            print(f"lauks: {error}", file=sys.stderr)
        except InfluxError as error:
            print(f"lauks: the readings store did not answer ({error}); nothing was stored", file=sys.stderr)
        return 1

    return handler


def _zone(session: Session, site: str) -> ZoneInfo:
    from api.query import parse_zone
    from api.settings import ApiSettings
    from metastore import registry

    return parse_zone(registry.get_site(session, site).timezone or ApiSettings().api_timezone)


def _time(text: str | None, zone: ZoneInfo, *, is_end: bool, what: str) -> datetime | None:
    from api.query import parse_time

    return parse_time(text, zone, is_end=is_end, what=what) if text is not None else None


def _shown(moment: datetime | None, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M}" if moment is not None else "…"


def _line(calibration: Calibration, zone: ZoneInfo) -> str:
    c = calibration
    return (f"{c.id}\t{c.kit}\t{c.quantity}\tgain {c.gain:g}\toffset {c.offset:+g}\t"
            f"{_shown(c.valid_from, zone)} .. {_shown(c.valid_to, zone)} {zone.key}\t{c.reason}\t({c.created_by})")


def _calibrate(session: Session, args: argparse.Namespace) -> int:
    from metastore import registry

    if args.offset is None and args.gain is None:
        raise Refused("give --offset, --gain or both (calibrated = gain × raw + offset), e.g. --offset -0.4")
    zone = _zone(session, args.site)
    valid_from = _time(args.valid_from, zone, is_end=False, what="--from")
    assert valid_from is not None
    added, ended = registry.add_calibration(
        session, args.site, args.kit, args.quantity, offset=0.0 if args.offset is None else args.offset,
        gain=1.0 if args.gain is None else args.gain, valid_from=valid_from,
        valid_to=_time(args.valid_to, zone, is_end=True, what="--to"), reason=args.reason,
        created_by=args.by or getpass.getuser())
    if ended is not None:
        print(f"ended calibration {ended.id} ({ended.kit} {ended.quantity}, gain {ended.gain:g}, offset "
              f"{ended.offset:+g}) at {_shown(ended.valid_to, zone)}: the new one replaces it from then on")
    print(f"added calibration {added.id}: {_line(added, zone)}")
    return 0


def _calibrations(session: Session, args: argparse.Namespace) -> int:
    from metastore import registry

    zone = _zone(session, args.site)
    for calibration in registry.list_calibrations(session, args.site, args.kit, args.quantity):
        print(_line(calibration, zone))
    return 0


def _end(session: Session, args: argparse.Namespace) -> int:
    from metastore import registry

    row = registry.get_calibration(session, args.id)
    zone = _zone(session, row.site)
    changes: dict[str, Any] = {"valid_to": _time(args.valid_to, zone, is_end=True, what="--to")}
    if args.reason is not None:
        changes["reason"] = args.reason
    ended = registry.edit_calibration(session, args.id, **changes)
    print(f"calibration {ended.id} of {ended.site}/{ended.kit} {ended.quantity} now ends at "
          f"{_shown(ended.valid_to, zone)} {zone.key}")
    return 0


def _delete(session: Session, args: argparse.Namespace) -> int:
    from metastore import registry

    gone = registry.delete_calibration(session, args.id)
    print(f"deleted calibration {gone.id} of {gone.site}/{gone.kit} {gone.quantity}: its readings are read as "
          "measured again")
    return 0


# --- co-location ------------------------------------------------------------------------------------------


def _kit_ref(text: str, default_site: str | None) -> KitRef:
    from api.colocate import KitRef
    from lauks.topics import is_valid_id

    site, _, kit = text.strip().rpartition("/")
    site = site or default_site or ""
    if not is_valid_id(site) or not is_valid_id(kit):
        raise Refused(f"{text.strip()[:70]!r} is not a kit: write <site>/<kit> (e.g. riga-3/ref), or for --kits a kit "
                      "of the reference's site")
    return KitRef(site, kit)


def _fit_line(kit: KitRef, fit: Fit, unit: str, every: str) -> str:
    sign = "+" if fit.offset >= 0 else "-"
    return (f"{kit}: reference = {fit.gain:.5g} × {kit.kit} {sign} {abs(fit.offset):.4g} {unit}".rstrip()
            + f"; R² {fit.r_squared:.4f}, residuals RMS {fit.residual_rms:.3g} {unit}, max {fit.residual_max:.3g} "
              f"{unit}, {fit.pairs} pairs of {every} means")


def _colocate(session: Session, args: argparse.Namespace) -> int:
    from api import colocate
    from api.query import parse_every
    from api.settings import ApiSettings
    from lauks.calibration import FitRefused, bucket_pairs, fit, quantity_problem
    from lauks.catalog import CATALOG
    from metastore import registry

    reference = _kit_ref(args.reference, None)
    kits = list(dict.fromkeys(_kit_ref(name, reference.site) for name in args.kits.split(",") if name.strip()))
    if not kits:
        raise Refused("name the kits to fit with --kits, e.g. --kits k1,k2")
    if reference in kits:
        raise Refused(f"{reference} is the reference: it cannot be fitted against itself")
    problem = quantity_problem(args.quantity)
    if problem is not None:
        raise Refused(problem.message)
    for kit in (reference, *kits):
        registry.get_kit(session, kit.site, kit.kit)
    zone = _zone(session, reference.site)
    start = _time(args.start, zone, is_end=False, what="--start")
    end = _time(args.end, zone, is_end=True, what="--end")
    assert start is not None and end is not None
    if end <= start:
        raise Refused(f"the window ends ({_shown(end, zone)}) before it starts ({_shown(start, zone)}): swap "
                      "--start and --end")
    every_s = parse_every(args.every)
    own = registry.calibrations_for(session, reference.site, [reference.kit], [args.quantity], start, end)
    settings = ApiSettings()

    async def read() -> dict[KitRef, dict[int, float]]:
        async with settings.influx_client() as client:
            return await colocate.bucket_means(client, settings.influx_database, [reference, *kits], args.quantity,
                                               start, end, every_s, zone)

    means = asyncio.run(read())
    truth = colocate.calibrated(means[reference], own, reference.kit, args.quantity)
    if not truth:
        raise Refused(f"the reference {reference} has no {args.quantity} from {_shown(start, zone)} to "
                      f"{_shown(end, zone)} {zone.key}: check the window and the kit; nothing was stored")
    unit = CATALOG[args.quantity].unit
    fits: dict[KitRef, Fit] = {}
    refused = 0
    for kit in kits:
        try:
            fits[kit] = fit(bucket_pairs(means[kit], truth))
        except FitRefused as error:
            refused += 1
            print(f"lauks: {kit}: {error.message} ({kit.kit} has {args.quantity} in {len(means[kit])} of the "
                  f"buckets, the reference in {len(truth)})", file=sys.stderr)
            continue
        print(_fit_line(kit, fits[kit], unit, args.every))
    if not args.apply:
        return 1 if refused else 0
    if refused:
        print("lauks: nothing was stored: every kit needs a fit for --apply (leave out the kits that have none)",
              file=sys.stderr)
        return 1
    window = f"{_shown(start, zone)}..{_shown(end, zone)} {zone.key}"
    reasons = {kit: f"co-location with {reference} {window}, R² {f.r_squared:.4f}, {f.pairs} pairs of "
                    f"{args.every} means" for kit, f in fits.items()}
    for kit, f in fits.items():  # all checked before any is stored: a refusal leaves none
        registry.check_new_calibration(session, kit.site, kit.kit, args.quantity, offset=f.offset, gain=f.gain,
                                       valid_from=start, reason=reasons[kit])
    for kit, f in fits.items():
        added, ended = registry.add_calibration(session, kit.site, kit.kit, args.quantity, offset=f.offset,
                                                gain=f.gain, valid_from=start, reason=reasons[kit],
                                                created_by=args.by or getpass.getuser())
        if ended is not None:
            print(f"ended calibration {ended.id} of {kit} at {_shown(start, zone)}")
        print(f"stored calibration {added.id} of {kit} {args.quantity} from {_shown(start, zone)} {zone.key}")
    return 0


def register(commands: argparse._SubParsersAction[Any], kit_commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``lauks kit calibrate``, ``lauks kit calibrations`` and ``lauks calibrate ...``."""
    times = "a date (YYYY-MM-DD, the site's local midnight; an end date is included) or an ISO 8601 time"
    calibrate = kit_commands.add_parser(
        "calibrate", help="add a calibration of one quantity of a kit: calibrated = gain × raw + offset",
        description="Applied when data is read; the stored readings stay as measured. Without --to, a calibration "
                    "of the quantity in force since before --from is ended at --from (this one replaces it).")
    calibrate.add_argument("site")
    calibrate.add_argument("kit")
    calibrate.add_argument("quantity", help="a catalog quantity, e.g. temperature")
    calibrate.add_argument("--offset", type=float, help="added after the gain, in the quantity's unit (default 0)")
    calibrate.add_argument("--gain", type=float, help="above 0 (default 1)")
    calibrate.add_argument("--from", dest="valid_from", required=True, help=times)
    calibrate.add_argument("--to", dest="valid_to", help=times + "; left out: in force until ended")
    calibrate.add_argument("--reason", required=True, help="why, e.g. 'co-location with riga-3/ref, 3 March'")
    calibrate.add_argument("--by", help="who (default: your login name)")
    calibrate.set_defaults(func=_run(_calibrate))

    listing = kit_commands.add_parser("calibrations", help="list the calibrations of a site or of one kit")
    listing.add_argument("site")
    listing.add_argument("kit", nargs="?")
    listing.add_argument("--quantity")
    listing.set_defaults(func=_run(_calibrations))

    group = commands.add_parser("calibrate", help="end or delete calibrations, fit them by co-location")
    group_commands = group.add_subparsers(dest="calibrate_command", metavar="CALIBRATE_COMMAND", required=True)
    end = group_commands.add_parser("end", help="end a calibration (it still applies to the readings before)")
    end.add_argument("id", type=int, help="its number, as `lauks kit calibrations` shows it")
    end.add_argument("--to", dest="valid_to", required=True, help=times)
    end.add_argument("--reason", help="a corrected reason")
    end.set_defaults(func=_run(_end))
    delete = group_commands.add_parser("delete", help="delete a calibration made by mistake")
    delete.add_argument("id", type=int, help="its number, as `lauks kit calibrations` shows it")
    delete.set_defaults(func=_run(_delete))

    colocate = group_commands.add_parser(
        "colocate", help="fit gain and offset of kits beside a reference kit by least squares",
        description="Pairs are the buckets (--every) where the reference and the kit both have data; the fit is "
                    "reference = gain × kit + offset on the kit's raw values. Fewer than 30 pairs are refused.")
    colocate.add_argument("--reference", required=True, help="<site>/<kit>, e.g. riga-3/ref")
    colocate.add_argument("--kits", required=True, help="k1,k2 (kits of the reference's site) or <site>/<kit>,...")
    colocate.add_argument("--quantity", required=True)
    colocate.add_argument("--start", required=True, help=times)
    colocate.add_argument("--end", required=True, help=times)
    colocate.add_argument("--every", default="10m", help="bucket of the means paired (default 10m)")
    colocate.add_argument("--apply", action="store_true", help="store each fit as a calibration from --start")
    colocate.add_argument("--by", help="who (default: your login name)")
    colocate.set_defaults(func=_run(_colocate))
