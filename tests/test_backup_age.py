"""How old a backup may be before BackupTooOld fires: the schedule's longest gap between two
runs plus a grace (a weekday schedule waits over the weekend), or the setting when given; held
by promtool unit tests for an hourly schedule here (the weekday one is tests/promtool/backups.yml,
run with the others by test_alert_rules.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from mindscape_ops.render.artifacts import render_platform
from mindscape_ops.settings.schedule import BACKUP_GRACE_S, backup_age_limit, longest_gap
from mindscape_ops.settings.types import Duration

from .monitoring_support import EXAMPLES, platform_from, run_tool

HOUR = 3600.0


@pytest.mark.parametrize(
    ("schedule", "hours"),
    [
        ("30 2 * * 1-5", 72),  # Friday 02:30 to Monday 02:30
        ("0 3 * * *", 24),
        ("0 * * * *", 1),
        ("@hourly", 1),
        ("*/15 * * * *", 0.25),
        ("0 2,14 * * *", 12),
        ("0 4 * * 0", 7 * 24),
        ("0 3 1 * *", 31 * 24),  # 31 January to 1 March is 29 or 30 days; July-August is 31
        ("0 0 29 2 *", 4 * 366 * 24 - 24 * 3),  # 29 February to the next: 1461 days
        ("0 23 * * 5,1", 4 * 24),  # Friday 23:00 to Monday 23:00, then Monday to Friday
    ],
)
def test_longest_gap_between_runs(schedule: str, hours: float):
    assert longest_gap(schedule) == hours * HOUR


def test_a_schedule_that_never_fires_has_no_gap():
    assert longest_gap("0 0 31 2 *") is None  # 31 February


def test_the_limit_is_the_gap_plus_grace_unless_set():
    assert backup_age_limit(None, "30 2 * * 1-5") == 72 * HOUR + BACKUP_GRACE_S
    assert backup_age_limit(None, "0 * * * *") == 3 * HOUR
    assert backup_age_limit(Duration("30h"), "30 2 * * 1-5") == 30 * HOUR


def _rules(tmp_path: Path, schedule: str, **thresholds: str) -> tuple[Path, dict]:
    data = yaml.safe_load((EXAMPLES / "full" / "platform.yaml").read_text())
    data["services"]["node_exporter"] = {}
    data["backups"]["schedule"] = schedule
    data["monitoring"]["thresholds"].update(thresholds)
    platform = platform_from(tmp_path, data)
    rules = tmp_path / "rules"
    rules.mkdir()
    for rel, text in render_platform(platform).items():
        if rel.endswith("prometheus/rules/services.yml"):
            (rules / "services.yml").write_text(text)
            found = [r for g in yaml.safe_load(text)["groups"] for r in g["rules"] if r.get("alert") == "BackupTooOld"]
            return rules, found[0]
    raise AssertionError("no services.yml rendered")


@pytest.mark.parametrize(("schedule", "seconds"), [("30 2 * * 1-5", 266400), ("0 * * * *", 10800)])
def test_the_rendered_rule_follows_the_schedule(tmp_path: Path, schedule: str, seconds: int):
    _, rule = _rules(tmp_path, schedule)
    assert rule["expr"].endswith(f"> {seconds}")


def test_a_set_threshold_wins(tmp_path: Path):
    _, rule = _rules(tmp_path, "30 2 * * 1-5", backup_max_age="100h")
    assert rule["expr"].endswith("> 360000") and "longer than 100h" in rule["annotations"]["description"]


@pytest.mark.tools
def test_promtool_hourly_schedule(tmp_path: Path):
    _rules(tmp_path, "0 * * * *")
    shutil.copy(Path(__file__).parent / "promtool" / "hourly" / "backups.yml", tmp_path / "backups.yml")
    assert "SUCCESS" in run_tool("promtool", "test", "rules", tmp_path / "backups.yml")


def _alert_names(platform) -> set[str]:
    text = render_platform(platform)[f"{platform.paths.deploy}/prometheus/rules/services.yml"]
    return {r.get("alert") for g in yaml.safe_load(text)["groups"] for r in g["rules"]}


def test_the_starter_and_full_back_up_and_get_a_backup_age_alert(tmp_path: Path):
    from mindscape_ops.render.starter import create_platform

    from .monitoring_support import load_platform

    create_platform(tmp_path / "platform.yaml", name="starter", force=False, source=None)
    for platform in (load_platform(tmp_path / "platform.yaml"), load_platform(EXAMPLES / "full" / "platform.yaml")):
        assert platform.backup_services
        assert {"BackupTooOld", "BackupNeverRecorded"} <= _alert_names(platform)


@pytest.mark.tools
def test_backing_up_without_node_exporter_still_has_the_backup_age_alerts(tmp_path: Path):
    """Prometheus reads the times itself (recording rules `backup create` writes) where no
    node_exporter does: the alerts fire from them (promtool), and `render` warns no more."""
    from mindscape_ops.backup.metrics import RULES_FILE, render_rules

    from .conftest import run_cli

    (tmp_path / "platform.yaml").write_text(
        "version: 1\nproject: bk\nservices: {postgres: {}, redis: {}, prometheus: {}}\n"
    )
    done = run_cli("render", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "no age alert" not in done.stderr
    deploy = tmp_path / "deploy" / "prometheus"
    assert "/etc/prometheus-backups/*.rules.yml" in (deploy / "prometheus.yml").read_text()
    assert "/etc/prometheus-backups" in (tmp_path / "deploy" / "compose.yaml").read_text()
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(deploy / "rules" / "services.yml", rules / "services.yml")
    (rules / RULES_FILE).write_text(render_rules({"postgres": 0.0}))
    shutil.copy(Path(__file__).parent / "promtool" / "recorded" / "backups.yml", tmp_path / "backups.yml")
    assert "SUCCESS" in run_tool("promtool", "test", "rules", tmp_path / "backups.yml")


def test_with_node_exporter_prometheus_reads_no_backup_times_itself(tmp_path: Path):
    """One source of each time: two would fire every backup alert twice."""
    (tmp_path / "platform.yaml").write_text(
        "version: 1\nproject: bk\nservices: {postgres: {}, prometheus: {}, node_exporter: {}}\n"
    )
    from .monitoring_support import load_platform

    files = render_platform(load_platform(tmp_path / "platform.yaml"))
    assert "prometheus-backups" not in files["deploy/prometheus/prometheus.yml"] + files["deploy/compose.yaml"]
