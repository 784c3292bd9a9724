"""A kit's place through /v1: staff see it as stored, readers without a token (public read) see a blurred kit
to about 1 km, and staff choose the precision."""

from __future__ import annotations

from pathlib import Path

import pytest
from api_fixtures import api_settings_for, running

from lauks.services import Influxd
from metastore.location import shown_location

GARDEN = (56.949612, 24.105187)


@pytest.mark.both_stores
async def test_a_public_reader_sees_a_blurred_kit_near_but_staff_see_it_exactly(
        tmp_path: Path, influxd: Influxd, database: str, store_url: str) -> None:
    settings = api_settings_for(tmp_path, influxd.url, database, api_public_read=True, api_database_url=store_url)
    async for api in running(settings):
        api.add_site("school")
        made = await api.post("/v1/sites/school/kits", json={"name": "garden", "latitude": GARDEN[0],
                                                             "longitude": GARDEN[1]})
        assert made.status_code == 201 and made.json()["location_precision"] == "blurred"
        assert (made.json()["latitude"], made.json()["longitude"]) == GARDEN  # staff's own answer is exact
        public = (await api.client.get("/v1/sites/school/kits/garden")).json()
        assert (public["latitude"], public["longitude"]) == shown_location(*GARDEN, "blurred") != GARDEN
        listed = (await api.client.get("/v1/sites/school/kits")).json()[0]
        assert (listed["latitude"], listed["longitude"]) == (public["latitude"], public["longitude"])
        staff = (await api.get("/v1/sites/school/kits/garden")).json()
        assert (staff["latitude"], staff["longitude"]) == GARDEN


@pytest.mark.both_stores
async def test_a_kit_made_exact_is_shown_exactly_to_everybody(tmp_path: Path, influxd: Influxd, database: str,
                                                               store_url: str) -> None:
    settings = api_settings_for(tmp_path, influxd.url, database, api_public_read=True, api_database_url=store_url)
    async for api in running(settings):
        api.add_site("school")
        await api.post("/v1/sites/school/kits", json={"name": "roof", "latitude": GARDEN[0], "longitude": GARDEN[1]})
        edited = await api.client.patch("/v1/sites/school/kits/roof", json={"location_precision": "exact"},
                                        headers=api.staff)
        assert edited.status_code == 200 and edited.json()["location_precision"] == "exact"
        public = (await api.client.get("/v1/sites/school/kits/roof")).json()
        assert (public["latitude"], public["longitude"]) == GARDEN
        wrong = await api.client.patch("/v1/sites/school/kits/roof", json={"location_precision": "fuzzy"},
                                       headers=api.staff)
        assert wrong.status_code == 422
        cleared = await api.client.patch("/v1/sites/school/kits/roof", json={"location_precision": None},
                                         headers=api.staff)
        assert cleared.status_code == 422
