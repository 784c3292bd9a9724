"""Sites, kits, staff tokens and class datasets in the relational store: used by the routes and the CLI.

Every function takes a SQLAlchemy ``Session`` and raises a ``metastore.errors.StoreError`` with a sentence a
person can act on; what it means in HTTP is the API's business. ``register_kit`` is the plain entry point
for ``lauks kit add``. Values are checked here, whoever sends them (the API's schemas check most of them
before, the command line does not), so that SQLite and PostgreSQL take and refuse the same.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NotRequired, TypedDict, TypeVar, Unpack

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lauks.calibration import Calibration, quantity_problem, values_problem, windows_overlap
from lauks.topics import id_problem, is_valid_id
from lauks.zones import zone_problem
from metastore import sharecode
from metastore.db import Base, CalibrationRow, Dataset, Kit, Site, StaffToken, now, one_session
from metastore.errors import Conflict, Gone, Invalid, NotFound, Required
from metastore.location import PRECISIONS
from metastore.settings import StoreSettings


class Location(TypedDict, total=False):
    """None clears a coordinate."""

    latitude: float | None
    longitude: float | None
    elevation_m: float | None


class SiteFields(Location, total=False):
    """What can be set on a site; None clears a description or the time zone. A title cannot be None."""

    title: str
    description: str | None
    timezone: str | None


class KitMetadata(Location, total=False):
    """What ``register_kit`` records beside the kit's type."""

    description: str | None
    deployed_since: datetime | None


class KitFields(KitMetadata, total=False):
    """What can be set on a kit. A kit type cannot be None, nor its location precision ('exact' or 'blurred',
    ``metastore.location``; a new kit is 'blurred')."""

    kit_type: str
    location_precision: str


class NewDataset(TypedDict):
    """A class dataset as staff publish it; the store gives it its share code and creation time."""

    title: str
    site: str
    kits: list[str]
    quantities: list[str]
    start: datetime
    end: datetime
    timezone: str
    description: NotRequired[str]
    licence: NotRequired[str]
    every: NotRequired[str | None]
    agg: NotRequired[str | None]
    created_by: NotRequired[str]
    expires_at: NotRequired[datetime | None]
    rolling_days: NotRequired[int | None]  # the last N days up to now; start and end then hold the first window


class DatasetFields(TypedDict, total=False):
    """What can be edited on a published dataset; None clears the description, or makes the code never expire.
    Its selection (site, kits, quantities, a fixed window) stays: pupils may have downloaded it already. A
    rolling dataset's ``rolling_days`` can change (it is live anyway); it cannot be None."""

    title: str
    description: str | None
    expires_at: datetime | None
    rolling_days: int


SITE_FIELDS = tuple(SiteFields.__annotations__)
KIT_FIELDS = tuple(KitFields.__annotations__)
DATASET_FIELDS = tuple(DatasetFields.__annotations__)
# Text columns that are NOT NULL: None clears them to "" (a description), or is refused (a title, a type).
CLEARED = {"description": ""}
REQUIRED = ("title", "kit_type", "location_precision", "rolling_days")
ROLLING_DAYS = (1, 366)  # a day to a (leap) year: longer windows are fixed datasets or /v1 readings
_Named = TypeVar("_Named", Site, Kit)
RANGES = {"latitude": (-90.0, 90.0), "longitude": (-180.0, 180.0), "elevation_m": (-500.0, 9000.0)}


def _check_id(what: str, name: str) -> None:
    problem = id_problem(what, name)
    if problem:
        raise Invalid(f"bad_{what}_name", problem)


def _check_zone(name: str | None) -> None:
    problem = zone_problem(name) if name is not None else None
    if problem:
        raise Invalid("bad_timezone", problem)


