"""Over-the-air releases for kits (issue 14): the manifest and files of ``<state_dir>/releases/<version>``,
and for staff, each kit's firmware and the last update it was offered and reported.

The files are public on purpose: a kit has no staff token, and it trusts nothing it downloads by where it came
from. Its offer, HMAC'd under its own key, names the manifest's SHA-256, and the manifest names each file's
(lauks/fleet.py). Only paths a release's manifest lists are served, so nothing else under the state folder
can be reached, whatever the path says.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import select

from api.deps import SettingsDep, Staff
from api.errors import ApiError, not_found, responses
from api.settings import ApiSettings
from lauks import fleet
from lauks.fleet import FleetError
from lauks.influx import InfluxError
from metastore import registry
from metastore.db import Kit
from web import fleetdata

router = APIRouter(prefix="/v1/firmware", tags=["firmware"])

OCTETS = "application/octet-stream"


class ReleaseOut(BaseModel):
    version: str
    format: str
    files: int
    bytes: int


class KitUpdateOut(BaseModel):
    site: str
    kit: str
    fw: str | None  # what its last readings said it runs
    offered: str | None  # the version last offered to it (None: never, or the offer was withdrawn)
    offered_at: str | None
    update_version: str | None  # the last update it reported in a status message
    update_state: str | None  # one of lauks.schema.UPDATE_STATES
    update_reason: str | None
    update_at: datetime | None


def _releases(settings: ApiSettings) -> Path:
    return settings.state_dir / fleet.RELEASES_DIR


def _manifest(settings: ApiSettings, version: str) -> tuple[Path, dict[str, object]]:
    if fleet.version_problem(version):
        raise not_found("release", f"there is no release {version[:40]!r}")
    folder = _releases(settings) / version
    try:
        return folder, fleet.read_manifest(folder)
    except FleetError as error:
        raise not_found("release", f"there is no release {version}: build it with `lauks fleet release`") from error


@router.get("", response_model=list[ReleaseOut], responses=responses(401), summary="The releases there are (staff)")
def list_releases(settings: SettingsDep, _staff: Staff) -> list[ReleaseOut]:
    out = []
    for version in fleet.list_releases(_releases(settings)):
        try:
            manifest = fleet.read_manifest(_releases(settings) / version)
        except FleetError:
            continue
        files = manifest["files"]
        assert isinstance(files, list)
        out.append(ReleaseOut(version=version, format=str(manifest["format"]), files=len(files),
                              bytes=sum(int(e["size"]) for e in files)))
    return out


@router.get("/kits", response_model=list[KitUpdateOut], responses=responses(401, 404, 503),
            summary="Each kit's firmware, the version it was offered and how its last update went (staff)")
async def kit_updates(request: Request, settings: SettingsDep, _staff: Staff,
                      site: str | None = Query(None, max_length=32)) -> list[KitUpdateOut]:
    with request.app.state.sessions() as db:
        statement = select(Kit.site, Kit.name).where(Kit.retired_at.is_(None))
        if site is not None:
            # an unknown site is a 404 with the reason, never a store query with whatever the name holds
            site = registry.get_site(db, site).name
            statement = statement.where(Kit.site == site)
        registered = [(s, k) for s, k in db.execute(statement)]
    try:
        facts = await fleetdata.fetch(request.app.state.influx, settings.influx_database, registered,
                                      datetime.now(UTC), site)
    except InfluxError as error:
        raise ApiError(503, "store_unavailable", "the readings store cannot be reached: try again shortly") from error
    offers = fleet.last_offers(settings.state_dir)
    out = []
    for kit in sorted(facts, key=lambda k: k.key):
        offer = offers.get(kit.key, {})
        out.append(KitUpdateOut(site=kit.site, kit=kit.kit, fw=kit.fw, offered=offer.get("version"),
                                offered_at=offer.get("when"), update_version=kit.update_version,
                                update_state=kit.update_state, update_reason=kit.update_reason,
                                update_at=kit.update_time))
    return out


@router.get("/{version}/manifest.json", responses={**responses(404), 200: {"content": {"application/json": {}}}},
            summary="A release's manifest, byte for byte as its offer's SHA-256 covers it (kits)")
def get_manifest(version: str, settings: SettingsDep) -> Response:
    folder, _ = _manifest(settings, version)
    return Response((folder / fleet.MANIFEST).read_bytes(), media_type="application/json")


@router.get("/{version}/files/{path:path}", responses={**responses(404), 200: {"content": {OCTETS: {}}}},
            summary="One file of a release (kits)")
def get_file(version: str, path: str, settings: SettingsDep) -> Response:
    folder, manifest = _manifest(settings, version)
    files = manifest["files"]
    assert isinstance(files, list)
    if path not in {entry["path"] for entry in files}:  # only what the manifest lists: no way out of the release
        raise not_found("release_file", f"release {version} has no file {path[:80]!r}; its manifest lists them")
    try:
        data = (folder / fleet.FILES / path).read_bytes()
    except OSError as error:
        raise not_found("release_file", f"release {version} lacks {path}: build a new release") from error
    return Response(data, media_type=OCTETS)
