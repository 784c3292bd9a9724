"""Pages: the staff fleet page, ``/fleet``: every kit of every school, what needs a visit first.

The facts come from ``web.fleetdata`` (a few InfluxDB statements for all kits, sent at once); this module
only turns them into sentences in the reader's language and renders them.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from dashboards.alerts import REJECTION_BURST
from dashboards.definition import LOW_BATTERY_V
from metastore import registry
from metastore.db import Kit
from web import fleetdata
from web.i18n import N_, Translator
from web.render import Page, PageError, render

router = APIRouter()

# Each rejection reason (lauks.contract.Reason) as a short name for the staff's table.
REASON_NAMES = {
    "too_large": N_("Message too large"),
    "not_json": N_("Not JSON"),
    "not_an_object": N_("Not a JSON object"),
    "unsupported_version": N_("Unknown message version"),
    "kit_mismatch": N_("Wrong kit name in the message"),
    "bad_field": N_("Bad message field"),
    "bad_sample": N_("Bad sample"),
    "no_time": N_("Sample without a time"),
    "bad_time": N_("Bad sample time"),
    "time_in_future": N_("Time in the future"),
    "time_too_old": N_("Time too old"),
    "unknown_quantity": N_("Unknown quantity"),
    "not_a_number": N_("Value is not a number"),
    "out_of_range": N_("Value out of range"),
    "rate_limited": N_("Too many messages"),
}


# A kit's over-the-air update states (lauks.schema.UPDATE_STATES), as the page names them.
UPDATE_STATE_NAMES = {
    "offered": N_("Offered"),
    "downloading": N_("Downloading"),
    "staged": N_("Downloaded, switches at the next restart"),
    "trial": N_("On trial (not yet confirmed)"),
    "confirmed": N_("Confirmed"),
    "rolled_back": N_("Rolled back to the previous version"),
    "failed": N_("Failed"),
}


@dataclass(frozen=True)
class Flag:
    """One issue of a kit as the page shows it: a badge class and its sentence."""

    css: str
    text: str


def flags(row: fleetdata.FleetRow, t: Translator) -> list[Flag]:
    """The badges of a kit's issues. Counts are written "what: N", so that no sentence needs plural forms."""
    kit, made = row.kit, []
    for code in row.issues:
        if code == "silent":
            text = (t.gettext("Not heard for more than %(days)s days", days=fleetdata.LOOKBACK.days)
                    if row.silence_s is None else t.gettext("Silent for %(time)s", time=t.duration(row.silence_s)))
            made.append(Flag("silent", text))
        elif code == "offline":
            made.append(Flag("silent", t.gettext("Offline (it said goodbye)")))
        elif code == "low_battery":
            made.append(Flag("silent", t.gettext("Low battery: %(volts)s V", volts=t.number(kit.battery, 2))))
        elif code == "failed_sensors":
            made.append(Flag("warn", t.gettext("Sensor failed: %(names)s", names=", ".join(kit.failed_sensors))))
        elif code == "rejection_burst":
            made.append(Flag("warn", t.gettext("Rejections in the last hour: %(count)s", count=kit.rejected_1h)))
        elif code == "update_failed":
            made.append(Flag("warn", t.gettext("Update to %(version)s failed", version=kit.update_version or "?")))
        elif code == "dropped":
            made.append(Flag("warn", t.gettext("Samples dropped: %(count)s", count=kit.dropped or 0)))
        elif code == "old_firmware":
            made.append(Flag("stale", t.gettext("Old firmware")))
        elif code == "backfill":
            made.append(Flag("stale", t.gettext("Late samples today: %(count)s", count=kit.late_24h)))
        elif code == "unregistered":
            made.append(Flag("stale", t.gettext("Not in the register")))
    return made


def _registered(request: Request, site: str | None) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(every site's name and title, the registered kits' (site, kit)) of sites and kits not retired."""
    with request.app.state.sessions() as db:
        sites = [(s.name, s.title or s.name) for s in registry.list_sites(db)]
        names = {name for name, _title in sites}
        if site is not None and site not in names:
            raise PageError(404, "unknown_site")
        statement = select(Kit.site, Kit.name).where(Kit.retired_at.is_(None))
        if site is not None:
            statement = statement.where(Kit.site == site)
        kits = [(s, k) for s, k in db.execute(statement) if s in names]
    return sites, kits


@router.get("/fleet", response_class=HTMLResponse)
async def fleet(request: Request, site: str = "") -> HTMLResponse:
    page = Page.of(request)
    page.require_staff()
    settings = page.settings
    chosen = site.strip() or None
    sites, registered = _registered(request, chosen)
    now = page.now()
    backfill = getattr(request.app.state, "fleet_backfill", None)
    if backfill is None:  # the hours of late samples kept between page loads (one app, one fleet)
        backfill = request.app.state.fleet_backfill = fleetdata.BackfillHours()
    facts = await fleetdata.fetch(request.app.state.influx, settings.influx_database, registered, now, chosen,
                                  backfill)
    made = fleetdata.rows(facts, now, settings.api_online_window_s)
    kits = [row.kit for row in made]
    return render(page, "fleet.html", sites=sites, chosen=chosen, rows=made,
                  flags={row.kit.key: flags(row, page.t) for row in made},
                  summary=fleetdata.summary(made), firmware=fleetdata.firmware_counts(kits),
                  newest_fw=fleetdata.newest_version(k.fw for k in kits if k.fw),
                  old_firmware=[row.kit for row in made if "old_firmware" in row.issues],
                  rejections=fleetdata.rejection_rows(kits), reason_names=REASON_NAMES,
                  updates=fleetdata.update_rows(kits), update_state_names=UPDATE_STATE_NAMES,
                  backfill=sorted((k for k in kits if k.late_24h), key=lambda k: (-k.late_24h, k.site, k.kit)),
                  site_titles=dict(sites), low_battery_v=LOW_BATTERY_V, burst=REJECTION_BURST,
                  lookback_days=fleetdata.LOOKBACK.days, online_window_min=settings.api_online_window_s // 60)
