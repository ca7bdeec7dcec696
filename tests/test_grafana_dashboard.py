"""The Grafana dashboard: valid against our JSON schema of what Grafana needs (check-jsonschema;
Grafana itself is not packaged in Debian, so no live load here), every query valid PromQL
(promtool), every rate over $__rate_interval, every service panel filtered by the `job` and
`instance` variables, a row for each enabled exporter, and panels that never overlap."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from mindscape_ops.config.models import Platform
from mindscape_ops.render.artifacts import render_platform

from .monitoring_support import (  # noqa: F401 - fixtures, used by name
    EXAMPLES,
    monitoring_artifacts_only,
    platform_fixture,
    platform_from,
    run_tool,
)

SCHEMA = Path(__file__).parent / "schemas" / "grafana-dashboard.schema.json"


def dashboard(platform: Platform) -> dict | None:
    text = render_platform(platform).get(f"{platform.paths.deploy}/grafana/dashboards/platform-overview.json")
    return json.loads(text) if text else None


def everything(tmp_path: Path) -> Platform:
    data = yaml.safe_load((EXAMPLES / "full" / "platform.yaml").read_text())
    data["services"].update(node_exporter={}, pgbouncer_exporter={}, gateway_exporter={})
    return platform_from(tmp_path, data)


def exprs(board: dict) -> list[str]:
    return [t["expr"] for p in board["panels"] if p["type"] != "row" for t in p["targets"]]


@pytest.mark.tools
def test_dashboard_passes_the_schema(platform: Platform, tmp_path: Path):
    board = dashboard(platform)
    if board is None:
        assert "grafana" not in platform.services.enabled()
        return
    path = tmp_path / "dashboard.json"
    path.write_text(json.dumps(board))
    assert "ok -- validation done" in run_tool("check-jsonschema", "--schemafile", SCHEMA, path)


@pytest.mark.tools
def test_the_schema_refuses_what_grafana_would_not_load(tmp_path: Path):
    board = dashboard(everything(tmp_path))
    broken = [
        ("gridPos", lambda p: p.pop("gridPos")),
        ("27", lambda p: p["gridPos"].update(w=27)),
        ("targets", lambda p: p.pop("targets")),
        ("refId", lambda p: p["targets"][0].pop("refId")),
    ]
    for needle, breaking in broken:
        copy = json.loads(json.dumps(board))
        breaking(next(p for p in copy["panels"] if p["type"] == "timeseries"))
        path = tmp_path / f"broken-{needle}.json"
        path.write_text(json.dumps(copy))
        done = subprocess.run(
            ["check-jsonschema", "--schemafile", str(SCHEMA), str(path)], capture_output=True, text=True
        )
        assert done.returncode == 1 and needle in done.stdout + done.stderr, (needle, done.stdout)


@pytest.mark.tools
def test_every_query_is_valid_promql(tmp_path: Path):
    """As recording rules, with the variables as Grafana fills them in (All = .*)."""
    board = dashboard(everything(tmp_path))
    values = {"$__rate_interval": "1m", "$job": ".*", "$instance": ".*"}
    rules = []
    for index, expr in enumerate(exprs(board)):
        for name, value in values.items():
            expr = expr.replace(name, value)
        assert "$" not in expr, expr
        rules.append({"record": f"dashboard:query_{index}", "expr": expr})
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    assert f"SUCCESS: {len(rules)} rules found" in run_tool("promtool", "check", "rules", path)


def test_rates_use_the_rate_interval_and_panels_follow_the_variables(tmp_path: Path):
    board = dashboard(everything(tmp_path))
    names = [v["name"] for v in board["templating"]["list"]]
    assert names == ["job", "instance"]
    assert all(v["includeAll"] and v["multi"] and v["allValue"] == ".*" for v in board["templating"]["list"])
    for expr in exprs(board):
        assert not re.search(r"\[\d+[smhd]\]", expr), f"a fixed range: {expr}"
        if re.search(r"\b(rate|increase)\(", expr):
            assert "[$__rate_interval]" in expr, expr
        app = "http_requests_total" in expr or "http_request_duration" in expr
        if not app and "ALERTS" not in expr:  # applications are filtered by their own jobs
            assert '$job"' in expr and '$instance"' in expr, expr


def test_a_row_for_each_enabled_service_and_no_overlap(tmp_path: Path):
    board = dashboard(everything(tmp_path))
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    assert rows == [
        "Services", "Prometheus", "Alertmanager", "Postgres", "pgbouncer", "Redis", "Gateway", "Host", "Backups",
        "Applications",
    ]  # fmt: skip
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    cells = set()
    for panel in board["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        area = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not area & cells, f"{panel['title']} overlaps another panel"
        cells |= area
    titles = [p["title"] for p in board["panels"]]
    assert {"Clients waiting", "Gateway 5xx ratio", "Deadlocks", "Age of the last good backup"} <= set(titles)


def test_minimal_grafana_draws_only_what_is_scraped(tmp_path: Path):
    data = {"version": 1, "project": "small", "services": {"prometheus": {}, "grafana": {}}}
    board = dashboard(platform_from(tmp_path, data))
    assert [p["title"] for p in board["panels"] if p["type"] == "row"] == ["Services", "Prometheus"]
