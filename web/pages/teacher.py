"""Pages: the teacher's datasets (``/teach``), the builder (``/teach/new``) and one dataset's page (``/teach/{code}``).

Every form posts with the CSRF token, and every post ends in a 303 to a page to look at (post, redirect, get),
so reloading never publishes twice. Publishing goes through the same function as ``POST /v1/datasets``, with its
checks; its refusals (English sentences for programs) are worded here by their code, in the reader's language.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from api.errors import ApiError
from api.query import parse_zone
from api.routers import datasets as api_datasets
from api.schemas import DatasetIn
from lauks.catalog import CATALOG
from lauks.derived import DERIVED
from metastore import registry, sharecode
from metastore.db import Dataset, Site, now
from metastore.errors import StoreError
from web import qr
from web.i18n import N_, Translator
from web.pages.classes import dataset_facts, window_text, with_unit
from web.render import Page, PageError, render

router = APIRouter()
EVERY = ("raw", "10m", "1h", "1d")
AGGS = ("mean", "min", "max")
EXTEND_DAYS = (7, 30)
# The store's and the API's refusals, by code, as a teacher reads them.
REFUSALS: dict[str, str] = {
    "expiry_in_past": N_("The expiry date has passed. Pick a day to come, or leave it empty so the code never "
                         "expires."),
    "bad_rolling_days": N_("The number of days must be from 1 to 366."),
    "no_window": N_("Choose the time: a first and a last day, or the last few days."),
    "window_twice": N_("Choose the time: a first and a last day, or the last few days."),
    "reversed_window": N_("The last day is before the first day. Swap them."),
    "window_too_large": N_("This is too long for every single reading. Choose a summary every hour or every day, "
                           "or a shorter time."),
    "bad_time": N_("A date is not valid. Write it like 2025-03-01."),
    "time_out_of_range": N_("A date is outside the years 2000 to 2199. Check the year."),
    "no_kits": N_("This site has no kits yet. Register a kit first."),
    "unknown_kit": N_("Choose at least one kit of this site."),
    "unknown_quantity": N_("Choose at least one quantity."),
    "no_quantities": N_("Choose at least one quantity."),
    "too_long": N_("A text is too long: a title may have up to 200 characters, a description up to 5000."),
    "bad_text": N_("A text holds a character that cannot be saved. Remove it and try again."),
    "agg_needs_every": N_("Choose how often to summarise the readings."),
    "bad_every": N_("Choose how often to summarise the readings."),
    "no_title": N_("Give the dataset a title, so pupils know what it is."),
    "bad_date": N_("A date is not valid. Write it like 2025-03-01."),
    "fixed_window": N_("A dataset with fixed days keeps them. Publish a new dataset for other days."),
    "unknown_site": N_("Choose one of the sites."),
    "never_expires": N_("This code never expires, so there is nothing to extend."),
}


def refusal(t: Translator, code: str) -> str:
    message = REFUSALS.get(code)
    if message is None:
        return t.gettext("This could not be saved. Check what you entered and try again.")
    return t.gettext(message)


def _redirect(path: str, **query: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?{urlencode(query)}" if query else path, status_code=303)


async def _form(request: Request, page: Page) -> FormData:
    form = await request.form(max_files=0, max_fields=200)
    value = form.get("csrf")
    page.require_csrf(value if isinstance(value, str) else None)
    return form


def _text(form: FormData, name: str, limit: int = 5000) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def _list(form: FormData, name: str) -> list[str]:
    return [v for v in form.getlist(name) if isinstance(v, str) and v][:100]


def _last_day(moment: datetime, zone: ZoneInfo) -> datetime:
    """The last local day a code works, as a time in it: it expires at the midnight after (``_expiry``)."""
    return (moment - timedelta(seconds=1)).astimezone(zone)


def _expiry(day: str, zone: ZoneInfo) -> datetime | None:
    """``2025-06-30`` -> the midnight that ends that day in the dataset's zone: the code works all that day."""
    if not day:
        return None
    try:
        last = date.fromisoformat(day)
        return datetime.combine(last + timedelta(days=1), time(0), zone)
    except (ValueError, OverflowError):
        raise ApiError(400, "bad_date", "not a date") from None


def _own(db: Any, code: str) -> Dataset:
    """The dataset of a code for staff: expired ones too (to extend them). A staff member is not guessing, so
    an unknown code here is not counted against the address's budget of wrong codes."""
    return registry.get_dataset(db, code)


