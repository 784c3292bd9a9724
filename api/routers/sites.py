"""Sites and their kits, with each kit's live status from the gateway's ``kit_status`` points.

A kit's coordinates go to staff as stored; to a reader without a staff token (public read) as
``metastore.location.shown_location`` gives them: a blurred kit is shown to about 1 km."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Query

from api import source
from api.deps import InfluxDep, Reader, SessionDep, SettingsDep, Staff
from api.errors import responses
from api.schemas import KitEdit, KitIn, KitOut, KitStatus, SiteEdit, SiteIn, SiteOut
from lauks.influx import InfluxError
from metastore import registry
from metastore.db import Kit
from metastore.location import shown_location

router = APIRouter(prefix="/v1/sites", tags=["sites and kits"])


@router.get("", response_model=list[SiteOut], responses=responses(401, 422), summary="The sites")
def list_sites(session: SessionDep, _reader: Reader, include_retired: bool = False) -> list[Any]:
    return registry.list_sites(session, include_retired=include_retired)


@router.post("", response_model=SiteOut, status_code=201, responses=responses(400, 401, 409, 422),
             summary="Add a site (staff)")
def add_site(body: SiteIn, session: SessionDep, _staff: Staff) -> Any:
    fields = body.model_dump(exclude_none=True)
    return registry.add_site(session, fields.pop("name"), **fields)


@router.get("/{site}", response_model=SiteOut, responses=responses(401, 404), summary="One site")
def get_site(site: str, session: SessionDep, _reader: Reader) -> Any:
    return registry.get_site(session, site)


@router.patch("/{site}", response_model=SiteOut, responses=responses(400, 401, 404, 422), summary="Edit a site (staff)")
def edit_site(site: str, body: SiteEdit, session: SessionDep, _staff: Staff) -> Any:
    return registry.edit_site(session, site, **body.model_dump(exclude_unset=True))


@router.delete("/{site}", response_model=SiteOut, responses=responses(401, 404),
                summary="Retire a site (staff): its data stays readable")
def retire_site(site: str, session: SessionDep, _staff: Staff) -> Any:
    return registry.retire_site(session, site)


def status_of(entry: dict[str, Any] | None, window_s: int, at: datetime) -> KitStatus:
    """Online: heard from within the window, unless its newest word was a status saying otherwise."""
    if not entry:
        return KitStatus(online=False)
    seen: datetime | None = entry.get("seen_time")
    state: str | None = entry.get("state")
    state_time: datetime | None = entry.get("state_time")
    heard = max((t for t in (seen, state_time) if t is not None), default=None)
    recent = heard is not None and at - heard <= timedelta(seconds=window_s)
    if state is not None and state_time is not None and (seen is None or state_time >= seen):
        online = recent and state == "online"
    else:
        online = recent
    battery = entry.get("battery", entry.get("status_battery"))
    return KitStatus(online=online, state=state, last_seen=seen,
                     battery_v=float(battery) if isinstance(battery, int | float) else None)


def _shown(item: KitOut, staff: bool) -> KitOut:
    """Staff see where a kit is; anybody else (public read) sees a blurred kit's place to about 1 km."""
    if not staff:
        item.latitude, item.longitude = shown_location(item.latitude, item.longitude, item.location_precision)
    return item


async def _with_status(kits: list[Kit], site: str, influx: InfluxDep, settings: SettingsDep,
                       staff: bool) -> list[KitOut]:
    try:
        found = await source.kit_status(influx, settings.influx_database, site)
    except InfluxError:
        found = None  # the registry still answers when the store does not; status is left out
    at = datetime.now(UTC)
    out = []
    for kit in kits:
        item = _shown(KitOut.model_validate(kit), staff)
        item.status = status_of(found.get(kit.name), settings.api_online_window_s, at) if found is not None else None
        out.append(item)
    return out


@router.get("/{site}/kits", response_model=list[KitOut], responses=responses(401, 404, 422),
            summary="The kits of a site, with live status")
async def list_kits(site: str, session: SessionDep, influx: InfluxDep, settings: SettingsDep, reader: Reader,
                    include_retired: bool = Query(False)) -> list[KitOut]:
    kits = registry.list_kits(session, site, include_retired=include_retired)
    return await _with_status(kits, site, influx, settings, staff=reader is not None)


@router.post("/{site}/kits", response_model=KitOut, status_code=201, responses=responses(400, 401, 404, 409, 422),
             summary="Register a kit (staff)")
def add_kit(site: str, body: KitIn, session: SessionDep, _staff: Staff) -> Any:
    fields = body.model_dump(exclude_none=True)
    return registry.add_kit(session, site, fields.pop("name"), **fields)


@router.get("/{site}/kits/{kit}", response_model=KitOut, responses=responses(401, 404),
            summary="One kit, with live status")
async def get_kit(site: str, kit: str, session: SessionDep, influx: InfluxDep, settings: SettingsDep,
                  reader: Reader) -> KitOut:
    row = registry.get_kit(session, site, kit)
    return (await _with_status([row], site, influx, settings, staff=reader is not None))[0]


@router.patch("/{site}/kits/{kit}", response_model=KitOut, responses=responses(400, 401, 404, 422),
              summary="Edit a kit (staff)")
def edit_kit(site: str, kit: str, body: KitEdit, session: SessionDep, _staff: Staff) -> Any:
    return registry.edit_kit(session, site, kit, **body.model_dump(exclude_unset=True))


@router.delete("/{site}/kits/{kit}", response_model=KitOut, responses=responses(401, 404),
               summary="Retire a kit (staff): its data stays readable")
def retire_kit(site: str, kit: str, session: SessionDep, _staff: Staff) -> Any:
    return registry.retire_kit(session, site, kit)
