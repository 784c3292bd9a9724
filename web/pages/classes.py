"""Pages: a class dataset by its share code (``/d/{code}``), and the small form to type a code (``/d``).

No account: the code is the key, so every lookup goes through ``api.deps.dataset_for_code``, which forgives
the way a pupil types it (case, spaces, dashes) and spends the address's budget of wrong codes. The files are
the API's own downloads (``/v1/datasets/{code}/...``) and the charts' data is ``/w/series/d/{code}``
(web/series.py): the page only links to them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from urllib.parse import quote

from babel import Locale
from babel.dates import format_skeleton
from babel.lists import format_list
from babel.units import format_unit
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from api import dataset as datasets
from api.deps import dataset_for_code
from api.errors import ApiError
from api.gaps import Gap, find_gaps, kit_intervals
from api.query import parse_zone
from lauks.catalog import CATALOG
from lauks.derived import DERIVED
from lauks.influx import InfluxError
from metastore import registry, sharecode
from metastore.db import Dataset, now
from metastore.errors import NotFound
from web.i18n import N_, Translator
from web.render import Page, PageError, render
from web.sitedata import quantity_label

router = APIRouter()
log = logging.getLogger(__name__)

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


# What a pupil reads about each derived quantity (lauks.derived): its name, and how it is worked out. The formulas
# are those of lauks.derived, whose reference the page shows beside them.
DERIVED_WORDS: dict[str, tuple[str, str]] = {
    "dew_point": (N_("Dew point"), N_(
        "Worked out from the air temperature T and the relative humidity RH with the Magnus formula: "
        "Td = b·γ / (a − γ), where γ = ln(RH / 100) + a·T / (b + T), a = 17.625 and b = 243.04 °C.")),
    "sea_level_pressure": (N_("Sea-level pressure"), N_(
        "The kit's air pressure p brought down to sea level from the site's elevation h (in metres) and the air "
        "temperature T: p0 = p · (1 + 0.0065·h / (T + 273.15))^5.25588.")),
    "temperature_daily_min": (N_("Lowest temperature of the day"), N_(
        "The lowest temperature reading of each day, from midnight to midnight in the school's time zone.")),
    "temperature_daily_max": (N_("Highest temperature of the day"), N_(
        "The highest temperature reading of each day, from midnight to midnight in the school's time zone.")),
    "temperature_daily_mean": (N_("Mean temperature of the day"), N_(
        "The mean of all temperature readings of each day, from midnight to midnight in the school's time zone.")),
    "rain_daily_total": (N_("Rain of the day"), N_(
        "All the rain of each day added up, from midnight to midnight in the school's time zone.")),
}


def label_of(t: Translator, name: str) -> str:
    """A stored or derived quantity's short name in the reader's language."""
    words = DERIVED_WORDS.get(name)
    if words is not None:
        return t.gettext(words[0])
    return quantity_label(t, name) if name in CATALOG else name


def unit_of(name: str) -> str:
    spec = CATALOG.get(name) or DERIVED.get(name)
    return spec.unit if spec is not None else ""


def with_unit(t: Translator, name: str) -> str:
    """``Air temperature (°C)``: a chart's caption and a checkbox's label."""
    unit = unit_of(name)
    return f"{label_of(t, name)} ({unit})" if unit else label_of(t, name)


def derived_facts(t: Translator, name: str, elevation_m: float | None) -> dict[str, Any] | None:
    """How the class page tells a derived quantity: how it is worked out, its source, and why it cannot be."""
    derived = DERIVED.get(name)
    if derived is None:
        return None
    words = DERIVED_WORDS.get(name)
    missing = None
    if derived.unavailable(elevation_m) is not None:
        missing = t.gettext("This site's elevation is not set, so this quantity cannot be worked out. A teacher "
                            "can set the elevation on the site.")
    return {"how": t.gettext(words[1]) if words else derived.formula, "reference": derived.reference,
            "missing": missing}


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
    elevation_m: float | None = None
    try:
        site = registry.get_site(db, dataset.site)
        site_title, elevation_m = site.title or dataset.site, site.elevation_m
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
    # a derived quantity has no chart of its own (the charts draw stored readings): the list says what it is
    quantities = [{"name": q, "label": label_of(t, q), "unit": unit_of(q), "caption": with_unit(t, q),
                   "series": f"/w/series/d/{code}?q={quote(q)}", "derived": derived_facts(t, q, elevation_m)}
                  for q in dataset.quantities]
    return {"code": code, "link": link, "site": dataset.site, "site_title": site_title, "kits": list(dataset.kits),
            "quantities": quantities, "window": window_text(t, dataset, at), "summary": summary_text(t, dataset),
            "zone": zone.key, "licence": dataset.licence, "citation": citation, "downloads": downloads,
            "rolling": dataset.rolling_days is not None}


# --- gaps ----------------------------------------------------------------------------------------------------

GAPS_SHOWN = 5  # of each kit, the longest, in time order; the zip's gaps.csv has every one
GAPS_WAIT_S = 4.0  # a page waits this long for a long window's gaps, then says they are being worked out
ROLLING_GAPS_S = 60.0  # the gaps of a window that goes on (rolling, or ending later) are worked out again after this
GAPS_KEPT = 128  # datasets whose gaps the process keeps


@dataclass
class _Gaps:
    made: datetime  # the time the gaps were worked out for: a gap that ends then is still going on
    task: asyncio.Task[list[Gap]]


_GAPS: OrderedDict[tuple[object, ...], _Gaps] = OrderedDict()


async def dataset_gaps(request: Request, dataset: Dataset, at: datetime) -> tuple[str, list[Gap], datetime]:
    """("ok", gaps, when) or ("pending" | "unavailable", [], at): the dataset's gaps, worked out once for a fixed
    window and once a minute for a rolling one, by a task that goes on when a page stops waiting for it."""
    start, end = datasets.window_of(dataset, at)
    database = request.app.state.settings.influx_database
    rolling = dataset.rolling_days is not None
    key = (database, dataset.code, dataset.site, tuple(dataset.kits), tuple(dataset.quantities),
           dataset.rolling_days if rolling else (start, end))
    loop = asyncio.get_running_loop()
    kept = _GAPS.get(key)
    # a window still open when its gaps were worked out (rolling, or ending later) goes on: worked out again
    moving = kept is not None and (rolling or end > kept.made)
    stale = kept is not None and (kept.task.get_loop() is not loop or (kept.task.done() and (
        kept.task.cancelled() or kept.task.exception() is not None
        or (moving and (at - kept.made).total_seconds() > ROLLING_GAPS_S))))
    if kept is None or stale:
        client = request.app.state.influx

        async def work() -> list[Gap]:
            intervals = await kit_intervals(client, database, dataset.site, list(dataset.kits))
            return await find_gaps(client, database, dataset.site, list(dataset.kits), list(dataset.quantities),
                                   start, end, intervals, now=at)

        kept = _GAPS[key] = _Gaps(at, loop.create_task(work()))
        kept.task.add_done_callback(lambda task: task.cancelled() or task.exception())  # retrieved, if unseen
        while len(_GAPS) > GAPS_KEPT:
            _GAPS.popitem(last=False)
    _GAPS.move_to_end(key)
    try:
        found = await asyncio.wait_for(asyncio.shield(kept.task), GAPS_WAIT_S)
    except TimeoutError:
        return "pending", [], at
    except InfluxError as error:
        log.warning("the gaps of dataset %s could not be read: %s", dataset.code, error)
        return "unavailable", [], at
    return "ok", found, kept.made


@functools.cache
def _babel(locale: str) -> Locale:
    return Locale.parse("en_GB" if locale == "en" else locale)  # as web.i18n.Translator reads its locale


def moment_text(t: Translator, moment: datetime, with_year: bool) -> str:
    """``3 March, 14:20`` (``3. marts 14:20``, ``kovo 3 d. 14:20``, ``3 марта, 14:20``) in the reader's zone."""
    babel = _babel(t.locale)
    local = t.local(moment)
    day = format_skeleton("yMMMMd" if with_year else "MMMMd", local, locale=babel)
    return str(babel.datetime_formats["medium"]).replace("'", "").replace("{1}", day).replace("{0}", t.time(local))


