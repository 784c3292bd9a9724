"""The quantity catalog: names, units, UCUM codes and accepted ranges, and the derived quantities with their
inputs, formulas and references (public: it is in the docs anyway)."""

from __future__ import annotations

from fastapi import APIRouter

from api.errors import not_found, responses
from api.schemas import QuantityOut
from lauks.catalog import CATALOG
from lauks.derived import DERIVED

router = APIRouter(prefix="/v1/quantities", tags=["quantities"])


def _out(name: str) -> QuantityOut:
    d = DERIVED.get(name)
    if d is not None:
        return QuantityOut(name=d.name, unit=d.unit, ucum=d.ucum, minimum=None, maximum=None,
                           description=d.description, default_agg="mean", resolution=d.resolution, derived=True,
                           inputs=list(d.inputs), formula=d.formula, reference=d.reference,
                           daily=d.daily[1] if d.daily else None)
    q = CATALOG[name]
    return QuantityOut(name=q.name, unit=q.unit, ucum=q.ucum, minimum=q.minimum, maximum=q.maximum,
                       description=q.description, default_agg=q.default_agg, resolution=q.resolution)


@router.get("", response_model=list[QuantityOut], responses=responses(),
            summary="Every quantity a kit can measure, then the derived ones (worked out when read)")
def list_quantities() -> list[QuantityOut]:
    return [_out(name) for name in (*CATALOG, *DERIVED)]


@router.get("/{name}", response_model=QuantityOut, responses=responses(404), summary="One quantity")
def get_quantity(name: str) -> QuantityOut:
    if name not in CATALOG and name not in DERIVED:
        raise not_found("quantity", f"quantity {name[:60]!r} is not in the catalog; the list is at /v1/quantities")
    return _out(name)
