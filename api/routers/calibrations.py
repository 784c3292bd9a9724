"""A kit's calibrations: anybody who may read the kit may list them (they are part of the data's story); staff
add, end, correct the reason of, and delete them. Applied when readings are read; the stored values stay."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Reader, SessionDep, SettingsDep, Staff
from api.errors import responses
from api.query import parse_time, parse_zone
from api.schemas import Number
from lauks.calibration import FORMULA, Calibration
from metastore import registry

router = APIRouter(prefix="/v1/sites", tags=["calibrations"])
PATH = "/{site}/kits/{kit}/calibrations"
TIME_TEXT = ("a date (YYYY-MM-DD: the site's local midnight; as an end, the whole day is included) or an ISO 8601 "
             "time, in the site's time zone unless it has an offset")


class CalibrationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantity: str = Field(min_length=1, max_length=64, description="a stored catalog quantity (not a derived one)",
                          examples=["temperature"])
    offset: Number = Field(0.0, description="added after the gain, in the quantity's unit", examples=[-0.4])
    gain: Number = Field(1.0, description="above 0; 1 leaves the value as measured", examples=[1.02])
    valid_from: str = Field(min_length=1, max_length=40, description=TIME_TEXT, examples=["2025-03-03"])
    valid_to: str | None = Field(None, max_length=40, description=TIME_TEXT + "; left out: in force until ended. "
                                 "Left out while another calibration of the quantity is in force since before "
                                 "valid_from, that one is ended at valid_from")
    reason: str = Field(min_length=1, max_length=500, examples=["co-location with riga-3/ref, 1-3 March"])


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


class CalibrationEdit(BaseModel):
    """Fields left out stay. Only the end and the reason change: for another gain, offset or start, add a new
    calibration (and delete a mistaken one)."""

    model_config = ConfigDict(extra="forbid")

    valid_to: str | None = Field(None, max_length=40, description=TIME_TEXT + "; null: in force again",
                                 examples=["2025-06-01T08:00"])
    # Not null (a calibration always says why): the schema says string and nothing else, so null is a 422.
    reason: str = Field(None, min_length=1, max_length=500, json_schema_extra=_no_default)  # type: ignore[assignment]


class CalibrationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    site: str
    kit: str
    quantity: str
    offset: float
    gain: float
    valid_from: datetime
    valid_to: datetime | None = Field(description="excluded; null: in force until ended")
    reason: str
    created_by: str = Field(description="the staff token's name, or the user who ran `lauks kit calibrate`")
    created_at: datetime
    formula: str = Field(FORMULA, description="how a raw value becomes the calibrated one")


class CalibrationAdded(CalibrationOut):
    ended: CalibrationOut | None = Field(None, description="the calibration in force before, ended now at this "
                                                           "one's valid_from; null if there was none")


def _zone_of(session: SessionDep, settings: SettingsDep, site: str) -> Any:
    return parse_zone(registry.get_site(session, site).timezone or settings.api_timezone)


def _out(calibration: Calibration) -> CalibrationOut:
    return CalibrationOut.model_validate(calibration)


@router.get(PATH, response_model=list[CalibrationOut], responses=responses(401, 404, 422),
            summary="A kit's calibrations, oldest first per quantity")
def list_calibrations(site: str, kit: str, session: SessionDep, _reader: Reader,
                      quantity: str | None = Query(None, max_length=64, description="only this quantity's")
                      ) -> list[CalibrationOut]:
    return [_out(c) for c in registry.list_calibrations(session, site, kit, quantity)]


@router.post(PATH, response_model=CalibrationAdded, status_code=201, responses=responses(400, 401, 404, 409, 422),
             summary="Add a calibration of one quantity of a kit (staff)")
def add_calibration(site: str, kit: str, body: CalibrationIn, session: SessionDep, settings: SettingsDep,
                    staff: Staff) -> CalibrationAdded:
    zone = _zone_of(session, settings, site)
    registry.get_kit(session, site, kit)
    valid_from = parse_time(body.valid_from, zone, is_end=False, what="valid_from")
    valid_to = parse_time(body.valid_to, zone, is_end=True, what="valid_to") if body.valid_to is not None else None
    added, ended = registry.add_calibration(session, site, kit, body.quantity, offset=body.offset, gain=body.gain,
                                            valid_from=valid_from, valid_to=valid_to, reason=body.reason,
                                            created_by=staff.name)
    return CalibrationAdded(**_out(added).model_dump(), ended=_out(ended) if ended is not None else None)


@router.patch(PATH + "/{calibration_id}", response_model=CalibrationOut, responses=responses(400, 401, 404, 409, 422),
              summary="End a calibration, or correct its reason (staff)")
def edit_calibration(site: str, kit: str, calibration_id: int, body: CalibrationEdit, session: SessionDep,
                     settings: SettingsDep, _staff: Staff) -> CalibrationOut:
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    registry.get_calibration(session, calibration_id, site, kit)
    if changes.get("valid_to") is not None:
        changes["valid_to"] = parse_time(changes["valid_to"], _zone_of(session, settings, site), is_end=True,
                                         what="valid_to")
    return _out(registry.edit_calibration(session, calibration_id, site, kit, **changes))


@router.delete(PATH + "/{calibration_id}", status_code=204, response_class=Response,
               responses=responses(401, 404, 422),
               summary="Delete a calibration made by mistake (staff): readings are read as measured there again")
def delete_calibration(site: str, kit: str, calibration_id: int, session: SessionDep, _staff: Staff) -> Response:
    registry.delete_calibration(session, calibration_id, site, kit)
    return Response(status_code=204)