def span_text(t: Translator, seconds: float) -> str:
    """``17 hrs 45 mins``, ``2 days 3 hrs``: a gap's length in two units at most, to the minute."""
    babel = _babel(t.locale)
    if seconds < 60:
        parts = [(round(seconds), "duration-second")]
    else:
        days, minutes = divmod(round(seconds / 60), 1440)
        hours, minutes = divmod(minutes, 60)
        parts = ([(days, "duration-day"), (hours, "duration-hour")] if days else
                 [(hours, "duration-hour"), (minutes, "duration-minute")] if hours else [(minutes, "duration-minute")])
    texts = [format_unit(n, unit, length="short", locale=babel) for n, unit in parts if n] or [
        format_unit(0, parts[0][1], length="short", locale=babel)]
    return format_list(texts, style="unit-narrow", locale=babel)


def gap_facts(t: Translator, dataset: Dataset, state: str, found: list[Gap], made: datetime,
              with_year: bool = False) -> dict[str, Any]:
    """What the class page lists of the gaps: per kit its longest few as sentences, and how many more. The
    times need their year only when the window runs over New Year (the page says the window's year)."""
    if state != "ok":
        return {"state": state, "kits": []}
    by_kit: dict[str, list[Gap]] = {}
    for gap in found:
        by_kit.setdefault(gap.kit, []).append(gap)
    kits = []
    for kit in dataset.kits:
        gaps = by_kit.get(kit)
        if not gaps:
            continue
        shown = sorted(sorted(gaps, key=lambda g: -g.seconds)[:GAPS_SHOWN], key=lambda g: g.start)
        lines = []
        for gap in shown:
            values = {"kit": kit, "start": moment_text(t, gap.start, with_year), "duration": span_text(t, gap.seconds)}
            if gap.end >= made:
                lines.append(t.gettext("%(kit)s: no data since %(start)s (%(duration)s so far)", **values))
            else:
                lines.append(t.gettext("%(kit)s: no data from %(start)s to %(end)s (%(duration)s)",
                                       end=moment_text(t, gap.end, with_year), **values))
        more = len(gaps) - len(shown)
        kits.append({"kit": kit, "lines": lines, "more": t.ngettext(
            "… and %(num)d shorter gap: the zip's gaps.csv lists every gap.",
            "… and %(num)d shorter gaps: the zip's gaps.csv lists every gap.", more) if more else None})
    return {"state": state, "kits": kits}


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
    state, found, made = await dataset_gaps(request, dataset, at)
    first, last = _days(dataset, at)
    gaps = gap_facts(page.t.in_zone(parse_zone(dataset.timezone)), dataset, state, found, made,
                     first.year != last.year)
    return render(page, "class.html", dataset=dataset, facts=facts, gaps=gaps, locale=page.t.locale)
