"""Alert rules for staff, one row each, rendered as Grafana's alerting provisioning file.

A rule runs its InfluxQL queries (one series per kit), reduces each series to its last value, optionally
combines them with a math expression, and fires per kit when the result crosses the threshold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from dashboards.definition import BY_KIT, GROUP_BY_KIT, LOW_BATTERY_V, minutes_silent, usual_interval
from dashboards.grafana import DATASOURCE_UID, Query, column
from lauks import schema
from lauks.influxql import identifier as quoted

FOLDER = "Lauks"
SILENT_INTERVALS = 3
REJECTION_BURST = 20  # rejections from one kit in 15 minutes: a wiring fault or a firmware bug, not noise
_REF = re.compile(r"\$([A-Z])\b")


@dataclass(frozen=True)
class Source:
    ref: str  # a capital letter
    query: Query
    window_s: int  # what $timeFilter covers when Grafana evaluates the rule


@dataclass(frozen=True)
class AlertRule:
    uid: str
    title: str
    sources: tuple[Source, ...]
    value: str  # math over $A, $B...: each the last value of that source's series for one kit
    op: Literal["gt", "lt"]
    threshold: float
    pending: str  # how long the condition must hold before the alert fires
    summary: str
    description: str


ALL_KITS = f"{quoted(schema.KIT)} =~ /.*/"

RULES: tuple[AlertRule, ...] = (
    AlertRule(
        "lauks-kit-silent", f"Kit silent for more than {SILENT_INTERVALS} of its intervals",
        (Source("A", minutes_silent(ALL_KITS), 86_400), Source("B", usual_interval(ALL_KITS), 86_400)),
        "$A * 60 / $B", "gt", SILENT_INTERVALS, "1m",
        "{{ $labels.site }}/{{ $labels.kit }} has sent no readings for {{ $values.A_last }} minutes",
        "The kit usually reports every {{ $values.B_last }} s. Check its power, its Wi-Fi and the Kit health "
        "dashboard; a kit that never reported in the last day does not appear here.",
    ),
    AlertRule(
        "lauks-battery-low", f"Kit battery below {LOW_BATTERY_V} V",
        (Source("A", Query(f"SELECT {column('last', schema.BATTERY)} FROM {quoted(schema.READINGS)} WHERE $timeFilter "
                           f"{GROUP_BY_KIT}", (schema.BATTERY,), BY_KIT, "table"), 6 * 3600),),
        "$A", "lt", LOW_BATTERY_V, "15m",
        "{{ $labels.site }}/{{ $labels.kit }} battery at {{ $values.A_last }} V",
        "Charge or replace the battery soon: below this voltage the kit stops within hours.",
    ),
    AlertRule(
        "lauks-rejection-burst", f"More than {REJECTION_BURST} rejections from one kit in 15 minutes",
        (Source("A", Query(f"SELECT {column('sum', schema.COUNT, 'rejections')} FROM {quoted(schema.REJECTIONS)} "
                           f"WHERE $timeFilter {GROUP_BY_KIT}", ("rejections",), BY_KIT, "table"), 900),),
        "$A", "gt", REJECTION_BURST, "0s",
        "{{ $labels.site }}/{{ $labels.kit }}: {{ $values.A_last }} rejected in 15 minutes",
        "See the Data quality dashboard for the reasons; docs/contract.md says what to do for each.",
    ),
)


def _last(ref: str) -> str:
    return f"{ref}_last"


def rule_json(rule: AlertRule) -> dict[str, Any]:
    data: list[dict[str, Any]] = []
    for source in rule.sources:
        model = source.query.target(source.ref)
        del model["datasource"]  # the rule names it in datasourceUid
        model.update(intervalMs=60_000, maxDataPoints=43_200, resultFormat="time_series")
        data.append({"refId": source.ref, "relativeTimeRange": {"from": source.window_s, "to": 0},
                     "datasourceUid": DATASOURCE_UID, "model": model})
    for source in rule.sources:
        data.append({"refId": _last(source.ref), "datasourceUid": "__expr__",
                     "model": {"refId": _last(source.ref), "type": "reduce", "expression": source.ref,
                               "reducer": "last", "settings": {"mode": "dropNN"}}})
    math = _REF.sub(lambda m: "${" + _last(m.group(1)) + "}", rule.value)
    condition_on = math.removeprefix("${").removesuffix("}") if _REF.fullmatch(rule.value) else "VALUE"
    if condition_on == "VALUE":
        data.append({"refId": "VALUE", "datasourceUid": "__expr__",
                     "model": {"refId": "VALUE", "type": "math", "expression": math}})
    data.append({"refId": "ALERT", "datasourceUid": "__expr__",
                 "model": {"refId": "ALERT", "type": "threshold", "expression": condition_on,
                           "conditions": [{"evaluator": {"type": rule.op, "params": [rule.threshold]}}]}})
    return {
        "uid": rule.uid,
        "title": rule.title,
        "condition": "ALERT",
        "data": data,
        "noDataState": "OK",  # no kit matching is the good case, not a missing data source
        "execErrState": "Error",
        "for": rule.pending,
        "isPaused": False,
        "annotations": {"summary": rule.summary, "description": rule.description},
        "labels": {"project": "lauks"},
    }


def alerting_yaml(rules: tuple[AlertRule, ...] = RULES) -> str:
    document = {"apiVersion": 1, "groups": [{"orgId": 1, "name": "Lauks kits", "folder": FOLDER, "interval": "1m",
                                             "rules": [rule_json(r) for r in rules]}]}
    header = "# Generated by `lauks dashboards build` from dashboards/alerts.py: edit that, not this file.\n"
    body: str = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=1000)
    return header + body
