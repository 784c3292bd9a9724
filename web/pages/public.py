"""Pages: the home page (the sites, on a map and as a list) and a site's page (its kits as cards).

Both follow LAUKS_API_PUBLIC_READ (or a signed-in staff member). Sites are schools, so their place is public;
kits' coordinates are never put on these pages at all, so a kit in a pupil's garden cannot leak from here.
Each page is a few registry reads and at most three InfluxDB requests for all kits at once (web/sitedata.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from lauks.catalog import CATALOG
from lauks.influx import InfluxError
from metastore import registry
from metastore.db import Kit, Site
from web import sitedata
from web.i18n import Translator
from web.render import Page, render
from web.sparkline import spark

router = APIRouter()


@dataclass(frozen=True, slots=True)
class SiteItem:
    """A site as the home page lists it; ``online`` and ``silent`` are None when the store did not answer."""

    name: str
    title: str
    description: str
    latitude: float | None
    longitude: float | None
    kits: int
    online: int | None
    silent: int | None


def _map_sites(t: Translator, items: list[SiteItem]) -> list[dict[str, Any]]:
    """What web/static/map.js draws: sites with a place only, their counts already said in the reader's
    language (the script puts both in as text, never as HTML)."""
    out: list[dict[str, Any]] = []
    for s in items:
        if s.latitude is None or s.longitude is None:
            continue
        counts = "" if s.online is None or s.silent is None else " · ".join((
            t.gettext("Online: %(num)s", num=s.online),
            t.gettext("Silent: %(num)s", num=s.silent)))
        out.append({"title": s.title, "lat": s.latitude, "lon": s.longitude, "url": f"/s/{s.name}",
                    "online": bool(s.online), "counts": counts})
    return out


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> HTMLResponse:
    page = Page.of(request)
    settings = page.settings
    items: list[SiteItem] = []
    store_down = False
    if page.can_read:
        with request.app.state.sessions() as db:
            sites: list[Site] = registry.list_sites(db)
            kits: list[Kit] = list(db.scalars(select(Kit).where(Kit.retired_at.is_(None))))
        by_site: dict[str, list[str]] = {}
        for kit in kits:
            by_site.setdefault(kit.site, []).append(kit.name)
        now = page.now()
        status: dict[tuple[str, str], sitedata.Status] | None
        try:
            status = await sitedata.fetch_status(request.app.state.influx, settings.influx_database, None, now,
                                                  kits=[(kit.site, kit.name) for kit in kits],
                                                  names=sitedata.COUNT_FIELDS)
        except InfluxError:
            status, store_down = None, True  # the list still shows; the counts wait for the store
        for site in sites:
            names = by_site.get(site.name, [])
            online, silent = (sitedata.counts(site.name, names, status, settings.api_online_window_s, now)
                              if status is not None else (None, None))
            items.append(SiteItem(site.name, site.title, site.description, site.latitude, site.longitude,
                                  len(names), online, silent))
    tiles = settings.api_map_tiles_url
    return render(page, "home.html", sites=items, store_down=store_down, map_sites=_map_sites(page.t, items),
                  tiles=tiles, attribution=settings.api_map_attribution)


@dataclass(frozen=True, slots=True)
class ValueView:
    """One line of a card: the value in the reader's locale, its age when stale, its sparkline."""

    quantity: str
    label: str
    text: str  # "21,4 °C"
    stale: bool
    age: str  # "5 h", for a stale value
    measured: str  # the local time it was measured
    spark_path: str
    spark_label: str


@dataclass(frozen=True, slots=True)
class KitCard:
    name: str
    description: str
    kit_type: str
    online: bool
    heard: datetime | None
    heard_text: str  # "3 min ago"
    heard_at: str  # the local time
    battery: str | None
    rssi: str | None
    values: list[ValueView]


def value_text(t: Translator, quantity: str, value: float) -> str:
    """``21,4 °C``: rounded to the quantity's resolution, in the reader's locale, with its unit."""
    row = CATALOG[quantity]
    number = t.number(round(value, row.decimals))
    return f"{number}\u00a0{row.unit}" if row.unit else number


def _card(t: Translator, kit: Kit, live: sitedata.KitLive, now: datetime) -> KitCard:
    values: list[ValueView] = []
    for value in live.values:
        label = sitedata.quantity_label(t, value.quantity)
        line = spark(live.sparks.get(value.quantity, []))
        if line.low is None or line.high is None:
            spark_label = t.gettext("%(quantity)s: no readings in the last 24 hours", quantity=label)
        else:
            spark_label = t.gettext("%(quantity)s over the last 24 hours: from %(low)s to %(high)s",
                                    quantity=label, low=value_text(t, value.quantity, line.low),
                                    high=value_text(t, value.quantity, line.high))
        stale = sitedata.is_stale(value.time, now, live.threshold_s)
        values.append(ValueView(value.quantity, label, value_text(t, value.quantity, value.value), stale,
                                t.duration((now - value.time).total_seconds()), t.datetime(value.time, "short"),
                                line.path, spark_label))
    heard = live.status.heard if live.status else None
    battery, rssi = live.battery, live.rssi
    return KitCard(kit.name, kit.description, kit.kit_type, live.online, heard, t.ago(heard, now),
                   t.datetime(heard, "short"), value_text(t, "battery", battery) if battery is not None else None,
                   value_text(t, "rssi", rssi) if rssi is not None else None, values)


@router.get("/s/{site}", response_class=HTMLResponse)
async def site_page(site: str, request: Request) -> HTMLResponse:
    page = Page.of(request)
    page.require_reader()
    with request.app.state.sessions() as db:
        row = registry.get_site(db, site)  # NotFound: the friendly 404 page
        kits = registry.list_kits(db, site)
    now = page.now()
    settings = page.settings
    # A store that is down raises InfluxError: the friendly 503 page in the reader's language.
    live = await sitedata.fetch_site(request.app.state.influx, settings.influx_database, row.name, now,
                                     [kit.name for kit in kits])
    page.t = t = page.t.in_zone(row.timezone)  # times in the school's zone
    cards = [_card(t, kit, live.kit(row.name, kit.name, settings.api_online_window_s, now), now) for kit in kits]
    online = sum(1 for card in cards if card.online)
    return render(page, "site.html", site=row, cards=cards, online=online, silent=len(cards) - online,
                  zone=t.zone.key, latest_days=sitedata.LATEST_DAYS)