@dataclass
class Choices:
    """What the builder's form holds, so a refused or previewed form comes back as the teacher left it."""

    site: str = ""
    kits: list[str] = field(default_factory=list)
    quantities: list[str] = field(default_factory=lambda: ["temperature"])
    window: str = "rolling"
    rolling_days: str = "7"
    start: str = ""
    end: str = ""
    every: str = "raw"
    agg: str = "mean"
    title: str = ""
    description: str = ""
    expires: str = ""

    @classmethod
    def of(cls, form: FormData) -> Choices:
        every = _text(form, "every", 8)
        agg = _text(form, "agg", 8)
        return cls(site=_text(form, "site", 64), kits=_list(form, "kits"),
                   quantities=[q for q in _list(form, "quantities") if q in CATALOG or q in DERIVED],
                   window="fixed" if _text(form, "window") == "fixed" else "rolling",
                   rolling_days=_text(form, "rolling_days", 6), start=_text(form, "start", 10),
                   end=_text(form, "end", 10), every=every if every in EVERY else "raw",
                   agg=agg if agg in AGGS else "mean", title=_text(form, "title", 300),
                   description=_text(form, "description", 6000), expires=_text(form, "expires", 10))

    def preview_query(self, quantity: str) -> str:
        query: dict[str, str] = {"site": self.site, "kits": ",".join(self.kits), "q": quantity}
        if self.window == "rolling":
            query["rolling_days"] = self.rolling_days
        else:
            query.update(start=self.start, end=self.end)
        if self.every != "raw":
            query.update(every=self.every, agg=self.agg)
        return "/w/series/preview?" + urlencode(query)

    def dataset_in(self, zone: ZoneInfo) -> DatasetIn:
        if not self.title:
            raise ApiError(400, "no_title", "no title")
        try:
            days = int(self.rolling_days) if self.window == "rolling" else None
        except ValueError:
            raise ApiError(400, "bad_rolling_days", "not a number") from None
        try:
            return DatasetIn(title=self.title, description=self.description, site=self.site, kits=self.kits or None,
                             quantities=self.quantities, rolling_days=days,
                             start=self.start or None if days is None else None,
                             end=self.end or None if days is None else None,
                             every=None if self.every == "raw" else self.every,
                             agg=None if self.every == "raw" else self.agg,
                             expires_at=_expiry(self.expires, zone))
        except ValidationError as error:
            where = {str(e["loc"][0]) for e in error.errors() if e.get("loc")}
            code = ("too_long" if where & {"title", "description"} else "unknown_kit" if "kits" in where
                    else "no_quantities" if "quantities" in where else "unknown_site" if "site" in where else "")
            raise ApiError(400, code or "invalid", "not valid") from None


def _sites(db: Any) -> list[Site]:
    return registry.list_sites(db)


def _zone_of(site: Site | None, page: Page) -> ZoneInfo:
    return parse_zone((site.timezone if site else None) or page.settings.api_timezone)


def _builder(page: Page, choices: Choices, *, status: int = 200, problem: str | None = None,
             preview: bool = False) -> Response:
    with page.request.app.state.sessions() as db:
        sites = _sites(db)
        site = next((s for s in sites if s.name == choices.site), None)
        kits = [k.name for k in registry.list_kits(db, site.name)] if site else []
    if site is not None and not choices.kits:
        choices.kits = list(kits)
    quantities = [(name, with_unit(page.t, name)) for name in CATALOG]
    derived = [(name, with_unit(page.t, name)) for name in DERIVED]
    # the preview charts the measured quantities (a derived one has no series of its own)
    charts = ([(with_unit(page.t, q), choices.preview_query(q), CATALOG[q].unit) for q in choices.quantities
               if q in CATALOG] if preview else [])
    return render(page, "teach_new.html", status=status, sites=sites, site=site, kits=kits, choices=choices,
                  quantities=quantities, derived=derived, every_choices=EVERY, agg_choices=AGGS, problem=problem,
                  charts=charts, zone=_zone_of(site, page).key)


def _summary(page: Page, dataset: Dataset, at: datetime) -> dict[str, Any]:
    zone = parse_zone(dataset.timezone)
    t = page.t.in_zone(zone)
    code = sharecode.display(dataset.code)
    expired = dataset.expires_at is not None and dataset.expires_at <= at
    return {"code": code, "title": dataset.title, "link": page.absolute(f"/d/{code}"),
            "window": window_text(t, dataset, at), "expired": expired,
            "expires": None if dataset.expires_at is None else t.date(_last_day(dataset.expires_at, zone)),
            "rolling": dataset.rolling_days is not None, "never": dataset.expires_at is None}


DONE = {"published": N_("The dataset is published. Give your class the code or the link."),
        "saved": N_("Your changes are saved."), "extended": N_("The code now works for longer."),
        "deleted": N_("The dataset is deleted. Its code no longer works.")}


def _done(page: Page) -> str | None:
    message = DONE.get(page.request.query_params.get("done", ""))
    return page.t.gettext(message) if message else None


@router.get("/teach", include_in_schema=False)
async def teach(request: Request) -> Response:
    page = Page.of(request)
    staff = page.require_staff()
    at = now()
    with request.app.state.sessions() as db:
        rows = registry.list_datasets(db, created_by=staff.name)
        found = [_summary(page, d, at) for d in reversed(rows)]  # newest first
    problem = request.query_params.get("problem", "")
    return render(page, "teach_list.html", datasets=found, done=_done(page), extend_days=EXTEND_DAYS,
                  problem=refusal(page.t, problem) if problem else None)


@router.get("/teach/new", include_in_schema=False)
async def builder(request: Request, site: str = "") -> Response:
    page = Page.of(request)
    page.require_staff()
    return _builder(page, Choices(site=site[:64]))


