"""The Grafana dashboard of the platform, as data: a row per service that has metrics (only
the enabled ones), every panel filtered by the dashboard's `job` and `instance` variables, and
every rate over Grafana's `$__rate_interval` (at least four scrapes, whatever the zoom).
Pure: (platform, scrape jobs) -> the dashboard's JSON model; the template writes it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform

DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
SEL = 'job=~"$job", instance=~"$instance"'  # every series a panel shows is filtered by both
RATE = "[$__rate_interval]"


@dataclass
class Layout:
    """Panels placed left to right in rows of 24 columns, each section under its own row."""

    panels: list[dict[str, Any]] = field(default_factory=list)
    y: int = 0
    x: int = 0
    height: int = 0

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append(
            {
                "type": "row",
                "id": len(self.panels) + 1,
                "title": title,
                "collapsed": False,
                "panels": [],
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
            }
        )
        self.y += 1

    def add(self, panel: dict[str, Any], width: int = 8, height: int = 8) -> None:
        if self.x + width > 24:
            self._newline()
        panel["id"] = len(self.panels) + 1
        panel["gridPos"] = {"h": height, "w": width, "x": self.x, "y": self.y}
        self.panels.append(panel)
        self.x += width
        self.height = max(self.height, height)

    def _newline(self) -> None:
        self.y += self.height
        self.x, self.height = 0, 0


def query(expr: str, legend: str, ref: str = "A") -> dict[str, Any]:
    return {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": ref}


def timeseries(
    title: str, unit: str, *queries: dict[str, Any], threshold: float | None = None, description: str = ""
) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    if threshold is not None:
        steps.append({"color": "red", "value": threshold})
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "min": 0,
                "thresholds": {"mode": "absolute", "steps": steps},
                "custom": {"thresholdsStyle": {"mode": "dashed" if threshold is not None else "off"}},
            },
            "overrides": [],
        },
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": [dict(q, refId=chr(ord("A") + i)) for i, q in enumerate(queries)],
    }


def stat(
    title: str,
    expr: str,
    legend: str,
    description: str,
    mappings: list | None = None,
    red_from: float = 1,
    good_low: bool = True,
) -> dict[str, Any]:
    low, high = ("green", "red") if good_low else ("red", "green")
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {
            "defaults": {
                "unit": "none",
                "mappings": mappings or [],
                "thresholds": {
                    "mode": "absolute",
                    "steps": [{"color": low, "value": None}, {"color": high, "value": red_from}],
                },
            },
            "overrides": [],
        },
        "options": {
            "colorMode": "background",
            "graphMode": "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": "value_and_name",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        },
        "targets": [query(expr, legend)],
    }


def variable(name: str, label: str, definition: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": definition,
        "query": {"query": definition, "refId": f"{name}-values"},
        "refresh": 2,  # on time range change: new instances appear
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }


UP = [
    {
        "type": "value",
        "options": {
            "0": {"text": "DOWN", "color": "red", "index": 0},
            "1": {"text": "UP", "color": "green", "index": 1},
        },
    }
]


def overview(platform: Platform) -> dict[str, Any]:
    from mindscape_ops.render import dashboard_rows as rows

    enabled = platform.services.enabled()
    layout = Layout()
    layout.row("Services")
    layout.add(
        stat(
            "Service up",
            f"up{{{SEL}}}",
            "{{job}} {{instance}}",
            "UP when Prometheus can scrape the service, DOWN when it cannot.",
            UP,
            good_low=False,
        ),
        width=16,
        height=6,
    )
    layout.add(
        stat(
            "Firing alerts",
            'count(ALERTS{alertstate="firing", alertname!="Watchdog"}) or vector(0)',
            "firing",
            "Alerts firing now (the Watchdog, always firing, left out).",
        ),
        height=6,
    )
    for needs, section in rows.SECTIONS:
        if needs is None or needs in enabled:
            section(layout, platform)
    if platform.scrape_targets:
        rows.applications(layout, platform)
    return {
        "uid": "mindscape-overview",
        "title": f"{platform.project} platform overview",
        "description": "Generated by mindscape from platform.yaml: change platform.yaml, not this dashboard.",
        "tags": ["mindscape", platform.project],
        "timezone": "browser",
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                variable("job", "Job", "label_values(up, job)"),
                variable("instance", "Instance", 'label_values(up{job=~"$job"}, instance)'),
            ]
        },
        "annotations": {"list": []},
        "links": [],
        "panels": layout.panels,
    }
