"""The shapes of a Grafana dashboard (queries, panels, variables) and their rendering to dashboard JSON.

Pure data and pure functions: ``definition.py`` says what the dashboards show, this module says how
Grafana (schemaVersion 39, InfluxDB data source in InfluxQL mode) wants it written. Positions and
panel ids are computed here, so a definition row never carries coordinates.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from lauks.influxql import identifier as quoted

DATASOURCE_UID = "lauks-influxdb"
DATASOURCE: dict[str, str] = {"type": "influxdb", "uid": DATASOURCE_UID}
SCHEMA_VERSION = 39
GRID_WIDTH = 24

PanelKind = Literal["timeseries", "stat", "table", "text"]
Style = Literal["line", "bars", "points"]
ResultFormat = Literal["time_series", "table"]

# Grafana's unit ids for the catalog's UCUM codes; anything else is shown with its unit as a suffix.
GRAFANA_UNITS: dict[str, str] = {
    "Cel": "celsius", "%": "percent", "hPa": "pressurehpa", "lx": "lux", "1": "none", "m/s": "velocityms",
    "deg": "degree", "mm": "lengthmm", "ug/m3": "conμgm3", "ppm": "ppm", "ppb": "conppb", "dB": "dB",
    "V": "volt", "dB[mW]": "dBm",
}

_ALIAS = re.compile(r'\s+AS\s+"([^"]+)"', re.IGNORECASE)


def grafana_unit(ucum: str, unit: str) -> str:
    return GRAFANA_UNITS.get(ucum, f"suffix: {unit}" if unit else "none")


def column(function: str, field: str, name: str = "") -> str:
    """``last("seen") AS "seen"``: a function of a field, as a column named after the field unless ``name`` says."""
    return f"{function}({quoted(field)}) AS {quoted(name or field)}"


@dataclass(frozen=True)
class Query:
    """One InfluxQL target. ``columns`` are the value columns the result has after ``time``;
    ``tags`` the tags its series are grouped by. Both are what the tests check against InfluxDB."""

    sql: str
    columns: tuple[str, ...]
    tags: tuple[str, ...] = ()
    format: ResultFormat = "time_series"
    alias: str = ""
    # the values of the dashboard's ``resolution`` variable this query answers for (it reads nothing for the
    # others: dashboards.flags); empty for a query that always answers
    resolution: tuple[str, ...] = ()

    def target(self, ref_id: str) -> dict[str, Any]:
        target: dict[str, Any] = {"refId": ref_id, "datasource": dict(DATASOURCE), "query": self.sql,
                                  "rawQuery": True, "resultFormat": self.format}
        if self.alias:
            target["alias"] = self.alias
        return target


def select(
    fields: str,
    measurement: str,
    where: str,
    *,
    by: Sequence[str] = (),
    every: bool = True,
    fill: str = "none",
    format: ResultFormat = "time_series",
    alias: str = "",
    tail: str = "",
) -> Query:
    """``SELECT <fields> FROM <measurement> WHERE <where> AND $timeFilter GROUP BY time($__interval), <by>``.

    Every expression in ``fields`` is written ``expr AS "name"``; the names become the expected columns.
    """
    columns = tuple(_ALIAS.findall(fields))
    if not columns:
        raise ValueError(f"name every selected expression with AS: {fields}")
    groups = (["time($__interval)"] if every else []) + [quoted(tag) for tag in by]
    sql = f"SELECT {fields} FROM {quoted(measurement)} WHERE {where} AND $timeFilter"
    if groups:
        sql += " GROUP BY " + ", ".join(groups)
    if every:
        sql += f" fill({fill})"
    if tail:
        sql += " " + tail
    if not alias and format == "time_series":  # a legend reads "p99 gw-1" or "demo/k01", not "gateway.p99"
        tag_part = "/".join(f"$tag_{tag}" for tag in by)
        alias = " ".join(part for part in ("$col" if len(columns) > 1 else "", tag_part) if part)
    return Query(sql, columns, tuple(by), format, alias)


@dataclass(frozen=True)
class Threshold:
    """Colour steps: values from ``value`` upwards get ``color`` (the base step is green)."""

    value: float
    color: str


@dataclass(frozen=True)
class Panel:
    title: str
    kind: PanelKind
    queries: tuple[Query, ...]
    unit: str = "none"
    w: int = 12
    h: int = 8
    description: str = ""
    style: Style = "line"
    thresholds: tuple[Threshold, ...] = ()
    base_color: str = "green"
    decimals: int | None = None
    min_interval: str = ""  # Grafana's "min interval": no bucket shorter than the data is written
    rename: dict[str, str] = field(default_factory=dict)  # column -> header, for tables
    content: str = ""  # a text panel's Markdown


@dataclass(frozen=True)
class Variable:
    """A query variable, or a custom one: ``options`` are then its values (``query`` stays empty: nothing is
    asked of InfluxDB) and ``default`` the one chosen at first. ``all_value`` ``.*`` keeps an ``All`` query short
    however many kits exist."""

    name: str
    label: str
    query: str
    multi: bool = True
    include_all: bool = True
    all_value: str = ".*"
    refresh_on_time_change: bool = False
    options: tuple[str, ...] = ()
    default: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        if self.options and (self.query or self.default not in self.options):
            raise ValueError(f"custom variable {self.name!r}: give options and a default among them, no query "
                             f"(default {self.default!r}, options {', '.join(self.options)})")


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    variables: tuple[Variable, ...]
    panels: tuple[Panel, ...]
    time_from: str = "now-24h"
    refresh: str = "1m"

    @property
    def filename(self) -> str:
        return self.uid.removeprefix("lauks-") + ".json"


def layout(panels: Iterable[Panel]) -> list[dict[str, int]]:
    """Flow panels left to right in Grafana's 24-column grid, starting a new line when one does not fit."""
    positions: list[dict[str, int]] = []
    x = y = line_height = 0
    for panel in panels:
        if not 1 <= panel.w <= GRID_WIDTH:
            raise ValueError(f"panel {panel.title!r} is {panel.w} columns wide; the grid has {GRID_WIDTH}")
        if x + panel.w > GRID_WIDTH:
            x, y, line_height = 0, y + line_height, 0
        positions.append({"h": panel.h, "w": panel.w, "x": x, "y": y})
        x += panel.w
        line_height = max(line_height, panel.h)
    return positions