@router.post("/teach/new", include_in_schema=False)
async def publish(request: Request) -> Response:
    page = Page.of(request)
    staff = page.require_staff()
    form = await _form(request, page)
    choices = Choices.of(form)
    if _text(form, "action") != "publish":
        return _builder(page, choices, preview=bool(choices.site))
    try:
        with request.app.state.sessions() as db:
            site = registry.get_site(db, choices.site)
            body = choices.dataset_in(_zone_of(site, page))
            made = api_datasets.create_dataset(body, db, page.settings, staff)
    except (ApiError, StoreError) as error:
        return _builder(page, choices, status=400, problem=refusal(page.t, error.code), preview=bool(choices.site))
    return _redirect(f"/teach/{made['code']}", done="published")


@router.get("/teach/{code}", include_in_schema=False)
async def dataset_page(request: Request, code: str) -> Response:
    page = Page.of(request)
    page.require_staff()
    at = now()
    with request.app.state.sessions() as db:
        dataset = _own(db, code)
        facts = dataset_facts(page, db, dataset, at)
    zone = parse_zone(dataset.timezone)
    summary = _summary(page, dataset, at)
    expires_value = "" if dataset.expires_at is None else f"{_last_day(dataset.expires_at, zone):%Y-%m-%d}"
    problem = request.query_params.get("problem", "")
    return render(page, "teach_dataset.html", d=summary, facts=facts, dataset=dataset, done=_done(page),
                  problem=refusal(page.t, problem) if problem else None, expires_value=expires_value,
                  extend_days=EXTEND_DAYS, confirm=request.query_params.get("confirm") == "delete",
                  qr=qr.svg(summary["link"], page.t.gettext("QR code of the link %(link)s", link=summary["link"])))


@router.post("/teach/{code}/edit", include_in_schema=False)
async def edit(request: Request, code: str) -> Response:
    page = Page.of(request)
    page.require_staff()
    form = await _form(request, page)
    title, description = _text(form, "title", 300), _text(form, "description", 6000)
    try:
        with request.app.state.sessions() as db:
            dataset = _own(db, code)
            zone = parse_zone(dataset.timezone)
            if not title:
                raise ApiError(400, "no_title", "no title")
            changes: dict[str, Any] = {"title": title, "description": description,
                                       "expires_at": _expiry(_text(form, "expires", 10), zone)}
            if dataset.rolling_days is not None and _text(form, "rolling_days"):
                try:
                    changes["rolling_days"] = int(_text(form, "rolling_days", 6))
                except ValueError:
                    raise ApiError(400, "bad_rolling_days", "not a number") from None
            registry.edit_dataset(db, code, **changes)
            shown = sharecode.display(dataset.code)
    except (ApiError, StoreError) as error:
        if error.code == "unknown_code":
            raise
        return _redirect(f"/teach/{sharecode.display(sharecode.normalise(code) or code)}", problem=error.code)
    return _redirect(f"/teach/{shown}", done="saved")


@router.post("/teach/{code}/extend", include_in_schema=False)
async def extend(request: Request, code: str) -> Response:
    """Move the expiry on by some days (from today when it has passed), or to a day chosen."""
    page = Page.of(request)
    page.require_staff()
    form = await _form(request, page)
    back = _text(form, "back", 20)
    try:
        with request.app.state.sessions() as db:
            dataset = _own(db, code)
            zone = parse_zone(dataset.timezone)
            shown = sharecode.display(dataset.code)
            day = _text(form, "until", 10)
            if day:
                expires = _expiry(day, zone)
            else:
                try:
                    days = int(_text(form, "days", 4))
                except ValueError:
                    raise ApiError(400, "bad_date", "not a number") from None
                if days not in EXTEND_DAYS:
                    raise ApiError(400, "bad_date", "not an offered step")
                if dataset.expires_at is None:
                    raise ApiError(400, "never_expires", "never expires")
                last = _last_day(max(dataset.expires_at, now()), zone).date() + timedelta(days=days)
                expires = datetime.combine(last + timedelta(days=1), time(0), zone)
            registry.edit_dataset(db, code, expires_at=expires)
    except (ApiError, StoreError) as error:
        if error.code == "unknown_code":
            raise
        target = "/teach" if back == "list" else f"/teach/{sharecode.display(sharecode.normalise(code) or code)}"
        return _redirect(target, problem=error.code)
    return _redirect("/teach" if back == "list" else f"/teach/{shown}", done="extended")


@router.post("/teach/{code}/delete", include_in_schema=False)
async def delete(request: Request, code: str) -> Response:
    page = Page.of(request)
    staff = page.require_staff()
    form = await _form(request, page)
    if _text(form, "confirm") != "yes":
        raise PageError(400, "not_confirmed",
                        page.t.gettext("Nothing was deleted. Open the dataset and confirm there that you want to "
                                       "delete it."))
    with request.app.state.sessions() as db:
        api_datasets.delete_dataset(code, db, page.settings, staff)  # the row, then its kept files
    return _redirect("/teach", done="deleted")
