"""Pages: a class dataset by its share code (``/d/{code}``), and the small form to type a code (``/d``).

No account: the code is the key, so every lookup goes through ``api.deps.dataset_for_code``, which forgives
the way a pupil types it (case, spaces, dashes) and spends the address's budget of wrong codes. The files are
the API's own downloads (``/v1/datasets/{code}/...``) and the charts' data is ``/w/series/d/{code}``
(web/series.py): the page only links to them.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from api import dataset as datasets
from api.deps import dataset_for_code
from api.errors import ApiError
from api.query import parse_zone
from lauks.catalog import CATALOG
from metastore import registry, sharecode
from metastore.db import Dataset, now
from metastore.errors import NotFound
from web.i18n import N_, Translator
from web.render import Page, PageError, render
from web.sitedata import quantity_label

router = APIRouter()

# (label, file, query): every download the API offers a class, in the order a pupil needs them.
DOWNLOADS: tuple[tuple[str, str, str], ...] = (
    (N_("CSV"), "data.csv", ""),
    (N_("CSV for spreadsheets (; and decimal comma)"), "data.csv", "decimal_comma=true"),
    (N_("CSV for Excel (with BOM)"), "data.csv", "bom=true"),
    (N_("CSV for Excel in Latvian or Lithuanian (; and decimal comma, with BOM)"), "data.csv",
     "decimal_comma=true&bom=true"),
    (N_("JSON"), "data.json", ""),
    (N_("Parquet"), "data.parquet", ""),
    (N_("Zip: a file per kit, with a README"), "dataset.zip", ""),
    (N_("Zip for spreadsheets (; and decimal comma)"), "dataset.zip", "decimal_comma=true"),
    (N_("Zip for Excel (with BOM)"), "dataset.zip", "bom=true"),
)
AGG_NAMES = {"mean": N_("mean"), "min": N_("minimum"), "max": N_("maximum"), "median": N_("median"),
             "count": N_("count"), "sum": N_("sum")}
EVERY_NAMES = {"10m": N_("every 10 minutes"), "1h": N_("every hour"), "1d": N_("every day")}


def with_unit(t: Translator, name: str) -> str:
    """``Air temperature (°C)``: a chart's caption and a checkbox's label."""
    unit = CATALOG[name].unit
    return f"{quantity_label(t, name)} ({unit})" if unit else quantity_label(t, name)


def _days(dataset: Dataset, at: datetime) -> tuple[datetime, datetime]:
    """The first and the last local day of the window (an end at midnight is the day before's end)."""
    zone = parse_zone(dataset.timezone)
    start, end = datasets.window_of(dataset, at)
    last = end.astimezone(zone)
    if last.time() == time(0) and end > start:
        last -= timedelta(days=1)
    return start.astimezone(zone), last


def window_text(t: Translator, dataset: Dataset, at: datetime) -> str:
    """``The last 7 days, updated live`` or ``From 1 Mar 2025 to 31 May 2025``, in the dataset's zone."""
    if dataset.rolling_days is not None:
        return t.ngettext("The last %(num)d day, updated live", "The last %(num)d days, updated live",
                          dataset.rolling_days)
    first, last = _days(dataset, at)
    if first.date() == last.date():
        return t.gettext("On %(day)s", day=t.date(first))
    return t.gettext("From %(first)s to %(last)s", first=t.date(first), last=t.date(last))


def summary_text(t: Translator, dataset: Dataset) -> str:
    """How each row came about: every reading, or a summary of each bucket."""
    if not dataset.every:
        return t.gettext("Every reading as the kits measured it.")
    every = EVERY_NAMES.get(dataset.every)
    how = t.gettext(AGG_NAMES.get(dataset.agg or "", N_("mean")))
    if dataset.agg is None:
        how = t.gettext("mean (rain: sum)")
    if every is None:
        return t.gettext("A summary of each %(every)s: the %(how)s.", how=how, every=dataset.every)
    return t.gettext("A summary %(every)s: the %(how)s.", how=how, every=t.gettext(every))


def _href(base: str, name: str, query: str) -> str:
    return f"{base}/{name}?{query}" if query else f"{base}/{name}"


def dataset_facts(page: Page, db: Any, dataset: Dataset, at: datetime) -> dict[str, Any]:
    """What the class page and the teacher's page show of a dataset (one store lookup: its site)."""
    zone = parse_zone(dataset.timezone)
    t = page.t.in_zone(zone)
    code = sharecode.display(dataset.code)
    try:
        site_title = registry.get_site(db, dataset.site).title or dataset.site
    except NotFound:
        site_title = dataset.site
    link = page.absolute(f"/d/{code}")
    first, last = _days(dataset, at)
    citation = t.gettext("%(title)s. Lauks, %(site)s, kits %(kits)s, %(first)s – %(last)s. Dataset %(code)s. "
                         "%(link)s (accessed %(accessed)s).", title=dataset.title, site=site_title,
                         kits=", ".join(dataset.kits), first=first.strftime("%Y-%m-%d"), last=last.strftime("%Y-%m-%d"),
                         code=code, link=link, accessed=at.astimezone(zone).strftime("%Y-%m-%d"))
    base = f"/v1/datasets/{code}"
    # the zip's README in the reader's language
    downloads = [(t.gettext(label), _href(base, name, "&".join(p for p in (query, f"lang={t.locale}") if p)
                  if name == "dataset.zip" and t.locale != "en" else query)) for label, name, query in DOWNLOADS]
    quantities = [{"name": q, "label": quantity_label(t, q), "unit": CATALOG[q].unit,
                   "caption": with_unit(t, q), "series": f"/w/series/d/{code}?q={quote(q)}"}
                  for q in dataset.quantities]
    return {"code": code, "link": link, "site": dataset.site, "site_title": site_title, "kits": list(dataset.kits),
            "quantities": quantities, "window": window_text(t, dataset, at), "summary": summary_text(t, dataset),
            "zone": zone.key, "licence": dataset.licence, "citation": citation, "downloads": downloads,
            "rolling": dataset.rolling_days is not None}


@router.get("/d", include_in_schema=False)
async def code_form(request: Request, code: str = "") -> Response:
    page = Page.of(request)
    typed = code.strip()[:64]
    if typed:
        normal = sharecode.normalise(typed)
        target = sharecode.display(normal) if normal else quote(typed, safe="")
        return RedirectResponse(f"/d/{target}", status_code=303)
    return render(page, "code_form.html")


@router.get("/d/{code}", include_in_schema=False)
async def class_page(request: Request, code: str) -> Response:
    """The dataset of a code; a wrong or expired code is a friendly page (the store's NotFound and Gone)."""
    page = Page.of(request)
    at = now()
    with request.app.state.sessions() as db:
        try:
            dataset = dataset_for_code(request, db, code)
        except ApiError as error:
            if error.status != 429:
                raise
            wait = int(error.headers.get("Retry-After", "60"))
            raise PageError(429, "too_many_tries", wait_s=wait, headers={"Retry-After": str(wait)}) from None
        facts = dataset_facts(page, db, dataset, at)
    normal = sharecode.display(dataset.code)
    if code != normal:  # the address bar shows the code as it is written on the board
        return RedirectResponse(f"/d/{normal}", status_code=303)
    return render(page, "class.html", dataset=dataset, facts=facts, locale=page.t.locale)
