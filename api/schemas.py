"""Input, output and list schemas of the API: ``response_model`` decides what leaves the service."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from lauks.catalog import CATALOG
from lauks.topics import ID_PATTERN, id_problem

Agg = Literal["mean", "min", "max", "median", "count", "sum"]
LocationPrecision = Literal["exact", "blurred"]
# A site or kit name as the OpenAPI document states it; the validator below says what is wrong in a sentence.
NAME_SCHEMA: dict[str, Any] = {"pattern": ID_PATTERN, "minLength": 1, "maxLength": 32}



def _a_name(value: str) -> str:
    problem = id_problem("site or kit", value)
    if problem:
        raise ValueError(problem)
    return value


Name = Annotated[str, AfterValidator(_a_name), Field(json_schema_extra=NAME_SCHEMA)]


def _check_id(what: str, value: str) -> str:
    problem = id_problem(what, value)
    if problem:
        raise ValueError(problem)
    return value


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _kept(schema_extra: dict[str, Any] | None = None, **constraints: Any) -> Any:
    """A field that may be left out of an edit but never set to null (its column is NOT NULL): the schema says
    ``string`` and nothing else, so ``null`` is a 422 like any other wrong type."""

    def extra(schema: dict[str, Any]) -> None:
        _no_default(schema)
        schema.update(schema_extra or {})

    return Field(None, json_schema_extra=extra, **constraints)


# Documented, not enforced by the schema: the store checks the range and says what is wrong in a 400.
ROLLING_DAYS_SCHEMA: dict[str, Any] = {"minimum": 1, "maximum": 366}


def _not_a_bool(value: Any) -> Any:
    if isinstance(value, bool):  # pydantic would take true as 1 day; 7.0 is still 7 (JSON Schema's integer)
        raise ValueError("a number of days is written like 7, not as true or false")
    return value


Days = Annotated[int, BeforeValidator(_not_a_bool)]


# Strict: JSON `false` is not 0.0, nor "1.5" a number (ints are still fine).
Number = Annotated[float, Field(strict=True)]


def _a_time_not_a_number(value: Any) -> Any:
    if isinstance(value, int | float):  # pydantic would take 0 as 1970-01-01
        raise ValueError("a time is written like 2025-03-01T09:00:00+02:00, not as a number")
    return value


Moment = Annotated[datetime, BeforeValidator(_a_time_not_a_number)]


class Location(BaseModel):
    """null clears a coordinate."""

    latitude: Number | None = Field(None, ge=-90, le=90)
    longitude: Number | None = Field(None, ge=-180, le=180)
    elevation_m: Number | None = Field(None, ge=-500, le=9000)


class SiteEdit(Location):
    """Fields left out stay as they are. ``title`` cannot be null (every site has one); ``description``,
    ``timezone`` and the coordinates can: null clears them."""

    model_config = ConfigDict(extra="forbid")

    title: str = _kept(min_length=1, max_length=200)
    description: str | None = Field(None, max_length=5000, description="null clears it")
    timezone: str | None = Field(None, max_length=64, description="IANA time zone of the school, e.g. Europe/Riga; "
                                                                   "null: the server's default")


class SiteIn(SiteEdit):
    name: str = Field(description="1-32 of a-z, 0-9 and '-'", examples=["riga-school-3"],
                      json_schema_extra=NAME_SCHEMA)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_id("site", value)


class SiteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    title: str
    description: str
    latitude: float | None
    longitude: float | None
    elevation_m: float | None
    timezone: str | None
    created_at: datetime
    retired_at: datetime | None


class KitStatus(BaseModel):
    online: bool = Field(description="heard from recently and not reported offline")
    state: str | None = Field(None, description="online, offline or sleeping, from the kit's last status message")
    last_seen: datetime | None = Field(None, description="when the gateway last stored readings of the kit")
    battery_v: float | None = None


class KitEdit(Location):
    """Fields left out stay as they are. ``kit_type`` cannot be null; ``description``, ``deployed_since`` and the
    coordinates can: null clears them."""

    model_config = ConfigDict(extra="forbid")

    kit_type: str = _kept(min_length=1, max_length=64, examples=["weather"])
    description: str | None = Field(None, max_length=5000, description="null clears it")
    deployed_since: Moment | None = None
    location_precision: LocationPrecision = _kept(
        description="blurred (the default): readers without a staff token see the kit's place to about 1 km, so "
                    "a kit in a pupil's garden does not show their home; exact: everybody sees the coordinates")


class KitIn(KitEdit):
    """A new kit; ``location_precision`` left out is ``blurred``."""

    name: str = Field(description="1-32 of a-z, 0-9 and '-'", examples=["k01"], json_schema_extra=NAME_SCHEMA)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_id("kit", value)


class KitOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    site: str
    name: str
    kit_type: str
    description: str
    latitude: float | None
    longitude: float | None
    elevation_m: float | None
    location_precision: LocationPrecision = Field(
        description="blurred: readers without a staff token get latitude and longitude snapped to a grid of about "
                    "1 km; staff always get them exact")
    deployed_since: datetime | None
    retired_at: datetime | None
    status: KitStatus | None = None


class QuantityOut(BaseModel):
    name: str
    unit: str
    ucum: str
    minimum: float | None = Field(description="the lowest value a kit's reading may have; null for a derived "
                                              "quantity (worked out, never measured)")
    maximum: float | None = Field(description="the highest value a kit's reading may have; null for a derived one")
    description: str
    default_agg: str
    resolution: float = Field(0.0, json_schema_extra=_no_default,
                              description="the display step: aggregated values are rounded to it (0.01: two "
                                          "decimals); raw readings are given as measured")
    derived: bool = Field(False, description="worked out when read from the inputs, never stored as if measured")
    inputs: list[str] = Field(default_factory=list, description="a derived quantity's stored inputs")
    formula: str | None = Field(None, description="how a derived quantity is worked out")
    reference: str | None = Field(None, description="where a derived quantity's formula comes from")
    daily: Literal["min", "max", "mean", "sum"] | None = Field(
        None, description="a daily derived quantity's statistic of its input over each school day (local "
                          "midnight to midnight, dated at its midnight)")

    @model_validator(mode="before")
    @classmethod
    def _resolution_from_catalog(cls, data: Any) -> Any:
        # The route builds this from a catalog row field by field; the resolution comes from the same row.
        if isinstance(data, dict) and "resolution" not in data and data.get("name") in CATALOG:
            return {**data, "resolution": CATALOG[data["name"]].resolution}
        return data


class LatestValue(BaseModel):
    kit: str
    quantity: str
    value: float
    unit: str
    time: datetime


class DatasetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200, examples=["Schoolyard temperature, spring 2025"])
    description: str = Field("", max_length=5000)
    licence: str = Field("CC-BY-4.0", max_length=64, description="SPDX id of the licence, e.g. CC-BY-4.0")
    site: Name
    kits: list[Name] | None = Field(None, max_length=100, description="default: every kit of the site")
    quantities: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(min_length=1, max_length=30)
    start: str | None = Field(None, description="date (YYYY-MM-DD) or ISO 8601 time; give start and end, or "
                                                "rolling_days", examples=["2025-03-01"])
    end: str | None = Field(None, description="date (inclusive) or ISO 8601 time (exclusive)",
                            examples=["2025-05-31"])
    rolling_days: Days | None = Field(None, description="instead of start and end: always the last 1-366 days up "
                                                       "to now, so the dataset stays live (it is never frozen)",
                                     json_schema_extra=ROLLING_DAYS_SCHEMA, examples=[7])
    every: str | None = Field(None, examples=["1h"])
    agg: Agg | None = None
    tz: str | None = Field(None, max_length=64, examples=["Europe/Riga"])
    expires_at: Moment | None = Field(None, description="after this the code stops working")


class DatasetEdit(BaseModel):
    """Fields left out stay as they are. ``title`` cannot be null; ``description`` can (null clears it), and
    ``expires_at`` can (null: the code never expires). The selection and a fixed window cannot be edited: pupils
    may have its files already, so publish a new dataset instead. A rolling dataset's ``rolling_days`` can."""

    model_config = ConfigDict(extra="forbid")

    title: str = _kept(min_length=1, max_length=200, examples=["Schoolyard temperature, spring 2025"])
    description: str | None = Field(None, max_length=5000, description="null clears it")
    expires_at: Moment | None = Field(None, description="a time to come (without an offset: the dataset's time "
                                                        "zone), to extend or shorten; null: never expires")
    rolling_days: Days = _kept(ROLLING_DAYS_SCHEMA, description="a rolling dataset's window, 1-366 days up to now "
                                                                "(a dataset with a fixed window keeps it)")


class DatasetOut(BaseModel):
    code: str = Field(description="the share code to give the class, e.g. 4KTW-9ACE")
    title: str
    description: str
    licence: str
    site: str
    kits: list[str]
    quantities: list[str]
    start: datetime = Field(description="the window's start; for a rolling dataset, as of this answer")
    end: datetime = Field(description="the window's end (excluded); for a rolling dataset, now")
    rolling_days: int | None = Field(description="the last N days up to now, or null for a fixed window")
    every: str | None
    agg: str | None
    timezone: str
    created_by: str = Field(description="the name of the staff token that published it")
    created_at: datetime
    expires_at: datetime | None
    frozen: bool = Field(description="the window has ended: every download gives the same bytes")
    links: dict[str, str]


class DatasetPreview(DatasetOut):
    columns: list[str]
    rows: list[list[str | float | None]]


class TokenOut(BaseModel):
    name: str
    token: str
