"""The pure core: which conditions a kit's facts show, how incidents open and recover, and which mails they
call for under a site's settings. No I/O: ``outbox`` keeps what this decides, ``service`` brings the facts.

The thresholds are the fleet page's and the Grafana alerts' own (``web.fleetdata.KitFacts``), so the page, the
dashboards and the mail never disagree; only the number of silent intervals is the site's choice.

An incident's two notices say what became of its mails: ``pending`` (nothing decided yet), ``queued`` (a mail per
contact is in the outbox), ``digest`` (told in a daily digest), ``skipped`` (never mailed: it opened and ended
while mail was off for a holiday, or its kit was retired).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from alerting.policy import Contact, SitePolicy
from dashboards.definition import LOW_BATTERY_V
from web.fleetdata import KitFacts

KINDS = ("silent", "low_battery", "rejection_burst", "update_failed")
# A battery at the threshold flickers across it with the load and the temperature: it is fine again only this
# much above, or one kit would mail twice an hour.
BATTERY_RECOVERY_MARGIN_V = 0.1
PENDING, QUEUED, DIGEST, SKIPPED = "pending", "queued", "digest", "skipped"
Verdict = dict[str, Any] | Literal["fine", "unknown"]  # the condition's facts when it holds


@dataclass
class Incident:
    site: str
    kit: str
    kind: str
    detail: dict[str, Any]
    opened_at: datetime
    recovered_at: datetime | None = None
    open_notice: str = PENDING
    recovery_notice: str = PENDING
    id: int | None = None

    @property
    def is_open(self) -> bool:
        return self.recovered_at is None


@dataclass(frozen=True)
class PlannedMail:
    """A mail to one contact: ``opened`` or ``recovered`` (one incident), or a ``digest`` (several)."""

    kind: Literal["opened", "recovered", "digest"]
    contact: Contact
    incidents: tuple[Incident, ...]
    not_before: datetime
    recovered: tuple[Incident, ...] = field(default=())  # a digest's incidents that ended since the last one


def observe(kit: KitFacts, now: datetime, silent_intervals: int, online_window_s: int,
            open_kinds: Iterable[str] = ()) -> dict[str, Verdict]:
    """Each of ``KINDS``: its facts if it holds, ``fine``, or ``unknown`` (the store says nothing of it, so an
    open incident stays open and none opens). ``open_kinds``: the kit's open incidents, for the battery's margin."""
    verdicts: dict[str, Verdict] = {}
    silence = kit.silence_s(now)
    if silence is None:
        verdicts["silent"] = "unknown"  # never heard within the look-back: not set up yet, or long dead
    else:
        after = max(silent_intervals * kit.interval_s, online_window_s) if kit.interval_s else online_window_s
        verdicts["silent"] = ({"silent_s": int(silence), "last_seen": kit.last_seen.isoformat() if kit.last_seen
                               else None, "interval_s": kit.interval_s} if silence > after else "fine")
    if kit.battery is None:
        verdicts["low_battery"] = "unknown"
    else:
        limit = LOW_BATTERY_V + (BATTERY_RECOVERY_MARGIN_V if "low_battery" in open_kinds else 0.0)
        verdicts["low_battery"] = {"volts": round(kit.battery, 2)} if kit.battery < limit else "fine"
    if kit.rejection_burst:
        reasons = sorted(kit.rejections_1h.items(), key=lambda item: (-item[1], item[0]))
        verdicts["rejection_burst"] = {"count": kit.rejected_1h, "reasons": [list(item) for item in reasons[:3]]}
    else:
        verdicts["rejection_burst"] = "fine"
    if kit.update_state is None:
        verdicts["update_failed"] = "unknown"  # never offered one, or not within the look-back
    elif kit.update_failed:  # lauks.schema.UPDATE_FAILED_STATES, as on the fleet page
        verdicts["update_failed"] = {"state": kit.update_state, "version": kit.update_version or "?",
                                     "reason": kit.update_reason or ""}
    else:
        verdicts["update_failed"] = "fine"
    return verdicts


def transitions(incidents: Sequence[Incident], kits: Iterable[KitFacts], policies: dict[str, SitePolicy],
                now: datetime, online_window_s: int) -> tuple[list[Incident], list[Incident]]:
    """The incidents that open and those that recover, given the open ``incidents`` and the registered kits'
    facts. A kit no longer registered (retired) ends its incidents without a mail."""
    open_by_key = {(i.site, i.kit, i.kind): i for i in incidents if i.is_open}
    opened: list[Incident] = []
    recovered: list[Incident] = []
    seen: set[tuple[str, str]] = set()
    for kit in kits:
        if not kit.registered:
            continue  # the store has data of a kit the register lacks: the fleet page shows it, nobody is mailed
        seen.add(kit.key)
        policy = policies.get(kit.site)
        intervals = policy.silent_intervals if policy else SitePolicy.silent_intervals
        open_kinds = [kind for kind in KINDS if (kit.site, kit.kit, kind) in open_by_key]
        for kind, verdict in observe(kit, now, intervals, online_window_s, open_kinds).items():
            current = open_by_key.get((kit.site, kit.kit, kind))
            if isinstance(verdict, dict) and current is None:
                opened.append(Incident(kit.site, kit.kit, kind, verdict, now))
            elif verdict == "fine" and current is not None:
                current.recovered_at = now
                recovered.append(current)
    for incident in open_by_key.values():
        if (incident.site, incident.kit) not in seen:
            incident.recovered_at = now
            incident.open_notice = SKIPPED if incident.open_notice == PENDING else incident.open_notice
            incident.recovery_notice = SKIPPED
            recovered.append(incident)
    return opened, recovered


def plan(policy: SitePolicy, incidents: Sequence[Incident], now: datetime) -> tuple[list[PlannedMail], bool]:
    """The mails that a site's incidents call for now (their notices are updated to say so), and whether a digest
    was made today (the caller keeps ``last_digest_on``). ``incidents``: the open ones and those whose recovery
    notice is pending. Without contacts nothing is decided: adding contacts later mails what is open then."""
    if policy.on_holiday(now):
        for incident in incidents:  # began and ended while mail was off: nothing left to tell
            if not incident.is_open and incident.open_notice == PENDING:
                incident.open_notice = incident.recovery_notice = SKIPPED
        return [], False
    if not policy.contacts:
        for incident in incidents:  # nobody to tell; what is open when contacts are named is mailed then
            if not incident.is_open:
                if incident.open_notice == PENDING:
                    incident.open_notice = SKIPPED
                if incident.recovery_notice == PENDING:
                    incident.recovery_notice = SKIPPED
        return [], False
    when = policy.mail_from(now)
    if policy.digest:
        return _digest(policy, incidents, now, when)
    mails: list[PlannedMail] = []
    for incident in sorted(incidents, key=lambda i: (i.opened_at, i.kit, i.kind)):
        if incident.open_notice == PENDING:
            if incident.is_open:
                mails += [PlannedMail("opened", c, (incident,), when) for c in policy.contacts]
                incident.open_notice = QUEUED
            else:  # ended before its mail could go: a holiday, or contacts named after it ended
                incident.open_notice = incident.recovery_notice = SKIPPED
        elif not incident.is_open and incident.recovery_notice == PENDING:
            mails += [PlannedMail("recovered", c, (incident,), when) for c in policy.contacts]
            incident.recovery_notice = QUEUED
    return mails, False


def _digest(policy: SitePolicy, incidents: Sequence[Incident], now: datetime,
            when: datetime) -> tuple[list[PlannedMail], bool]:
    if not policy.digest_due(now):
        return [], False
    ordered = sorted(incidents, key=lambda i: (i.opened_at, i.kit, i.kind))
    still = tuple(i for i in ordered if i.is_open)
    ended = tuple(i for i in ordered if not i.is_open and i.recovery_notice == PENDING)
    for incident in still:
        incident.open_notice = DIGEST if incident.open_notice == PENDING else incident.open_notice
    for incident in ended:
        incident.open_notice = DIGEST if incident.open_notice == PENDING else incident.open_notice
        incident.recovery_notice = DIGEST
    if not still and not ended:
        return [], True
    return [PlannedMail("digest", c, still, when, ended) for c in policy.contacts], True
