"""Pages: embeds, the small charts a school puts in an iframe on its own website (the only pages that may be framed,
web/security.py). No cookie is read or set (``Page.of(request, embed=True)``): the language comes from ``?lang=``
or Accept-Language. Only public data (LAUKS_API_PUBLIC_READ on), or a class dataset by its share code.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.deps import dataset_for_code
from api.errors import ApiError
from lauks.catalog import CATALOG
from metastore import registry, sharecode
from web import series, sitedata
from web.render import Page, PageError, render

router = APIRouter()


@router.get("/embed/kit/{site}/{kit}/{quantity}", response_class=HTMLResponse)
async def embed_kit(site: str, kit: str, quantity: str, request: Request) -> HTMLResponse:
    page = Page.of(request, embed=True)
    if not page.settings.api_public_read:
        raise PageError(403, "not_public", message=page.t.gettext(
            "This server's readings are not public, so they cannot be shown on another website."))
    range_name, _span = series.parse_range(request.query_params.get("range"))
    with request.app.state.sessions() as db:
        site_row = registry.get_site(db, site)
        kit_row = registry.get_kit(db, site, kit)
    if kit_row.retired_at is not None:
        raise PageError(410, "kit_retired", message=page.t.gettext("This kit is retired: it no longer sends readings."))
    if quantity not in CATALOG:
        raise PageError(404, "unknown_quantity", message=page.t.gettext("This kit has no such quantity."))
    t = page.t = page.t.in_zone(site_row.timezone)
    return render(page, "embed_kit.html", site=site_row, kit=kit_row, quantity=quantity,
                  label=sitedata.quantity_label(t, quantity), unit=CATALOG[quantity].unit, range_name=range_name,
                  zone=t.zone.key, link=page.absolute(f"/s/{site_row.name}/{kit_row.name}"),
                  series_url=f"/w/series/kit/{site_row.name}/{kit_row.name}?q={quantity}&range={range_name}")


@router.get("/embed/d/{code}", response_class=HTMLResponse)
async def embed_dataset(code: str, request: Request) -> HTMLResponse:
    page = Page.of(request, embed=True)
    with request.app.state.sessions() as db:
        try:
            dataset = dataset_for_code(request, db, code)
        except ApiError as error:  # the address's budget of wrong codes is spent
            raise PageError(error.status, error.code, headers=error.headers) from None
        quantities = list(dataset.quantities)
        title, zone, shown_code = dataset.title, dataset.timezone, sharecode.display(dataset.code)
    # the chart is of a measured quantity: a derived one has no series of its own
    charted = [q for q in quantities if q in CATALOG] or quantities
    wanted = request.query_params.get("q")
    quantity = wanted if wanted in charted else charted[0]
    if quantity not in CATALOG:
        raise PageError(404, "no_chart", message=page.t.gettext("This dataset has no measured quantity to chart."))
    t = page.t = page.t.in_zone(zone)
    return render(page, "embed_dataset.html", title=title, quantity=quantity,
                  label=sitedata.quantity_label(t, quantity), unit=CATALOG[quantity].unit, zone=t.zone.key,
                  link=page.absolute(f"/d/{shown_code}"), series_url=f"/w/series/d/{shown_code}?q={quantity}")