def _check_value(row_type: type[Base], key: str, value: object) -> None:
    """What a column cannot hold, refused with a sentence on both stores: PostgreSQL would fail on a NUL or on
    text longer than its column, SQLite would keep either; a time without a zone is no time at all."""
    if key == "location_precision" and value not in PRECISIONS:
        raise Invalid("bad_location_precision", f"location_precision must be 'exact' or 'blurred', not "
                                                f"{str(value)[:20]!r}")
    if isinstance(value, str):
        if "\x00" in value:
            raise Invalid("bad_text", f"{key} holds a NUL character (\\x00), which the store cannot keep: remove it")
        length = getattr(row_type.__table__.c[key].type, "length", None)
        if length is not None and len(value) > length:
            raise Invalid("too_long", f"{key} may be at most {length} characters; this one has {len(value)}")
    elif isinstance(value, datetime) and value.tzinfo is None:
        raise Invalid("bad_time", f"{key} {value.isoformat()} has no offset: give it like 2025-03-01T09:00+02:00")
    elif key == "rolling_days" and value is not None:
        fewest, most = ROLLING_DAYS
        if isinstance(value, bool) or not isinstance(value, int) or not fewest <= value <= most:
            raise Invalid("bad_rolling_days", f"rolling_days must be a whole number of days from {fewest} to {most} "
                                              f"(the last N days up to now), not {value!r}")
    elif isinstance(value, int | float) and key in RANGES:
        low, high = RANGES[key]
        if math.isnan(value) or not low <= value <= high:
            raise Invalid("bad_location", f"{key} must be between {low:g} and {high:g}, not {value}")


def _apply(row: Site | Kit | Dataset, changes: Mapping[str, object], allowed: tuple[str, ...]) -> None:
    for key, value in changes.items():
        if key not in allowed:
            raise Invalid("bad_field", f"{key!r} cannot be set here; the fields are {', '.join(allowed)}")
        if value is None and key in REQUIRED:
            raise Required(f"{key} cannot be null: send the new {key.replace('_', ' ')}, or leave it out to keep it")
        if value is None and key in CLEARED:
            value = CLEARED[key]
        _check_value(type(row), key, value)
        setattr(row, key, value)


def _commit_new(session: Session, conflict: Conflict) -> None:
    """Commit a new row; another writer (an API replica, a command) may have added the same one meanwhile."""
    try:
        session.commit()
    except IntegrityError as error:
        session.rollback()
        raise conflict from error


# --- sites ----------------------------------------------------------------------------------------


def get_site(session: Session, name: str) -> Site:
    # A name that could never have been added is not looked up (PostgreSQL refuses a NUL in a query).
    site = session.get(Site, name) if is_valid_id(name) else None
    if site is None:
        raise NotFound("site", f"there is no site {name[:64]!r}; the sites are listed at /v1/sites")
    return site


def by_name(rows: Iterable[_Named]) -> list[_Named]:
    """In the order of their names' characters: a PostgreSQL server's collation (en_US, lv_LV) would ignore the
    '-' in names and SQLite's would not, so the order is not left to the store."""
    return sorted(rows, key=lambda row: row.name)


def list_sites(session: Session, *, include_retired: bool = False) -> list[Site]:
    statement = select(Site)
    if not include_retired:
        statement = statement.where(Site.retired_at.is_(None))
    return by_name(session.scalars(statement))


def add_site(session: Session, name: str, **fields: Unpack[SiteFields]) -> Site:
    _check_id("site", name)
    _check_zone(fields.get("timezone"))
    exists = Conflict("site_exists", f"site {name!r} exists already; edit it instead")
    if session.get(Site, name) is not None:
        raise exists
    changes = dict(fields)
    site = Site(name=name, title=changes.pop("title", None) or name, description="")
    _check_value(Site, "title", site.title)
    _apply(site, changes, SITE_FIELDS)
    session.add(site)
    _commit_new(session, exists)
    return site


def edit_site(session: Session, name: str, **changes: Unpack[SiteFields]) -> Site:
    site = get_site(session, name)
    _check_zone(changes.get("timezone"))
    _apply(site, changes, SITE_FIELDS)
    session.commit()
    return site


def retire_site(session: Session, name: str) -> Site:
    """Retired sites leave the lists; their data and datasets stay readable."""
    site = get_site(session, name)
    site.retired_at = site.retired_at or now()
    session.commit()
    return site


# --- kits -----------------------------------------------------------------------------------------


def get_kit(session: Session, site: str, name: str) -> Kit:
    kit = session.get(Kit, (site, name)) if is_valid_id(site) and is_valid_id(name) else None
    if kit is None:
        raise NotFound("kit", f"site {site[:64]!r} has no kit {name[:64]!r}; its kits are listed at "
                              f"/v1/sites/{site[:64]}/kits")
    return kit


