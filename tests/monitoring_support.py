"""What the monitoring render tests share: one family of artifacts at a time, the example
platforms, the real validators, and the rendered files parsed back."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mindscape_ops.config.loader import load
from mindscape_ops.config.models import Platform
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
        {"name": "ops-mail", "kind": "email", "to": "ops@example.com"},
        {"name": "file-hook", "kind": "webhook", "url": "https://hooks.example.com/f", "secret_file": "hook.token"},
        {"name": "default", "kind": "email", "to": "all@example.com", "severities": ["info"]},
    ]
    return platform_from(tmp_path, data)


PLATFORMS = ("minimal", "full", "local", "everything")


@pytest.fixture(params=PLATFORMS, name="platform")
def platform_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Platform:
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
        package = {"promtool": "prometheus", "amtool": "prometheus-alertmanager"}.get(name, name)
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
