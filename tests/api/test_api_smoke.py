"""The service starts, answers its catalog and refuses what it should, as JSON."""

from __future__ import annotations

from api_fixtures import Api, service

__all__ = ["service"]


async def test_the_quantity_catalog_lists_units_and_ranges(service: Api) -> None:
    response = await service.client.get("/v1/quantities")
    assert response.status_code == 200
    rain = next(q for q in response.json() if q["name"] == "rain")
    assert (rain["unit"], rain["ucum"], rain["default_agg"]) == ("mm", "mm", "sum")


async def test_sites_need_a_staff_token_by_default(service: Api) -> None:
    response = await service.client.get("/v1/sites")
    assert response.status_code == 401
    assert response.json()["error"] == "staff_only"
    assert "lauks token create" in response.json()["message"]