def list_kits(session: Session, site: str, *, include_retired: bool = False) -> list[Kit]:
    get_site(session, site)
    statement = select(Kit).where(Kit.site == site)
    if not include_retired:
        statement = statement.where(Kit.retired_at.is_(None))
    return by_name(session.scalars(statement))


def add_kit(session: Session, site: str, name: str, **fields: Unpack[KitFields]) -> Kit:
    get_site(session, site)
    _check_id("kit", name)
    exists = Conflict("kit_exists", f"site {site!r} has a kit {name!r} already; edit it instead")
    if session.get(Kit, (site, name)) is not None:
        raise exists
    changes = dict(fields)
    kit = Kit(site=site, name=name, kit_type=changes.pop("kit_type", None) or "weather", description="")
    _check_value(Kit, "kit_type", kit.kit_type)
    _apply(kit, changes, KIT_FIELDS)
    session.add(kit)
    _commit_new(session, exists)
    return kit


def edit_kit(session: Session, site: str, name: str, **changes: Unpack[KitFields]) -> Kit:
    kit = get_kit(session, site, name)
    _apply(kit, changes, KIT_FIELDS)
    session.commit()
    return kit


def retire_kit(session: Session, site: str, name: str) -> Kit:
    kit = get_kit(session, site, name)
    kit.retired_at = kit.retired_at or now()
    session.commit()
    return kit


def check_kits(session: Session, site: str, names: list[str]) -> list[str]:
    """The named kits (all of the site's, retired included, if none are named), each checked to exist."""
    known = {k.name for k in list_kits(session, site, include_retired=True)}
    if not names:
        return sorted(known)
    unknown = [n for n in names if n not in known]
    if unknown:
        listed = ", ".join(sorted(known)) or "none yet"
        raise NotFound("kit", f"site {site!r} has no kit {', '.join(repr(u) for u in unknown)}; its kits are: "
                              f"{listed}")
    return names


def register_kit(site: str, kit: str, kit_type: str, *, state_dir: Path | None = None,
                 **metadata: Unpack[KitMetadata]) -> None:
    """Record a kit (and its site, if new) in the store of the default settings, or of the stack whose state is
    in ``state_dir``; edits it if it exists."""
    settings = StoreSettings() if state_dir is None else StoreSettings(state_dir=state_dir)
    with one_session(settings.database_url) as session:
        if session.get(Site, site) is None:
            add_site(session, site)
        if session.get(Kit, (site, kit)) is None:
            add_kit(session, site, kit, kit_type=kit_type, **metadata)
        else:
            edit_kit(session, site, kit, kit_type=kit_type, **metadata)


# --- staff tokens ---------------------------------------------------------------------------------


def token_hash(token: str) -> str:
    # Tokens are 256 random bits, so a plain SHA-256 is enough to make the stored value useless to a thief.
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, name: str) -> str:
    """A new staff token; only its hash is stored, so this is the one time it can be shown."""
    if not name.strip():
        raise Invalid("bad_token_name", "give the token a name saying whose it is, e.g. --name 'Ms Ozola'")
    _check_value(StaffToken, "name", name.strip())
    token = "lauks_" + secrets.token_urlsafe(32)
    session.add(StaffToken(name=name.strip(), token_hash=token_hash(token)))
    session.commit()
    return token


def staff_for(session: Session, token: str) -> StaffToken | None:
    if not token.startswith("lauks_") or len(token) > 100:
        return None
    row = session.scalar(select(StaffToken).where(StaffToken.token_hash == token_hash(token)))
    return row if row is not None and row.revoked_at is None else None


def list_tokens(session: Session, *, include_revoked: bool = False) -> list[StaffToken]:
    statement = select(StaffToken).order_by(StaffToken.id)
    if not include_revoked:
        statement = statement.where(StaffToken.revoked_at.is_(None))
    return list(session.scalars(statement))


def revoke_token(session: Session, token_id: int) -> StaffToken:
    """From now on the token is refused, by every API process that uses this store."""
    row = session.get(StaffToken, token_id)
    if row is None:
        raise NotFound("token", f"there is no staff token {token_id}; `lauks token list` shows them")
    row.revoked_at = row.revoked_at or now()
    session.commit()
    return row


# --- class datasets -------------------------------------------------------------------------------