def _field_config(panel: Panel) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"color": panel.base_color, "value": None}]
    steps += [{"color": t.color, "value": t.value} for t in panel.thresholds]
    defaults: dict[str, Any] = {"unit": panel.unit, "thresholds": {"mode": "absolute", "steps": steps},
                                "color": {"mode": "palette-classic" if panel.kind == "timeseries" else "thresholds"}}
    if panel.decimals is not None:
        defaults["decimals"] = panel.decimals
    if panel.kind == "timeseries":
        custom: dict[str, Any] = {"drawStyle": panel.style, "lineWidth": 1, "showPoints": "never",
                                  "spanNulls": False, "fillOpacity": 0}
        if panel.style == "bars":
            custom.update(fillOpacity=80, stacking={"mode": "normal", "group": "A"})
        if panel.style == "points":
            custom.update(showPoints="always", pointSize=4)
        if panel.thresholds:
            custom["thresholdsStyle"] = {"mode": "dashed"}
        defaults["custom"] = custom
    elif panel.kind == "table":
        defaults["custom"] = {"align": "auto", "cellOptions": {"type": "auto"}, "filterable": True}
    return {"defaults": defaults, "overrides": []}


def _options(panel: Panel) -> dict[str, Any]:
    if panel.kind == "timeseries":
        return {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                "tooltip": {"mode": "multi", "sort": "desc"}}
    if panel.kind == "stat":
        return {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "colorMode": "value", "graphMode": "none", "justifyMode": "auto", "orientation": "auto",
                "textMode": "auto", "showPercentChange": False, "wideLayout": True}
    return {"showHeader": True, "cellHeight": "sm", "footer": {"show": False, "reducer": ["sum"], "fields": ""}}


def _transformations(panel: Panel) -> list[dict[str, Any]]:
    if panel.kind != "table":
        return []
    # InfluxQL answers one frame per series (per kit); a table shows them as one.
    steps: list[dict[str, Any]] = [{"id": "merge", "options": {}}]
    if panel.rename:
        steps.append({"id": "organize", "options": {"renameByName": dict(panel.rename), "excludeByName": {},
                                                      "indexByName": {}}})
    return steps


def ref_id(index: int) -> str:
    """Grafana's query letters: A to Z, then AA, AB, ..."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def panel_json(panel: Panel, panel_id: int, grid_pos: dict[str, int]) -> dict[str, Any]:
    if panel.kind == "text":
        return {"id": panel_id, "type": "text", "title": panel.title, "description": panel.description,
                "gridPos": grid_pos, "options": {"mode": "markdown", "content": panel.content,
                                                 "code": {"language": "plaintext", "showLineNumbers": False,
                                                          "showMiniMap": False}}}
    out: dict[str, Any] = {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": dict(DATASOURCE),
        "gridPos": grid_pos,
        "fieldConfig": _field_config(panel),
        "options": _options(panel),
        "targets": [q.target(ref_id(i)) for i, q in enumerate(panel.queries)],
    }
    if panel.min_interval:
        out["interval"] = panel.min_interval
    transformations = _transformations(panel)
    if transformations:
        out["transformations"] = transformations
    return out


def variable_json(variable: Variable) -> dict[str, Any]:
    if variable.options:
        values = variable.options
        return {
            "type": "custom",
            "name": variable.name,
            "label": variable.label,
            "description": variable.description,
            "query": ",".join(values),
            "multi": False,
            "includeAll": False,
            "current": {"selected": True, "text": variable.default, "value": variable.default},
            "options": [{"selected": v == variable.default, "text": v, "value": v} for v in values],
            "hide": 0,
            "skipUrlSync": False,
        }
    return {
        "type": "query",
        "name": variable.name,
        "label": variable.label,
        "datasource": dict(DATASOURCE),
        "query": variable.query,
        "definition": variable.query,
        "refresh": 2 if variable.refresh_on_time_change else 1,
        "multi": variable.multi,
        "includeAll": variable.include_all,
        "allValue": variable.all_value if variable.include_all else None,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]} if variable.include_all else {},
        "options": [],
        "regex": "",
        "sort": 1,
        "hide": 0,
        "skipUrlSync": False,
    }


def dashboard_json(dashboard: Dashboard) -> dict[str, Any]:
    positions = layout(dashboard.panels)
    return {
        "id": None,
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": ["lauks"],
        "editable": True,
        "graphTooltip": 1,
        "timezone": "browser",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": dashboard.time_from, "to": "now"},
        "refresh": dashboard.refresh,
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "timepicker": {},
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
            "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard",
        }]},
        "links": [{"type": "dashboards", "tags": ["lauks"], "asDropdown": True, "title": "Lauks dashboards",
                   "includeVars": True, "keepTime": True, "icon": "external link", "targetBlank": False,
                   "tooltip": "", "url": ""}],
        "templating": {"list": [variable_json(v) for v in dashboard.variables]},
        "panels": [panel_json(p, i + 1, pos) for i, (p, pos) in enumerate(zip(dashboard.panels, positions,
                                                                                strict=True))],
    }
