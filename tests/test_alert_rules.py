"""The built-in alerts: promtool unit tests (tests/promtool/*.yml) fire each one and hold it
back when its condition does not hold, against rules rendered from a platform with every
exporter on; every rendered alert has both kinds of case, its runbook_url points at a section
of the rendered runbook, and the runbook has a section for each."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from mindscape_ops.config.models import Platform
from mindscape_ops.render import artifacts
from mindscape_ops.render.artifacts import render_platform

from .monitoring_support import EXAMPLES, platform_from, run_tool

PROMTOOL_TESTS = Path(__file__).parent / "promtool"
RULE_FILES = ("services.yml", "applications.yml")


@pytest.fixture(autouse=True)
def alerting_artifacts_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Render the rules, Alertmanager's config and the alerts runbook alone: other families have
    their own tests, and a broken template there must not fail (or hide) these."""
    family = ("prometheus/", "alertmanager/", "runbooks/alerts")
    every = artifacts.artifacts
    monkeypatch.setattr(
        artifacts, "artifacts", lambda platform: [a for a in every(platform) if a.template.startswith(family)]
    )


def alert_platform(tmp_path: Path, **changes: dict) -> Platform:
    """examples/full with the node, pgbouncer and gateway exporters, the log store and the identity
    service: every built-in group renders. The promtool cases expect its thresholds and paths
    (ops/runbooks)."""
    data = yaml.safe_load((EXAMPLES / "full" / "platform.yaml").read_text())
    data["services"].update(node_exporter={}, pgbouncer_exporter={}, gateway_exporter={}, victorialogs={}, identity={})
    data["security"]["auth"]["jwt"].pop("refresh_token_ttl")  # what Kratos cannot do is refused with it
    data["security"]["auth"]["sessions"].pop("max_per_user")
    for key, value in changes.items():
        data["monitoring"][key] = value
    return platform_from(tmp_path, data)


def rendered_rules(platform: Platform) -> dict[str, list[dict]]:
    files = render_platform(platform)
    found = {}
    for name in RULE_FILES:
        text = files.get(f"{platform.paths.deploy}/prometheus/rules/{name}")
        if text:
            found[name] = [rule for group in yaml.safe_load(text)["groups"] for rule in group["rules"]]
    return found


def cases() -> dict[str, dict[str, int]]:
    """alert name -> how many promtool cases expect it firing / not firing."""
    counts: dict[str, dict[str, int]] = {}
    for path in PROMTOOL_TESTS.glob("*.yml"):
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                kind = "fires" if case.get("exp_alerts") else "quiet"
                counts.setdefault(case["alertname"], {"fires": 0, "quiet": 0})[kind] += 1
    return counts


@pytest.mark.tools
@pytest.mark.parametrize("unit", sorted(p.name for p in PROMTOOL_TESTS.glob("*.yml")))
def test_promtool_unit_tests_pass(tmp_path: Path, unit: str):
    platform = alert_platform(tmp_path)
    rules = tmp_path / "rules"
    rules.mkdir()
    for rel, text in render_platform(platform).items():
        if "/prometheus/rules/" in rel:
            (rules / Path(rel).name).write_text(text)
    shutil.copy(PROMTOOL_TESTS / unit, tmp_path / unit)
    assert "SUCCESS" in run_tool("promtool", "test", "rules", tmp_path / unit)


def test_every_alert_has_a_case_that_fires_it_and_one_that_does_not(tmp_path: Path):
    counts = cases()
    names = {rule["alert"] for rules in rendered_rules(alert_platform(tmp_path)).values() for rule in rules}
    assert len(names) >= 22
    for name in sorted(names):
        assert counts.get(name, {}).get("fires"), f"no promtool case fires {name}"
        # The Watchdog always fires: its quiet case is the platform that turns it off (below).
        if name != "Watchdog":
            assert counts[name]["quiet"], f"no promtool case where {name} stays quiet"


def test_watchdog_off_renders_no_watchdog(tmp_path: Path):
    platform = alert_platform(tmp_path, watchdog={"enabled": False})
    names = {rule["alert"] for rule in rendered_rules(platform)["services.yml"]}
    assert "Watchdog" not in names and "PostgresDeadlocks" in names
    config = yaml.safe_load(render_platform(platform)["ops/deploy/alertmanager/alertmanager.yml"])
    assert "watchdog" not in [r["name"] for r in config["receivers"]]


def test_each_runbook_url_points_at_a_section_of_the_rendered_runbook(tmp_path: Path):
    platform = alert_platform(tmp_path)
    runbook = render_platform(platform)["ops/runbooks/alerts.md"]
    anchors = {heading.lower() for heading in re.findall(r"^## (\w+)$", runbook, re.M)}
    rules = [rule for rules in rendered_rules(platform).values() for rule in rules]
    for rule in rules:
        url = rule["annotations"]["runbook_url"]
        path, _, anchor = url.partition("#")
        assert path == "ops/runbooks/alerts.md" and anchor in anchors, url
    assert {rule["alert"].lower() for rule in rules} == anchors
    # One section for the per-job InstanceDown rules: every job's expression, no job named alone.
    section = runbook.split("## InstanceDown", 1)[1].split("\n## ", 1)[0]
    for rule in rendered_rules(platform)["services.yml"]:
        if rule["alert"] == "InstanceDown":
            assert rule["expr"] in section, rule["expr"]
            assert "scrape {{ $labels.job }} at" in rule["annotations"]["description"]


def test_runbook_base_url_makes_absolute_links(tmp_path: Path):
    platform = alert_platform(tmp_path, runbook_base_url="https://git.example.com/shop/blob/main/")
    rule = rendered_rules(platform)["services.yml"][0]
    assert rule["annotations"]["runbook_url"] == (
        "https://git.example.com/shop/blob/main/ops/runbooks/alerts.md#watchdog"
    )


def test_groups_follow_the_exporters(tmp_path: Path):
    data = {"version": 1, "project": "bare", "services": {"prometheus": {}}}
    names = {rule["alert"] for rule in rendered_rules(platform_from(tmp_path, data))["services.yml"]}
    # No exporter: no rule on its metrics, the host's included (nothing else produces them).
    assert not names & {"PostgresDown", "RedisDown", "PgbouncerWaitingClients", "BackupTooOld", "Watchdog"}
    assert not names & {"DiskSpaceLow", "DiskFillingUp", "MemoryLow"}
    assert "PrometheusConfigReloadFailed" in names
    data["services"]["node_exporter"] = {}
    names = {rule["alert"] for rule in rendered_rules(platform_from(tmp_path, data))["services.yml"]}
    assert {"DiskSpaceLow", "DiskFillingUp", "MemoryLow"} <= names