def _check_expiry(expires_at: datetime | None) -> None:
    """A code that would expire before it is given out is a mistake, not a dataset (None: it never expires)."""
    if expires_at is not None and expires_at.tzinfo is not None and expires_at <= now():
        raise Invalid("expiry_in_past", f"expires_at {expires_at:%Y-%m-%d %H:%M} UTC is in the past: give a time "
                                        "to come, or null for a code that never expires")


def add_dataset(session: Session, **fields: Unpack[NewDataset]) -> Dataset:
    get_site(session, fields["site"])
    for key, value in fields.items():
        _check_value(Dataset, key, value)
    _check_expiry(fields.get("expires_at"))
    for _ in range(10):
        code = sharecode.new_code()
        if session.get(Dataset, code) is None:
            break
    dataset = Dataset(code=code, **fields)
    session.add(dataset)
    session.commit()
    return dataset


def list_datasets(session: Session, *, created_by: str | None = None) -> list[Dataset]:
    """Every dataset, oldest first; with ``created_by``, only those published with that staff token's name."""
    statement = select(Dataset).order_by(Dataset.created_at)
    if created_by is not None:
        statement = statement.where(Dataset.created_by == created_by)
    return list(session.scalars(statement))


def get_dataset(session: Session, typed: str) -> Dataset:
    """The dataset of a typed code, expired or not (staff may extend or delete an expired one)."""
    code = sharecode.normalise(typed)
    dataset = session.get(Dataset, code) if code else None
    if dataset is None:
        raise NotFound("code", f"no class dataset has the code {typed[:40]!r}: check it for typos (it looks like "
                               "4KTW-9ACE: letters and digits, no O, I or L)")
    return dataset


def dataset_by_code(session: Session, typed: str) -> Dataset:
    dataset = get_dataset(session, typed)
    if dataset.expires_at is not None and dataset.expires_at <= now():
        raise Gone("code_expired", f"the code {sharecode.display(dataset.code)} expired on "
                                   f"{dataset.expires_at:%Y-%m-%d}: ask your teacher for a new one")
    return dataset


def edit_dataset(session: Session, typed: str, **changes: Unpack[DatasetFields]) -> Dataset:
    """Retitle, redescribe, or move the expiry (a later one brings an expired code back; None: never)."""
    dataset = get_dataset(session, typed)
    if "expires_at" in changes:
        _check_value(Dataset, "expires_at", changes["expires_at"])
        _check_expiry(changes["expires_at"])
    if "rolling_days" in changes and dataset.rolling_days is None:
        raise Invalid("fixed_window", f"dataset {sharecode.display(dataset.code)} has a fixed window, which stays "
                                      "as published (pupils may have its files): publish a rolling dataset instead")
    _apply(dataset, changes, DATASET_FIELDS)
    days = changes.get("rolling_days")
    if days is not None:  # the stored window follows, as if it had been published now
        dataset.end = now()
        dataset.start = dataset.end - timedelta(days=days)
    session.commit()
    return dataset


def delete_dataset(session: Session, typed: str) -> str:
    """Remove the dataset; its code then answers as one never given. Returns the stored code, whose frozen files
    the caller removes (the store knows nothing of files)."""
    dataset = get_dataset(session, typed)
    code = dataset.code
    session.delete(dataset)
    session.commit()
    return code


# --- calibrations ---------------------------------------------------------------------------------


class CalibrationFields(TypedDict, total=False):
    """What can change on a stored calibration: its end (None: in force again) and its reason. Its gain, offset
    and start stay, as data already read with it had them: a different calibration is a new one (a mistaken one
    is deleted)."""

    valid_to: datetime | None
    reason: str


CALIBRATION_FIELDS = tuple(CalibrationFields.__annotations__)


def _pure(row: CalibrationRow) -> Calibration:
    return Calibration(id=row.id, site=row.site, kit=row.kit, quantity=row.quantity, offset=row.offset,
                       gain=row.gain, valid_from=row.valid_from, valid_to=row.valid_to, reason=row.reason,
                       created_by=row.created_by, created_at=row.created_at)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def _shown_window(start: datetime, end: datetime | None) -> str:
    return f"from {start:%Y-%m-%d %H:%M} UTC " + (f"to {end:%Y-%m-%d %H:%M} UTC" if end else "on (still in force)")


def _check_quantity(quantity: str) -> None:
    problem = quantity_problem(quantity)
    if problem is not None:
        raise (NotFound("quantity", problem.message) if problem.code == "unknown_quantity"
               else Invalid(problem.code, problem.message))


