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
    run_tool,
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
    assert all(child["continue"] for child in route["routes"][1:])

    receivers = {receiver["name"]: receiver for receiver in config["receivers"]}
    assert receivers["default"] == {"name": "default"}
    assert receivers["watchdog"]["webhook_configs"][0]["url"] == "https://deadman.example.com/ping/fullshop"
    token = receivers["watchdog"]["webhook_configs"][0]["http_config"]["authorization"]["credentials_file"]
    assert token == f"{SECRETS_DIR}_watchdog"
    # The Watchdog goes first, to its own receiver alone, every minute.
    assert route["routes"][0] == {
        "receiver": "watchdog",
        "matchers": ['alertname="Watchdog"'],
        "group_wait": "0s",
        "group_interval": "1m",
        "repeat_interval": "1m",
        "continue": False,
    }
    assert receivers["oncall"]["pagerduty_configs"][0]["routing_key_file"] == f"{SECRETS_DIR}oncall"
    slack = receivers["team-chat"]["slack_configs"][0]
    assert (slack["api_url_file"], slack["channel"]) == (f"{SECRETS_DIR}team-chat", "#shop-alerts")
    assert receivers["audit-hook"]["webhook_configs"][0]["url"] == "http://host.docker.internal:9000/alerts"
    assert receivers["ops-mail"]["email_configs"][0]["to"] == "ops@example.com"
    assert config["global"] == {
        "smtp_smarthost": "smtp.example.com:587",
        "smtp_from": "alerts@example.com",
        "smtp_require_tls": True,
        "smtp_auth_username": "alerts@example.com",
        "smtp_auth_password_file": f"{SECRETS_DIR}_smtp",
    }
    assert "localhost:25" not in text
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
    assert receivers["ops-mail"]["email_configs"][0] == {"to": "ops@example.com", "send_resolved": True}
    by_file = receivers["file-hook"]["webhook_configs"][0]["http_config"]["authorization"]
    assert by_file == {"credentials_file": f"{SECRETS_DIR}file-hook"}
    pagerduty = receivers["oncall"]["pagerduty_configs"][0]
    assert pagerduty["url"] == "https://events.eu.pagerduty.com/v2/enqueue"
    assert "channel" not in receivers["slack-default-channel"]["slack_configs"][0]
    # The user's own `default` receiver is the root one: not defined twice.
    assert [r["name"] for r in config["receivers"]].count("default") == 1
    children = {child["receiver"]: child for child in config["route"]["routes"]}
    assert children["team-chat"]["matchers"] == ['severity=~"warning|info"']


def _alerting(tmp_path: Path, monitoring: dict, image: str | None = None):
    alertmanager = {"image": image} if image else {}
    data = {
        "version": 1,
        "project": "hooks",
        "services": {"prometheus": {}, "alertmanager": alertmanager},
        "monitoring": monitoring,
    }
    return platform_from(tmp_path, data)


def test_secret_webhook_url_is_read_from_a_file(tmp_path: Path):
    receiver = {"name": "private-hook", "kind": "webhook", "secret_env": "HOOK_URL"}
    config = rendered_yaml(_alerting(tmp_path, {"receivers": [receiver]}), "alertmanager/alertmanager.yml")
    hook = next(r for r in config["receivers"] if r["name"] == "private-hook")["webhook_configs"][0]
    assert hook == {"url_file": f"{SECRETS_DIR}private-hook", "send_resolved": True}


@pytest.mark.parametrize(
    ("receiver", "image", "expected"),
    [
        # Alertmanager 0.25 (the local image) rejects url_file at start: refused now instead.
        (
            {"name": "h", "kind": "webhook", "secret_env": "HOOK_URL"},
            "mindscape-local/alertmanager:0.25",
            "monitoring.receivers[0].url: a secret webhook URL (url_file) needs Alertmanager 0.26 or later",
        ),
        ({"name": "h", "kind": "webhook"}, None, "monitoring.receivers[0].url: a webhook receiver needs url"),
        ({"name": "m", "kind": "email", "to": "a@example.com"}, None, "an email receiver needs monitoring.smtp"),
        ({"name": "watchdog", "url": "http://x:1/"}, None, "`watchdog` is the Watchdog's own receiver"),
        ({"name": "s", "kind": "slack"}, None, "a slack receiver needs secret_env or secret_file"),
    ],
)
def test_receivers_that_cannot_work_are_refused(tmp_path: Path, receiver: dict, image: str | None, expected: str):
    with pytest.raises(ConfigError) as caught:
        _alerting(tmp_path, {"receivers": [receiver]}, image)
    assert any(expected in problem for problem in caught.value.problems), caught.value.problems


