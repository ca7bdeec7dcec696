"""Monitoring configs rendered from platform.yaml: prometheus.yml, alert rules, alertmanager.yml
and Grafana provisioning. Each is checked by what reads it for real (promtool, amtool, json.loads)
and parsed back to prove that values from platform.yaml arrive intact and in place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mindscape_ops.config.models import Platform
from mindscape_ops.render.artifacts import render_platform
from mindscape_ops.services.alertmanager import secret_sources

from .monitoring_support import (  # noqa: F401 - fixtures, used by name
    EXAMPLES,
    HOSTILE_DESCRIPTION,
    HOSTILE_EXPR,
    HOSTILE_SUMMARY,
    SECRETS_DIR,
    all_rules,
    everything_on,
    load_platform,
    monitoring_artifacts_only,
    platform_fixture,
    platform_from,
    rendered_yaml,
    run_tool,
    write_rendered,
)

# -- the real validators --------------------------------------------------------------------


@pytest.mark.tools
def test_prometheus_config_and_rules_pass_promtool(platform: Platform, tmp_path: Path):
    files = write_rendered(platform, tmp_path / "out")
    config = files["prometheus/prometheus.yml"]
    # Inside the container the rules are /etc/prometheus/rules; here they sit next to the config.
    local = config.with_name("checked.yml")
    local.write_text(config.read_text().replace("/etc/prometheus/rules/", "rules/"))
    rule_files = sorted(p for rel, p in files.items() if rel.startswith("prometheus/rules/"))
    assert rule_files

    output = run_tool("promtool", "check", "config", local)
    assert f"SUCCESS: {len(rule_files)} rule files found" in output
    for rules in rule_files:
        run_tool("promtool", "check", "rules", rules)


@pytest.mark.tools
def test_alertmanager_config_passes_amtool(platform: Platform, tmp_path: Path):
    files = write_rendered(platform, tmp_path / "out")
    if "alertmanager/alertmanager.yml" not in files:
        assert "alertmanager" not in platform.services.enabled()
        return
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for name, _, _ in secret_sources(platform):
        (secrets / name).write_text("secret-value\n")
    config = files["alertmanager/alertmanager.yml"]
    checked = config.with_name("checked.yml")
    checked.write_text(config.read_text().replace(SECRETS_DIR, f"{secrets}/"))

    output = run_tool("amtool", "check-config", checked)
    assert "SUCCESS" in output
    assert f"{len(receivers_of(platform))} receivers" in output


def receivers_of(platform: Platform) -> set[str]:
    watchdog = (
        ["watchdog"] if platform.monitoring.watchdog.enabled and "alertmanager" in platform.services.enabled() else []
    )
    return {"default", *watchdog, *(r.name for r in platform.monitoring.receivers)}


def test_grafana_files_parse(platform: Platform):
    rendered = render_platform(platform)
    deploy = platform.paths.deploy
    if "grafana" not in platform.services.enabled():
        assert not [path for path in rendered if "/grafana/" in path]
        return
    datasources = yaml.safe_load(rendered[f"{deploy}/grafana/provisioning/datasources/prometheus.yml"])
    # the trace store's datasource follows when it runs (tests/test_render_jaeger.py)
    assert [d for d in datasources["datasources"] if d["uid"] != "jaeger"] == [
        {
            "name": "Prometheus",
            "uid": "prometheus",
            "type": "prometheus",
            "access": "proxy",
            "url": "http://prometheus:9090",
            "isDefault": True,
            "editable": False,
            "jsonData": {"timeInterval": platform.services.prometheus.scrape_interval},
        }
    ]
    providers = yaml.safe_load(rendered[f"{deploy}/grafana/provisioning/dashboards/mindscape.yml"])
    assert [p["options"]["path"] for p in providers["providers"]] == ["/etc/grafana/dashboards"]

    dashboard = json.loads(rendered[f"{deploy}/grafana/dashboards/platform-overview.json"])
    assert dashboard["uid"] == "mindscape-overview"
    assert dashboard["title"] == f"{platform.project} platform overview"
    panels = dashboard["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}
            assert all(t["datasource"]["uid"] == "prometheus" and t["expr"] for t in panel["targets"])
    titles = [panel["title"] for panel in panels]
    assert {"Service up", "Firing alerts"} <= set(titles)
    assert ("Postgres connections" in titles) == ("postgres_exporter" in platform.services.enabled())
    assert ("Redis memory" in titles) == ("redis_exporter" in platform.services.enabled())
    assert ("p95 latency" in titles) == bool(platform.scrape_targets)
    # Rows stack top to bottom without overlapping.
    rows = [panel["gridPos"]["y"] for panel in panels if panel["type"] == "row"]
    assert rows == sorted(set(rows))


def test_rendering_is_deterministic(platform: Platform):
    # An equal platform built afresh (None dropped: a listed `service: null` means enabled).
    twin = Platform.model_validate(platform.model_dump(by_alias=True, exclude_none=True))
    assert twin == platform
    assert render_platform(platform) == render_platform(twin) == render_platform(platform)


# -- what the files say ---------------------------------------------------------------------


def test_every_rule_has_severity_service_and_runbook(platform: Platform):
    rules = all_rules(platform)
    assert rules
    for rule in rules:
        assert rule["labels"]["severity"] in ("critical", "warning", "info")
        assert rule["labels"]["service"]
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}
        assert rule["annotations"]["runbook_url"].startswith(f"{platform.paths.runbooks}/alerts.md#")


def test_full_example_prometheus_scrapes_every_exporter_and_app():
    platform = load_platform(EXAMPLES / "full" / "platform.yaml")
    config = rendered_yaml(platform, "prometheus/prometheus.yml")

    assert config["global"] == {
        "scrape_interval": "10s",
        "evaluation_interval": "10s",
        "external_labels": {"project": "fullshop", "environment": "production"},
    }
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    assert config["alerting"]["alertmanagers"] == [{"static_configs": [{"targets": ["alertmanager:9093"]}]}]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    # services with metrics in start order, then the applications
    services = [
        "jaeger",
        "alertmanager",
        "prometheus",
        "grafana",
        "postgres_exporter",
        "redis_exporter",
        "node_exporter",
    ]
    assert list(jobs) == [*services, "api", "worker"]
    assert jobs["prometheus"]["static_configs"] == [{"targets": ["prometheus:9090"]}]
    assert jobs["postgres_exporter"]["static_configs"] == [{"targets": ["postgres_exporter:9187"]}]
    assert jobs["redis_exporter"]["static_configs"] == [{"targets": ["redis_exporter:9121"]}]
    api_targets = ["host.docker.internal:8000", "host.docker.internal:8001"]
    assert jobs["api"]["static_configs"] == [{"targets": api_targets}]
    assert jobs["worker"]["metrics_path"] == "/internal/metrics"
    assert jobs["worker"]["scrape_interval"] == "30s"
    assert "scrape_interval" not in jobs["api"]


def test_minimal_example_has_no_alerting_and_no_exporter_rules():
    platform = load_platform(EXAMPLES / "minimal" / "platform.yaml")
    rendered = render_platform(platform)
    config = yaml.safe_load(rendered["deploy/prometheus/prometheus.yml"])
    assert "alerting" not in config
    assert [job["job_name"] for job in config["scrape_configs"]] == ["prometheus"]
    names = {rule["alert"] for rule in all_rules(platform)}
    assert not names & {"PostgresDown", "PostgresTooManyConnections", "RedisDown", "RedisMemoryNearMax", "InstanceDown"}
    assert "deploy/alertmanager/alertmanager.yml" not in rendered
    assert "deploy/prometheus/rules/applications.yml" not in rendered


def test_full_example_rules_use_its_thresholds():
    platform = load_platform(EXAMPLES / "full" / "platform.yaml")
    rules = {(rule["alert"], rule["labels"]["service"]): rule for rule in all_rules(platform)}

    connections = rules[("PostgresTooManyConnections", "postgres")]
    assert connections["expr"] == "sum(pg_stat_activity_count) / max(pg_settings_max_connections) > 0.75"
    assert rules[("RedisMemoryNearMax", "redis")]["expr"] == (
        "redis_memory_used_bytes / (redis_memory_max_bytes > 0) > 0.85"
    )
    assert rules[("PostgresDown", "postgres")]["expr"] == "pg_up == 0"
    assert rules[("RedisDown", "redis")]["labels"]["severity"] == "critical"
    assert rules[("InstanceDown", "postgres_exporter")]["expr"] == 'up{job="postgres_exporter"} == 0'
    assert rules[("HttpErrorRatioHigh", "api")]["expr"] == (
        'sum(rate(http_requests_total{job="api",status=~"5.."}[5m]))'
        ' / sum(rate(http_requests_total{job="api"}[5m])) > 0.02'
    )
    assert rules[("HttpLatencyP95High", "worker")]["expr"] == (
        "histogram_quantile(0.95, sum by (le, job) "
        '(rate(http_request_duration_seconds_bucket{job="worker"}[5m]))) > 0.3'
    )
    assert "< 0.15" in rules[("DiskSpaceLow", "{{ $labels.job }}")]["expr"]
    custom = rules[("CheckoutErrorsHigh", "custom")]
    assert custom["expr"] == "sum(rate(checkout_failures_total[5m])) > 1"
    assert custom["for"] == "10m"
    assert custom["labels"]["severity"] == "critical"
    assert custom["annotations"]["summary"] == "Checkout is failing: {{ $value }} failures/s"


# -- hostile values -------------------------------------------------------------------------


def test_hostile_custom_rule_survives_byte_exact(tmp_path: Path):
    platform = everything_on(tmp_path)
    text = render_platform(platform)["ops/deploy/prometheus/rules/custom.yml"]
    groups = yaml.safe_load(text)["groups"]
    assert len(groups) == 1
    hostile = [rule for rule in groups[0]["rules"] if rule["alert"] == "Hostile"]
    assert len(hostile) == 1
    rule = hostile[0]
    assert rule["expr"] == HOSTILE_EXPR
    assert rule["annotations"]["summary"] == HOSTILE_SUMMARY
    assert rule["annotations"]["description"] == HOSTILE_DESCRIPTION
    assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}
    assert rule["labels"] == {"severity": "warning", "service": "custom"}


@pytest.mark.tools
def test_hostile_custom_rule_passes_promtool(tmp_path: Path):
    """Prometheus reads the same rule: valid PromQL and a valid alert template."""
    path = tmp_path / "custom.yml"
    path.write_text(render_platform(everything_on(tmp_path))["ops/deploy/prometheus/rules/custom.yml"])
    assert "SUCCESS: 3 rules found" in run_tool("promtool", "check", "rules", path)


def test_app_job_matchers_are_built_safely(tmp_path: Path):
    # Target names are restricted to [a-z0-9_-]; the ones regex and PromQL care about still
    # reach the expressions quoted and escaped.
    data = {
        "version": 1,
        "project": "odd",
        "services": {"prometheus": {}, "grafana": {}},
        "monitoring": {"targets": [{"name": "a-b_c", "targets": ["host.docker.internal:1"]}]},
    }
    platform = platform_from(tmp_path, data)
    rules = {rule["alert"]: rule for rule in all_rules(platform) if rule["labels"]["service"] == "a-b_c"}
    expr = rules["HttpErrorRatioHigh"]["expr"]
    assert expr.startswith('sum(rate(http_requests_total{job="a-b_c",status=~"5.."}')
    dashboard = json.loads(render_platform(platform)["deploy/grafana/dashboards/platform-overview.json"])
    rate = next(panel for panel in dashboard["panels"] if panel["title"] == "Request rate")
    assert rate["targets"][0]["expr"] == 'sum by (job) (rate(http_requests_total{job=~"a\\\\-b_c"}[$__rate_interval]))'