def _check_calibration(quantity: str, offset: float, gain: float, valid_from: datetime,
                       valid_to: datetime | None, reason: str) -> None:
    _check_quantity(quantity)
    problem = values_problem(offset, gain, valid_from, valid_to)
    if problem is not None:
        raise Invalid(problem.code, problem.message)
    if not reason.strip():
        raise Invalid("no_reason", "say why, e.g. --reason 'co-location with the school's reference kit, 3 March': "
                                   "the reason goes with every dataset that uses the calibration")
    _check_value(CalibrationRow, "reason", reason.strip())


def _locked_kit(session: Session, site: str, kit: str) -> None:
    """Lock the kit's row until commit, so that two writers of calibrations of one kit (API replicas, or two
    requests in one API's threads) take turns and each sees the other's. A write of nothing, not SELECT ... FOR
    UPDATE: SQLite has no row locks, but a write starts its one write transaction, and the reads after it in
    this session then see every commit before (PostgreSQL locks the row either way)."""
    get_kit(session, site, kit)
    session.execute(update(Kit).where(Kit.site == site, Kit.name == kit).values(description=Kit.description))


def _windows_of(session: Session, site: str, kit: str, quantity: str,
                besides: int | None = None) -> list[CalibrationRow]:
    statement = select(CalibrationRow).where(CalibrationRow.site == site, CalibrationRow.kit == kit,
                                             CalibrationRow.quantity == quantity)
    if besides is not None:
        statement = statement.where(CalibrationRow.id != besides)
    return list(session.scalars(statement.order_by(CalibrationRow.valid_from)))


def _overlap(row: CalibrationRow) -> Conflict:
    return Conflict("calibration_overlap", f"the window overlaps calibration {row.id} of {row.kit} {row.quantity} "
                                           f"({_shown_window(row.valid_from, row.valid_to)}, gain {row.gain:g}, "
                                           f"offset {row.offset:g}): end or delete that one first, or choose a window "
                                           "beside it")


def add_calibration(session: Session, site: str, kit: str, quantity: str, *, offset: float, gain: float,
                    valid_from: datetime, valid_to: datetime | None = None, reason: str,
                    created_by: str) -> tuple[Calibration, Calibration | None]:
    """Store a calibration; returns it, and the calibration it ended (else None).

    A new calibration with no end replaces the one in force: if the kit's open calibration of the quantity
    started before ``valid_from``, it is ended at ``valid_from`` (a recalibration; the old one still applies to
    the readings before). Any other overlap with a calibration of the same kit and quantity is a ``Conflict``
    that names it. Nothing is changed when anything is refused.
    """
    _check_calibration(quantity, offset, gain, valid_from, valid_to, reason)
    _check_value(CalibrationRow, "created_by", created_by)
    valid_from, valid_to = _utc(valid_from), _utc(valid_to) if valid_to is not None else None  # as read back
    _locked_kit(session, site, kit)
    ended: CalibrationRow | None = None
    for row in _windows_of(session, site, kit, quantity):
        if not windows_overlap(row.valid_from, row.valid_to, valid_from, valid_to):
            continue
        if row.valid_to is None and valid_to is None and row.valid_from < valid_from:
            ended = row
            continue
        session.rollback()
        raise _overlap(row)
    if ended is not None:
        ended.valid_to = valid_from
    row = CalibrationRow(site=site, kit=kit, quantity=quantity, offset=float(offset), gain=float(gain),
                         valid_from=valid_from, valid_to=valid_to, reason=reason.strip(), created_by=created_by)
    session.add(row)
    session.commit()
    return _pure(row), _pure(ended) if ended is not None else None


def check_new_calibration(session: Session, site: str, kit: str, quantity: str, *, offset: float, gain: float,
                          valid_from: datetime, valid_to: datetime | None = None, reason: str) -> None:
    """Raise what ``add_calibration`` would refuse, storing nothing (a command that adds several checks all
    first, so a refusal leaves none of them stored)."""
    _check_calibration(quantity, offset, gain, valid_from, valid_to, reason)
    get_kit(session, site, kit)
    for row in _windows_of(session, site, kit, quantity):
        if windows_overlap(row.valid_from, row.valid_to, valid_from, valid_to) and not (
                row.valid_to is None and valid_to is None and row.valid_from < valid_from):
            raise _overlap(row)


