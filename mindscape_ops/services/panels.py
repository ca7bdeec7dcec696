"""The pieces of a Grafana panel, as JSON-ready data: a service module builds its dashboard row
from them (`ServiceDef.dashboard`), render/dashboard.py lays the rows out. Every series a panel
shows is filtered by the dashboard's `job` and `instance` variables, and every rate is over
Grafana's `$__rate_interval` (at least four scrapes, whatever the zoom)."""

from __future__ import annotations

from typing import Any

DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
SEL = 'job=~"$job", instance=~"$instance"'  # every series a panel shows is filtered by both
RATE = "[$__rate_interval]"


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
