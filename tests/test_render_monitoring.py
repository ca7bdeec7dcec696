"""Monitoring configs rendered from platform.yaml: prometheus.yml, alert rules, alertmanager.yml
and Grafana provisioning. Each is checked by what reads it for real (promtool, amtool, json.loads)
and parsed back to prove that values from platform.yaml arrive intact and in place."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mindscape_ops.config import load
from mindscape_ops.config.models import Platform
from mindscape_ops.errors import ConfigError
from mindscape_ops.render import artifacts
from mindscape_ops.render.artifacts import render_platform

from .conftest import EXAMPLES, need

SECRETS_DIR = "/etc/alertmanager-secrets/"
HOSTILE_SUMMARY = 'a "quoted" {{ $labels.x }} # not a comment ; $x'
HOSTILE_DESCRIPTION = "it's a \\ backslash: colon, [flow] {map} & *alias ! %tag `tick` ; $PATH"
HOSTILE_EXPR = """sum(rate(http_requests_total{path="/a\\"b#c", q='x;$y'}[5m])) > 0"""


@pytest.fixture(autouse=True)
def monitoring_artifacts_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Render the monitoring family alone: other families have their own tests, and a broken
    template there must not fail (or hide) these."""
    family = ("prometheus/", "alertmanager/", "grafana/")
    every = artifacts.artifacts
    monkeypatch.setattr(
        artifacts, "artifacts", lambda platform: [a for a in every(platform) if a.template.startswith(family)]
    )


def load_platform(path: Path) -> Platform:
    return load([path], env={}).platform


def platform_from(tmp_path: Path, data: dict) -> Platform:
    path = tmp_path / "platform.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_platform(path)


def everything_on(tmp_path: Path) -> Platform:
    """examples/full plus every monitoring option it leaves out or at one value."""
    data = yaml.safe_load((EXAMPLES / "full" / "platform.yaml").read_text())
    data["services"]["prometheus"]["targets"].append(
        {
            "name": "billing",
            "targets": ["billing.internal:443"],
            "metrics_path": "/v1/metrics",
            "scheme": "https",
            "scrape_interval": "5s",
        }
    )
    monitoring = data["monitoring"]
    monitoring["thresholds"]["http_latency_p95"] = "1s500ms"
    monitoring["rules"] += [
        {
            "alert": "QueueStuck",
            "expr": "max(queue_oldest_seconds) > 600",
            "for": "0s",
            "severity": "info",
            "summary": "Oldest job waits {{ $value | humanizeDuration }}",
        },
        {"alert": "Hostile", "expr": HOSTILE_EXPR, "summary": HOSTILE_SUMMARY, "description": HOSTILE_DESCRIPTION},
    ]
    monitoring["receivers"] = [
        {
            "name": "oncall",
            "kind": "pagerduty",
            "secret_env": "PD_KEY",
            "url": "https://events.eu.pagerduty.com/v2/enqueue",
            "severities": ["critical"],
        },
        {
            "name": "team-chat",
            "kind": "slack",
            "secret_env": "SLACK_URL",
            "channel": "#shop-alerts",
            "severities": ["warning", "info"],
        },
        {"name": "slack-default-channel", "kind": "slack", "secret_env": "SLACK_URL_2"},
        {"name": "audit-hook", "kind": "webhook", "url": "http://host.docker.internal:9000/alerts"},
        {
            "name": "signed-hook",
            "kind": "webhook",
            "url": "https://hooks.example.com/in",
            "secret_env": "HOOK_TOKEN",
            "severities": ["critical", "warning"],
        },
        {"name": "ops-mail", "kind": "email", "to": "ops@example.com", "secret_env": "SMTP_PASSWORD"},
        {"name": "default", "kind": "email", "to": "all@example.com", "severities": ["info"]},
    ]
    return platform_from(tmp_path, data)


PLATFORMS = ("minimal", "full", "local", "everything")


@pytest.fixture(params=PLATFORMS)
def platform(request: pytest.FixtureRequest, tmp_path: Path) -> Platform:
    if request.param == "everything":
        return everything_on(tmp_path)
    return load_platform(EXAMPLES / request.param / "platform.yaml")


def write_rendered(platform: Platform, root: Path) -> dict[str, Path]:
    """Render and write every monitoring file under root; keyed by path from the deploy folder."""
    written = {}
    for rel, text in render_platform(platform).items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        written[rel.removeprefix(f"{platform.paths.deploy}/")] = target
    return written


def rendered_yaml(platform: Platform, rel: str) -> dict:
    return yaml.safe_load(render_platform(platform)[f"{platform.paths.deploy}/{rel}"])


def run_tool(name: str, *args: str | Path) -> str:
    """Run a real validator; skip at a desk without it, fail in CI."""
    if shutil.which(name) is None:
        package = {"promtool": "prometheus", "amtool": "prometheus-alertmanager"}[name]
        need(f"{name} is not installed (apt-get install {package})")
    done = subprocess.run([name, *map(str, args)], capture_output=True, text=True, timeout=60)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{name} {' '.join(map(str, args))} failed:\n{output}"
    return output


def all_rules(platform: Platform) -> list[dict]:
    rules = []
    for name in ("services", "applications", "custom"):
        path = f"{platform.paths.deploy}/prometheus/rules/{name}.yml"
        if path in render_platform(platform):
            for group in rendered_yaml(platform, f"prometheus/rules/{name}.yml")["groups"]:
                rules += group["rules"]
    return rules


# -- the real validators --------------------------------------------------------------------


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


def test_alertmanager_config_passes_amtool(platform: Platform, tmp_path: Path):
    files = write_rendered(platform, tmp_path / "out")
    if "alertmanager/alertmanager.yml" not in files:
        assert "alertmanager" not in platform.services.enabled()
        return
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for receiver in platform.monitoring.receivers:
        if receiver.secret_env:
            (secrets / receiver.name).write_text("secret-value\n")
    config = files["alertmanager/alertmanager.yml"]
    checked = config.with_name("checked.yml")
    checked.write_text(config.read_text().replace(SECRETS_DIR, f"{secrets}/"))

    output = run_tool("amtool", "check-config", checked)
    assert "SUCCESS" in output
    assert f"{len(receivers_of(platform))} receivers" in output


def receivers_of(platform: Platform) -> set[str]:
    return {"default", *(r.name for r in platform.monitoring.receivers)}


def test_grafana_files_parse(platform: Platform):
    rendered = render_platform(platform)
    deploy = platform.paths.deploy
    if "grafana" not in platform.services.enabled():
        assert not [path for path in rendered if "/grafana/" in path]
        return
    datasources = yaml.safe_load(rendered[f"{deploy}/grafana/provisioning/datasources/prometheus.yml"])
    assert datasources["datasources"] == [
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
        assert set(rule["annotations"]) == {"summary", "description", "runbook"}
        assert rule["annotations"]["runbook"] == f"{platform.paths.runbooks}/incident-response.md"


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
    services = ["alertmanager", "prometheus", "grafana", "postgres_exporter", "redis_exporter"]
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


def test_full_example_routes_by_severity_with_secrets_by_file(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PAGERDUTY_ROUTING_KEY", "pd-secret-value")
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T0/B0/secret")
    platform = load_platform(EXAMPLES / "full" / "platform.yaml")
    text = render_platform(platform)["ops/deploy/alertmanager/alertmanager.yml"]
    config = yaml.safe_load(text)

    route = config["route"]
    assert route["receiver"] == "default"
    assert route["group_by"] == ["alertname", "service", "severity"]
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == ("15s", "2m", "2h")
    children = {child["receiver"]: child for child in route["routes"]}
    assert children["oncall"]["matchers"] == ['severity="critical"']
    assert children["team-chat"]["matchers"] == ['severity="warning"']
    assert "matchers" not in children["audit-hook"]  # no severities: everything
    assert all(child["continue"] for child in route["routes"])

    receivers = {receiver["name"]: receiver for receiver in config["receivers"]}
    assert receivers["default"] == {"name": "default"}
    assert receivers["oncall"]["pagerduty_configs"][0]["routing_key_file"] == f"{SECRETS_DIR}oncall"
    slack = receivers["team-chat"]["slack_configs"][0]
    assert (slack["api_url_file"], slack["channel"]) == (f"{SECRETS_DIR}team-chat", "#shop-alerts")
    assert receivers["audit-hook"]["webhook_configs"][0]["url"] == "http://host.docker.internal:9000/alerts"
    assert receivers["ops-mail"]["email_configs"][0]["to"] == "ops@example.com"
    assert config["global"]["smtp_smarthost"] == "localhost:25"
    assert "secret" not in text.replace("alertmanager-secrets", "")
    inhibit = config["inhibit_rules"]
    assert {
        "source_matchers": ['severity="critical"'],
        "target_matchers": ['severity=~"warning|info"'],
        "equal": ["alertname", "service"],
    } in inhibit
    down = [rule for rule in inhibit if rule["equal"] == ["service"]]
    assert len(down) == 1 and "InstanceDown" in down[0]["source_matchers"][0]


def test_secrets_are_only_referenced_by_file(tmp_path: Path):
    platform = everything_on(tmp_path)
    config = rendered_yaml(platform, "alertmanager/alertmanager.yml")
    receivers = {receiver["name"]: receiver for receiver in config["receivers"]}
    inline = {"api_url", "routing_key", "service_key", "auth_password", "auth_secret", "credentials"}

    def keys(node: object) -> set[str]:
        if isinstance(node, dict):
            return set(node) | {k for value in node.values() for k in keys(value)}
        if isinstance(node, list):
            return {k for value in node for k in keys(value)}
        return set()

    assert not keys(config) & inline
    hook = receivers["signed-hook"]["webhook_configs"][0]
    assert hook["http_config"]["authorization"]["credentials_file"] == f"{SECRETS_DIR}signed-hook"
    mail = receivers["ops-mail"]["email_configs"][0]
    assert mail["auth_password_file"] == f"{SECRETS_DIR}ops-mail"
    pagerduty = receivers["oncall"]["pagerduty_configs"][0]
    assert pagerduty["url"] == "https://events.eu.pagerduty.com/v2/enqueue"
    assert "channel" not in receivers["slack-default-channel"]["slack_configs"][0]
    # The user's own `default` receiver is the root one: not defined twice.
    assert [r["name"] for r in config["receivers"]].count("default") == 1
    children = {child["receiver"]: child for child in config["route"]["routes"]}
    assert children["team-chat"]["matchers"] == ['severity=~"warning|info"']


def test_webhook_without_url_is_refused(tmp_path: Path):
    # A secret URL would need url_file, which Alertmanager 0.25 (the local image) rejects at start.
    receiver = {"name": "private-hook", "kind": "webhook", "secret_env": "HOOK_URL"}
    data = {
        "version": 1,
        "project": "hooks",
        "services": {"prometheus": {}, "alertmanager": {}},
        "monitoring": {"receivers": [receiver]},
    }
    with pytest.raises(ConfigError, match="1 problem") as caught:
        platform_from(tmp_path, data)
    assert "monitoring.receivers[0].url: a webhook receiver needs url" in caught.value.problems[0]


def test_no_receivers_gives_a_null_default_receiver():
    platform = load_platform(EXAMPLES / "local" / "platform.yaml")
    config = rendered_yaml(platform, "alertmanager/alertmanager.yml")
    assert config["receivers"] == [{"name": "default"}]
    assert config["route"]["receiver"] == "default"
    assert "routes" not in config["route"]
    assert "global" not in config  # no email receiver: no SMTP placeholder
    # No app targets (nginx has no metrics): no application rules file at all.
    assert not any(path.endswith("rules/applications.yml") for path in render_platform(platform))


def test_everything_on_renders_each_option(tmp_path: Path):
    platform = everything_on(tmp_path)
    config = rendered_yaml(platform, "prometheus/prometheus.yml")
    billing = next(job for job in config["scrape_configs"] if job["job_name"] == "billing")
    assert billing == {
        "job_name": "billing",
        "metrics_path": "/v1/metrics",
        "scheme": "https",
        "scrape_interval": "5s",
        "static_configs": [{"targets": ["billing.internal:443"]}],
    }
    rules = {(rule["alert"], rule["labels"]["service"]): rule for rule in all_rules(platform)}
    assert rules[("HttpLatencyP95High", "billing")]["expr"].endswith(" > 1.5")
    assert rules[("QueueStuck", "custom")]["for"] == "0s"
    dashboard = json.loads(render_platform(platform)["ops/deploy/grafana/dashboards/platform-overview.json"])
    latency = next(panel for panel in dashboard["panels"] if panel["title"] == "p95 latency")
    assert 'job=~"api|worker|billing"' in latency["targets"][0]["expr"]
    assert latency["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"] == 1.5


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

    # ...and Prometheus reads the same rule: valid PromQL and a valid alert template.
    path = tmp_path / "custom.yml"
    path.write_text(text)
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
    assert rate["targets"][0]["expr"] == 'sum by (job) (rate(http_requests_total{job=~"a\\\\-b_c"}[5m]))'
