"""alertmanager.yml rendered from `monitoring.receivers` and `monitoring.routes`: routes by
severity, receivers' secrets passed by file and never inline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mindscape_ops.errors import ConfigError
from mindscape_ops.render.artifacts import render_platform

from .monitoring_support import (  # noqa: F401 - fixtures, used by name
    EXAMPLES,
    SECRETS_DIR,
    all_rules,
    everything_on,
    load_platform,
    monitoring_artifacts_only,
    platform_fixture,
    platform_from,
    rendered_yaml,
)


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
