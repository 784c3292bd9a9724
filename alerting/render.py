"""Alert mails in the contact's language (lv, lt, ru, en): a subject that says the school, the kit and what is
wrong, a plain-text body and the same in simple HTML. Times are in the school's zone.

The catalogs are Babel ``.po`` files in ``alerting/locales`` (the web app's in ``web/locales`` are the web
app's); ``tests/alerting/test_render.py`` checks that every message has its translation in every locale.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from alerting.policy import SitePolicy
from alerting.rules import Incident
from dashboards.definition import LOW_BATTERY_V
from web.i18n import LOCALES, Translator, messages_of

FOLDER = Path(__file__).parent / "locales"


def N_(message: str) -> str:
    """Marks a message for the catalogs where it is translated later."""
    return message


PROBLEM = {
    "silent": N_("Kit %(kit)s has sent nothing for %(duration)s."),
    "low_battery": N_("The battery of kit %(kit)s is low: %(volts)s V."),
    "rejection_burst": N_("Readings of kit %(kit)s are being rejected: %(count)s in the last hour."),
    "update_failed": N_("The update of kit %(kit)s to version %(version)s failed."),
}
FINE_AGAIN = {
    "silent": N_("Kit %(kit)s is reporting again."),
    "low_battery": N_("The battery of kit %(kit)s is no longer low."),
    "rejection_burst": N_("Readings of kit %(kit)s are accepted again."),
    "update_failed": N_("Kit %(kit)s no longer reports a failed update."),
}
# The subject's own short "what to do", after the problem: a reader of the inbox knows without opening it.
DO_NOW = {
    "silent": N_("Check its power and Wi-Fi."),
    "low_battery": N_("Charge or replace it soon."),
    "rejection_burst": N_("Check its sensor wiring."),
    "update_failed": N_("Fix the release and offer it again."),
}
TO_DO = {
    "silent": N_("What to do: check the kit's power and its Wi-Fi. It was last heard from at %(last_seen)s."),
    "low_battery": N_("What to do: charge or replace the battery soon. Below %(limit)s V a kit stops within hours."),
    "rejection_burst": N_("What to do: look at the reasons on the fleet page. A burst like this is mostly a loose "
                          "sensor wire or a firmware fault, not noise. Most frequent: %(reasons)s."),
    "update_failed": N_("What to do: the kit went back to the version it had before and keeps measuring. Fix the "
                        "release, then offer it again. The kit said: %(reason)s"),
}


@functools.cache
def catalog(locale: str) -> dict[str, str | tuple[str, ...]]:
    """The alert mails' messages of ``locale``; English is the source and has none. A missing file is an error:
    mail in the wrong language would go out without anyone noticing."""
    if locale == "en":
        return {}
    path = FOLDER / locale / "LC_MESSAGES" / "alerts.po"
    if not path.exists():
        raise FileNotFoundError(f"the alert mails' catalog {path} is missing: the package was installed without it")
    return messages_of(path)


class MailTranslator(Translator):
    """The web app's translator (formats of numbers, times, durations) with the alert mails' messages."""

    @functools.cached_property
    def _messages(self) -> dict[str, str | tuple[str, ...]]:
        return catalog(self.locale)


@dataclass(frozen=True)
class Mail:
    subject: str
    text: str
    html: str


def translator(policy: SitePolicy, language: str) -> MailTranslator:
    return MailTranslator(language if language in LOCALES else "en", policy.zone)


def _school(policy: SitePolicy) -> str:
    return policy.title.strip() or policy.site


def _values(t: MailTranslator, incident: Incident) -> dict[str, Any]:
    detail = incident.detail
    values: dict[str, Any] = {"kit": incident.kit}
    if incident.kind == "silent":
        values["duration"] = t.duration(float(detail.get("silent_s", 0)))
        seen = detail.get("last_seen")
        values["last_seen"] = t.datetime(datetime.fromisoformat(seen), "short") if seen else "–"
    elif incident.kind == "low_battery":
        values["volts"] = t.number(float(detail.get("volts", 0.0)), 2)
        values["limit"] = t.number(LOW_BATTERY_V, 1)
    elif incident.kind == "rejection_burst":
        values["count"] = t.number(int(detail.get("count", 0)))
        values["reasons"] = ", ".join(f"{reason} ({t.number(int(count))})"
                                      for reason, count in detail.get("reasons", []))
    elif incident.kind == "update_failed":
        values["version"] = str(detail.get("version", "?"))
        values["reason"] = str(detail.get("reason") or "–")
    return values


def _subject(school: str, sentence: str) -> str:
    # the school's name is a name, not a translated fragment: the sentence stays whole
    return f"[Lauks] {school}: {sentence.rstrip('.')}"


def _footer(t: MailTranslator, policy: SitePolicy) -> list[str]:
    lines = [t.gettext("You get this mail as an alert contact of %(school)s. Staff change the contacts with "
                       "`lauks site alerts %(site)s`.", school=_school(policy), site=policy.site)]
    if policy.fleet_url:
        lines.insert(0, t.gettext("Every kit's state is on the fleet page: %(url)s", url=policy.fleet_url))
    return lines


def _html(paragraphs: Sequence[str | list[str]]) -> str:
    parts = ['<!DOCTYPE html><html><body style="font-family: sans-serif; line-height: 1.4">']
    for paragraph in paragraphs:
        if isinstance(paragraph, list):
            parts.append("<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in paragraph) + "</ul>")
        else:
            parts.append(f"<p>{html.escape(paragraph)}</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _text(paragraphs: Sequence[str | list[str]]) -> str:
    blocks = ["\n".join(f"- {item}" for item in p) if isinstance(p, list) else p for p in paragraphs]
    return "\n\n".join(blocks) + "\n"


def _mail(subject: str, paragraphs: Sequence[str | list[str]]) -> Mail:
    return Mail(subject, _text(paragraphs), _html(paragraphs))


def opened(policy: SitePolicy, language: str, incident: Incident) -> Mail:
    t = translator(policy, language)
    values = _values(t, incident)
    problem = t.gettext(PROBLEM[incident.kind], **values)
    began = t.gettext("It began at %(time)s.", time=t.datetime(incident.opened_at, "short"))
    subject = _subject(_school(policy), f"{problem} {t.gettext(DO_NOW[incident.kind])}")
    return _mail(subject, [problem, began, t.gettext(TO_DO[incident.kind], **values), *_footer(t, policy)])


def _ended(t: MailTranslator, incident: Incident) -> str:
    assert incident.recovered_at is not None
    return t.gettext("It began at %(opened)s and ended at %(recovered)s, after %(duration)s.",
                     opened=t.datetime(incident.opened_at, "short"),
                     recovered=t.datetime(incident.recovered_at, "short"),
                     duration=t.duration((incident.recovered_at - incident.opened_at).total_seconds()))


def recovered(policy: SitePolicy, language: str, incident: Incident) -> Mail:
    t = translator(policy, language)
    fine = t.gettext(FINE_AGAIN[incident.kind], kit=incident.kit)
    return _mail(_subject(_school(policy), fine),
                 [fine, _ended(t, incident), t.gettext("Nothing more needs doing."), *_footer(t, policy)])


def digest(policy: SitePolicy, language: str, still: Sequence[Incident], ended: Sequence[Incident],
           now: datetime) -> Mail:
    t = translator(policy, language)
    school = _school(policy)
    kits = len({i.kit for i in still})
    if kits:
        subject = t.ngettext("Daily report of %(school)s: %(num)s kit needs attention",
                             "Daily report of %(school)s: %(num)s kits need attention", kits, school=school)
    else:
        subject = t.gettext("Daily report of %(school)s: every kit is fine again", school=school)
    paragraphs: list[str | list[str]] = [t.gettext("Kits of %(school)s, %(day)s", school=school,
                                                   day=t.date(now, "long"))]
    if still:
        paragraphs.append(t.gettext("Needs attention:"))
        paragraphs.append([" ".join((t.gettext(PROBLEM[i.kind], **_values(t, i)),
                                     t.gettext("It began at %(time)s.", time=t.datetime(i.opened_at, "short")),
                                     t.gettext(TO_DO[i.kind], **_values(t, i)))) for i in still])
    if ended:
        paragraphs.append(t.gettext("Fine again since the last report:"))
        paragraphs.append([f"{t.gettext(FINE_AGAIN[i.kind], kit=i.kit)} {_ended(t, i)}" for i in ended])
    return _mail(f"[Lauks] {subject}", [*paragraphs, *_footer(t, policy)])


def trial(policy: SitePolicy, language: str) -> Mail:
    t = translator(policy, language)
    school = _school(policy)
    subject = t.gettext("A test mail for %(school)s", school=school)
    return _mail(f"[Lauks] {subject}", [t.gettext("This is a test. Alert mail for %(school)s reaches you: nothing "
                                                  "needs doing.", school=school), *_footer(t, policy)])
