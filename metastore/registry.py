"""Sites, kits, staff tokens and class datasets in the relational store: used by the routes and the CLI.

Every function takes a SQLAlchemy ``Session`` and raises ``ApiError`` with a sentence a person can act
on. ``register_kit`` is the plain entry point for ``lauks kit add``.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.errors import ApiError, bad_request, not_found
from lauks.topics import id_problem
from lauks.zones import zone_problem
from metastore import sharecode
from metastore.db import Dataset, Kit, Site, StaffToken, now, open_store

SITE_FIELDS = ("title", "description", "latitude", "longitude", "elevation_m", "timezone")
KIT_FIELDS = ("kit_type", "description", "latitude", "longitude", "elevation_m", "deployed_since")


def _check_id(what: str, name: str) -> None:
    problem = id_problem(what, name)
    if problem:
        raise bad_request(f"bad_{what}_name", problem)


def _check_zone(name: str | None) -> None:
    problem = zone_problem(name) if name is not None else None
    if problem:
        raise bad_request("bad_timezone", problem)


# Text columns that are NOT NULL: null clears them to "" (a description), or is refused (a title).
CLEARED = {"description": ""}
REQUIRED = ("title", "kit_type")


def _apply(row: Any, changes: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for key, value in changes.items():
        if key not in allowed:
            raise bad_request("bad_field", f"{key!r} cannot be set here; the fields are {', '.join(allowed)}")
        if value is None and key in REQUIRED:
            raise ApiError(422, "invalid_request", f"{key} cannot be null: send the new {key.replace('_', ' ')}, "
                                                   "or leave it out to keep it")
        if value is None and key in CLEARED:
            value = CLEARED[key]
        if key == "deployed_since" and isinstance(value, str):
            value = datetime.fromisoformat(value)
        setattr(row, key, value)


# --- sites ----------------------------------------------------------------------------------------


def get_site(session: Session, name: str) -> Site:
    site = session.get(Site, name) if len(name) <= 64 else None
    if site is None:
        raise not_found("site", f"there is no site {name!r}; the sites are listed at /v1/sites")
    return site


def list_sites(session: Session, *, include_retired: bool = False) -> list[Site]:
    statement = select(Site).order_by(Site.name)
    if not include_retired:
        statement = statement.where(Site.retired_at.is_(None))
    return list(session.scalars(statement))


def add_site(session: Session, name: str, **fields: Any) -> Site:
    _check_id("site", name)
    _check_zone(fields.get("timezone"))
    if session.get(Site, name) is not None:
        raise ApiError(409, "site_exists", f"site {name!r} exists already; edit it instead")
    site = Site(name=name, title=fields.pop("title", None) or name, description="")
    _apply(site, fields, SITE_FIELDS)
    session.add(site)
    session.commit()
    return site


def edit_site(session: Session, name: str, **changes: Any) -> Site:
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
    kit = session.get(Kit, (site, name)) if len(name) <= 64 else None
    if kit is None:
        raise not_found("kit", f"site {site!r} has no kit {name!r}; its kits are listed at /v1/sites/{site}/kits")
    return kit


def list_kits(session: Session, site: str, *, include_retired: bool = False) -> list[Kit]:
    get_site(session, site)
    statement = select(Kit).where(Kit.site == site).order_by(Kit.name)
    if not include_retired:
        statement = statement.where(Kit.retired_at.is_(None))
    return list(session.scalars(statement))


def add_kit(session: Session, site: str, name: str, **fields: Any) -> Kit:
    get_site(session, site)
    _check_id("kit", name)
    if session.get(Kit, (site, name)) is not None:
        raise ApiError(409, "kit_exists", f"site {site!r} has a kit {name!r} already; edit it instead")
    kit = Kit(site=site, name=name, kit_type=fields.pop("kit_type", None) or "weather", description="")
    _apply(kit, fields, KIT_FIELDS)
    session.add(kit)
    session.commit()
    return kit


def edit_kit(session: Session, site: str, name: str, **changes: Any) -> Kit:
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
        raise not_found("kit", f"site {site!r} has no kit {', '.join(repr(u) for u in unknown)}; its kits are: "
                               f"{listed}")
    return names


def register_kit(site: str, kit: str, kit_type: str, *, state_dir: Path | None = None, **metadata: Any) -> None:
    """Record a kit (and its site, if new) in the store of the default settings, or of the stack whose state is
    in ``state_dir``; edits it if it exists."""
    from api.settings import ApiSettings

    settings = ApiSettings() if state_dir is None else ApiSettings(state_dir=state_dir)
    sessions = open_store(settings.database_url)
    with sessions() as session:
        if session.get(Site, site) is None:
            add_site(session, site)
        if session.get(Kit, (site, kit)) is None:
            add_kit(session, site, kit, kit_type=kit_type, **metadata)
        else:
            edit_kit(session, site, kit, kit_type=kit_type, **metadata)
        session.get_bind().dispose()


# --- staff tokens ---------------------------------------------------------------------------------


def token_hash(token: str) -> str:
    # Tokens are 256 random bits, so a plain SHA-256 is enough to make the stored value useless to a thief.
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, name: str) -> str:
    """A new staff token; only its hash is stored, so this is the one time it can be shown."""
    if not name.strip():
        raise bad_request("bad_token_name", "give the token a name saying whose it is, e.g. --name 'Ms Ozola'")
    token = "lauks_" + secrets.token_urlsafe(32)
    session.add(StaffToken(name=name.strip(), token_hash=token_hash(token)))
    session.commit()
    return token


def staff_for(session: Session, token: str) -> StaffToken | None:
    if not token.startswith("lauks_") or len(token) > 100:
        return None
    row = session.scalar(select(StaffToken).where(StaffToken.token_hash == token_hash(token)))
    return row if row is not None and row.revoked_at is None else None


# --- class datasets -------------------------------------------------------------------------------


def add_dataset(session: Session, **fields: Any) -> Dataset:
    for _ in range(10):
        code = sharecode.new_code()
        if session.get(Dataset, code) is None:
            break
    dataset = Dataset(code=code, **fields)
    session.add(dataset)
    session.commit()
    return dataset


def dataset_by_code(session: Session, typed: str) -> Dataset:
    code = sharecode.normalise(typed)
    dataset = session.get(Dataset, code) if code else None
    if dataset is None:
        raise not_found("code", f"no class dataset has the code {typed[:40]!r}: check it for typos (it looks like "
                                "4KTW-9ACE: letters and digits, no O, I or L)")
    if dataset.expires_at is not None and dataset.expires_at <= now():
        raise ApiError(410, "code_expired", f"the code {sharecode.display(dataset.code)} expired on "
                                            f"{dataset.expires_at:%Y-%m-%d}: ask your teacher for a new one")
    return dataset
