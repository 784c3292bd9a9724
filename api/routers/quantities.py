"""The quantity catalog: names, units, UCUM codes and accepted ranges (public: it is in the docs anyway)."""

from __future__ import annotations

from fastapi import APIRouter

from api.errors import not_found, responses
from api.schemas import QuantityOut
from lauks.catalog import CATALOG

router = APIRouter(prefix="/v1/quantities", tags=["quantities"])


def _out(name: str) -> QuantityOut:
    q = CATALOG[name]
    return QuantityOut(name=q.name, unit=q.unit, ucum=q.ucum, minimum=q.minimum, maximum=q.maximum,
                       description=q.description, default_agg=q.default_agg, resolution=q.resolution)


@router.get("", response_model=list[QuantityOut], responses=responses(), summary="Every quantity a kit can measure")
def list_quantities() -> list[QuantityOut]:
    return [_out(name) for name in CATALOG]


@router.get("/{name}", response_model=QuantityOut, responses=responses(404), summary="One quantity")
def get_quantity(name: str) -> QuantityOut:
    if name not in CATALOG:
        raise not_found("quantity", f"quantity {name[:60]!r} is not in the catalog; the list is at /v1/quantities")
    return _out(name)