@pytest.mark.parametrize(
    ("monitoring", "expected"),
    [
        (
            {"receivers": [{"name": "s", "kind": "slack", "secret_env": "A", "secret_file": "a"}]},
            "secret_env (a variable's name) or secret_file (a path), not both",
        ),
        (
            {"smtp": {"host": "mail.example.com", "from": "a@example.com", "password_env": "P"}},
            "a password needs `username` too",
        ),
        ({"smtp": {"host": "mail.example.com", "from": "a@example.com", "port": 0}}, "monitoring.smtp.port"),
        ({"watchdog": {"secret_env": "TOKEN"}}, "monitoring.watchdog.url: a bearer token needs the url"),
        (
            {"receivers": [{"name": "m", "kind": "email", "to": "a@example.com", "secret_env": "P"}]},
            "the SMTP password is monitoring.smtp.password_env",
        ),
    ],
)
def test_smtp_and_secret_mistakes_are_refused(tmp_path: Path, monitoring: dict, expected: str):
    with pytest.raises(ConfigError) as caught:
        _alerting(tmp_path, monitoring)
    assert any(expected in problem for problem in caught.value.problems), caught.value.problems


def test_smtp_without_auth_and_watchdog_off(tmp_path: Path):
    monitoring = {
        "smtp": {"host": "relay.internal", "port": 25, "from": "am@example.com", "require_tls": False},
        "receivers": [{"name": "mail", "kind": "email", "to": "ops@example.com"}],
        "watchdog": {"enabled": False},
    }
    config = rendered_yaml(_alerting(tmp_path, monitoring), "alertmanager/alertmanager.yml")
    assert config["global"] == {
        "smtp_smarthost": "relay.internal:25",
        "smtp_from": "am@example.com",
        "smtp_require_tls": False,
    }
    assert [r["name"] for r in config["receivers"]] == ["default", "mail"]
    assert [r["receiver"] for r in config["route"]["routes"]] == ["mail"]


def test_no_receivers_gives_a_null_default_receiver():
    platform = load_platform(EXAMPLES / "local" / "platform.yaml")
    config = rendered_yaml(platform, "alertmanager/alertmanager.yml")
    # The Watchdog's receiver has no integration until monitoring.watchdog.url is set.
    assert config["receivers"] == [{"name": "watchdog"}, {"name": "default"}]
    assert config["route"]["receiver"] == "default"
    assert [r["receiver"] for r in config["route"]["routes"]] == ["watchdog"]
    assert "global" not in config  # no monitoring.smtp: no SMTP settings
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


def test_a_receiver_on_the_docker_host_gets_the_host_gateway_entry(tmp_path: Path):
    """examples/full's webhook is http://host.docker.internal:9000: without the extra host entry it
    resolves nowhere inside the Alertmanager container on Linux, so the alert is never delivered."""
    from mindscape_ops.services.spec import container_specs

    full = load_platform(EXAMPLES / "full" / "platform.yaml")
    assert container_specs(full)["alertmanager"].reach_host
    elsewhere = {
        "version": 1,
        "project": "amhost",
        "services": {"prometheus": {}, "alertmanager": {}},
        "monitoring": {"receivers": [{"name": "hook", "kind": "webhook", "url": "http://alerts.internal:9000/a"}]},
    }
    assert not container_specs(platform_from(tmp_path, elsewhere))["alertmanager"].reach_host
    elsewhere["monitoring"]["smtp"] = {"host": "host.docker.internal", "from": "a@example.com"}
    elsewhere["monitoring"]["receivers"].append({"name": "mail", "kind": "email", "to": "o@example.com"})
    assert container_specs(platform_from(tmp_path, elsewhere))["alertmanager"].reach_host


@pytest.mark.tools
@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (("alertname=Watchdog", "severity=info", "service=watchdog"), "watchdog"),
        (("alertname=PostgresDown", "severity=critical", "service=postgres"), "oncall,audit-hook,ops-mail"),
        (("alertname=RedisEvictingKeys", "severity=warning", "service=redis"), "team-chat,audit-hook,ops-mail"),
    ],
)
def test_amtool_routes_the_watchdog_to_its_receiver_alone(tmp_path: Path, labels: tuple, receivers: str):
    """Alertmanager's own router (amtool), not the YAML's shape: the always-firing Watchdog must
    page nobody, every other alert reaches the receivers of its severity and the catch-alls."""
    text = render_platform(load_platform(EXAMPLES / "full" / "platform.yaml"))[
        "ops/deploy/alertmanager/alertmanager.yml"
    ]
    config = tmp_path / "alertmanager.yml"
    config.write_text(text)
    routed = run_tool("amtool", "config", "routes", "test", f"--config.file={config}", *labels)
    assert routed.splitlines()[0].strip() == receivers
