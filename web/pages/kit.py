"""Pages: the kit page (the pupil's page): a chart per quantity, latest values, status and its history, and the
kit's rejections of the last days said in the reader's language. Its chart data (web/series.py) and live
updates (web/live.py) are mounted here too.

The page costs four InfluxDB requests, sent at once: latest values and status (web/sitedata.py, shared with the
site page), the status history (web/kitdata.py) and the rejections (web/rejections.py). A retired kit is a 410
page: it existed, and is gone (its data stays in datasets), which a 404 "no such kit" would deny.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from lauks.catalog import CATALOG
from metastore import registry
from metastore.location import shown_location
from web import kitdata, live, rejections, series, sitedata
from web.i18n import Translator
from web.pages.public import value_text
from web.render import Page, PageError, render

router = APIRouter()
router.include_router(series.router)
router.include_router(live.router)

RANGE_LABELS = {"24h": "24 h", "7d": "7 d", "30d": "30 d", "1y": "1 y"}


@dataclass(frozen=True)
class ValueRow:
    quantity: str
    label: str
    text: str
    unit: str
    decimals: int
    stale: bool
    age: str
    measured: str
    time: datetime


@dataclass(frozen=True)
class HistoryRow:
    kind: str
    when: str
    iso: str
    sentence: str


@dataclass(frozen=True)
class RejectionRow:
    reason: str
    sentence: str
    advice: str
    count: str
    when: str
    last_iso: str


def _history_sentence(t: Translator, event: kitdata.Event, now: datetime) -> str:
    if event.kind == "boot":
        if event.text:
            return t.gettext("The kit restarted (start number %(boot)s, firmware %(fw)s).", boot=event.number,
                             fw=event.text)
        return t.gettext("The kit restarted (start number %(boot)s).", boot=event.number)
    if event.kind == "offline" and event.end is not None:
        return t.gettext("No readings came for %(duration)s, until %(end)s.",
                         duration=t.duration((event.end - event.start).total_seconds()),
                         end=t.datetime(event.end, "short"))
    if event.kind == "silent":
        return t.gettext("No readings have come since then (%(duration)s).",
                         duration=t.duration((now - event.start).total_seconds()))
    if event.kind == "said_offline":
        return t.gettext("The kit said it was going offline.")
    return rejections.Plurals(t).ngettext("%(num)d reading arrived late, sent after the kit was back online.",
                      "%(num)d readings arrived late, sent after the kit was back online.", event.number or 0)


def _rejection_row(t: Translator, found: rejections.RejectionGroup, now: datetime) -> RejectionRow:
    said = rejections.explain(t, found.newest)
    count = t.gettext("%(count)s or more", count=found.count) if found.capped else str(found.count)
    if found.count == 1:
        when = t.gettext("On %(last)s.", last=t.datetime(found.last, "short"))
    else:
        when = t.gettext("From %(first)s to %(last)s.", first=t.datetime(found.first, "short"),
                         last=t.datetime(found.last, "short"))
    return RejectionRow(found.reason, said.sentence, said.advice, count, when, found.last.isoformat())


@router.get("/s/{site}/{kit}", response_class=HTMLResponse)
async def kit_page(site: str, kit: str, request: Request) -> HTMLResponse:
    page = Page.of(request)
    page.require_reader()
    with request.app.state.sessions() as db:
        site_row = registry.get_site(db, site)
        kit_row = registry.get_kit(db, site, kit)
    page.t = t = page.t.in_zone(site_row.timezone)
    if kit_row.retired_at is not None:
        raise PageError(410, "kit_retired", message=t.gettext(
            "Kit %(kit)s is retired since %(date)s: it no longer sends readings. Its site's page shows the kits "
            "that measure now.", kit=kit_row.name, date=t.date(kit_row.retired_at)))
    range_name, _span = series.parse_range(request.query_params.get("range"))
    now = page.now()
    settings = page.settings
    client, database = request.app.state.influx, settings.influx_database
    latest, status = await asyncio.gather(sitedata.fetch_latest(client, database, site, now, kits=[kit]),
                                          sitedata.fetch_status(client, database, site, now, kits=[(site, kit)]))
    kit_live = sitedata.kit_live(kit, status.get((site, kit)), latest.get(kit, {}), {},
                                 settings.api_online_window_s, now)
    (events, boot), found = await asyncio.gather(
        kitdata.fetch_history(client, database, site, kit, kit_live.threshold_s, now),
        rejections.fetch(client, database, site, kit, now))
    values = [ValueRow(v.quantity, sitedata.quantity_label(t, v.quantity), value_text(t, v.quantity, v.value),
                       CATALOG[v.quantity].unit, CATALOG[v.quantity].decimals,
                       sitedata.is_stale(v.time, now, kit_live.threshold_s), t.duration((now - v.time).total_seconds()),
                       t.datetime(v.time, "short"), v.time)
              for v in kit_live.values]
    history = [HistoryRow(e.kind, t.datetime(e.start, "short"), e.start.isoformat(), _history_sentence(t, e, now))
               for e in events]
    if page.staff is not None:
        latitude, longitude = kit_row.latitude, kit_row.longitude
    else:
        latitude, longitude = shown_location(kit_row.latitude, kit_row.longitude, kit_row.location_precision)
    heard = kit_live.status.heard if kit_live.status else None
    status_row = kit_live.status
    return render(
        page, "kit.html", site=site_row, kit=kit_row, live=kit_live, values=values, history=history,
        rejections=[_rejection_row(t, g, now) for g in found], range_name=range_name, ranges=RANGE_LABELS,
        heard=heard, heard_text=t.ago(heard, now), heard_at=t.datetime(heard, "short"),
        battery=value_text(t, "battery", kit_live.battery) if kit_live.battery is not None else None,
        rssi=value_text(t, "rssi", kit_live.rssi) if kit_live.rssi is not None else None,
        fw=status_row.fw if status_row else None, boot=boot,
        latitude=latitude, longitude=longitude, exact=page.staff is not None or kit_row.location_precision == "exact",
        zone=t.zone.key, days=rejections.DAYS, history_days=kitdata.DAYS,
        live_url=f"/w/live/kit/{site_row.name}/{kit_row.name}")