def get_calibration(session: Session, calibration_id: int, site: str | None = None,
                    kit: str | None = None) -> CalibrationRow:
    """The stored calibration of that number; with ``site`` and ``kit``, only if it is that kit's."""
    row = session.get(CalibrationRow, calibration_id) if 0 < calibration_id < 2**63 else None
    if row is None or (site is not None and row.site != site) or (kit is not None and row.kit != kit):
        where = f"/v1/sites/{site[:64]}/kits/{(kit or '')[:64]}/calibrations" if site else "`lauks kit calibrations`"
        raise NotFound("calibration", f"there is no calibration {calibration_id}"
                                      f"{f' of kit {kit[:64]!r}' if kit else ''}; the list is at {where}")
    return row


def list_calibrations(session: Session, site: str, kit: str | None = None,
                      quantity: str | None = None) -> list[Calibration]:
    """The calibrations of a site (or of one kit, or of one quantity), by kit, quantity and start."""
    get_site(session, site)
    statement = select(CalibrationRow).where(CalibrationRow.site == site)
    if kit is not None:
        get_kit(session, site, kit)
        statement = statement.where(CalibrationRow.kit == kit)
    if quantity is not None:
        _check_quantity(quantity)
        statement = statement.where(CalibrationRow.quantity == quantity)
    rows = session.scalars(statement)
    return sorted((_pure(r) for r in rows), key=lambda c: (c.kit, c.quantity, c.valid_from, c.id))


def edit_calibration(session: Session, calibration_id: int, site: str | None = None, kit: str | None = None,
                     **changes: Unpack[CalibrationFields]) -> Calibration:
    """End a calibration (``valid_to``; None: in force again) or fix its reason."""
    row = get_calibration(session, calibration_id, site, kit)
    for key in changes:
        if key not in CALIBRATION_FIELDS:
            raise Invalid("bad_field", f"{key!r} cannot be changed on a calibration (only "
                                       f"{', '.join(CALIBRATION_FIELDS)}): for another gain, offset or start, "
                                       "add a new calibration")
    valid_to = changes["valid_to"] if "valid_to" in changes else row.valid_to
    reason = changes.get("reason", row.reason)
    if reason is None:
        raise Required("reason cannot be null: send the new reason, or leave it out to keep it")
    _check_calibration(row.quantity, row.offset, row.gain, row.valid_from, valid_to, reason)
    valid_to = _utc(valid_to) if valid_to is not None else None
    _locked_kit(session, row.site, row.kit)
    for other in _windows_of(session, row.site, row.kit, row.quantity, besides=row.id):
        if windows_overlap(other.valid_from, other.valid_to, row.valid_from, valid_to):
            session.rollback()
            raise _overlap(other)
    row.valid_to = valid_to
    row.reason = reason.strip()
    session.commit()
    return _pure(row)


def delete_calibration(session: Session, calibration_id: int, site: str | None = None,
                       kit: str | None = None) -> Calibration:
    """Remove a calibration made by mistake: readings are read as measured again where it applied. (One that was
    right until some time is ended instead, so data before keeps it.)"""
    row = get_calibration(session, calibration_id, site, kit)
    gone = _pure(row)
    session.delete(row)
    session.commit()
    return gone


def calibrations_for(session: Session, site: str, kits: Iterable[str], quantities: Iterable[str],
                     start: datetime, end: datetime) -> list[Calibration]:
    """The calibrations of these kits and quantities whose validity overlaps [start, end), by kit, quantity and
    valid_from. No kits (or no quantities) named: those of every kit (or quantity), as a readings request with
    no kits means all of them."""
    kit_names, quantity_names = list(kits), list(quantities)
    statement = select(CalibrationRow).where(CalibrationRow.site == site, CalibrationRow.valid_from < end,
                                             (CalibrationRow.valid_to.is_(None)) | (CalibrationRow.valid_to > start))
    if kit_names:
        statement = statement.where(CalibrationRow.kit.in_(kit_names))
    if quantity_names:
        statement = statement.where(CalibrationRow.quantity.in_(quantity_names))
    rows = session.scalars(statement)
    return sorted((_pure(r) for r in rows), key=lambda c: (c.kit, c.quantity, c.valid_from))
