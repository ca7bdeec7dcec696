"""The alerts on pgBackRest's repository (backups.pitr): PostgresFullBackupMissing and
PostgresRestorableWindowShort, from what `backup create --physical` records in .mindscape/metrics:
read by node_exporter's textfile collector where it runs, else loaded by Prometheus itself as
recording rules, so a platform without node_exporter has them too. promtool unit tests
(tests/promtool/pitr/) fire each and hold each back."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from mindscape_ops.backup.metrics import PITR_RULES_FILE, render_gauge_rules, render_gauges
from mindscape_ops.render.artifacts import render_platform
from mindscape_ops.services.pitr_info import PhysicalBackup, gauges, promised_span
from mindscape_ops.settings.schedule import shortest_gap

from .monitoring_support import platform_from, run_tool

PROMTOOL = Path(__file__).parent / "promtool" / "pitr"
DAY = 86400.0


def pitr_platform(tmp_path: Path, node_exporter: bool):
    services = {"postgres": {}, "prometheus": {}, "postgres_exporter": {}}
    if node_exporter:
        services["node_exporter"] = {}
    data = {"version": 1, "project": "wal", "services": services, "backups": {"pitr": {"enabled": True}}}
    tmp_path.mkdir(parents=True, exist_ok=True)
    return platform_from(tmp_path, data)


def rule_names(platform) -> set[str]:
    text = render_platform(platform)[f"{platform.paths.deploy}/prometheus/rules/services.yml"]
    return {rule.get("alert") for group in yaml.safe_load(text)["groups"] for rule in group["rules"]}


def backup(label: str, kind: str, stopped: float) -> PhysicalBackup:
    at = datetime.fromtimestamp(stopped, UTC)
    return PhysicalBackup(label, kind, at, at, 1, 1, "000000010000000000000001", "000000010000000000000002")


def test_the_repository_alerts_render_with_node_exporter_or_without_it(tmp_path: Path) -> None:
    wanted = {"PostgresFullBackupMissing", "PostgresRestorableWindowShort", "PostgresArchivingFailing"}
    for node_exporter in (True, False):
        platform = pitr_platform(tmp_path / str(node_exporter), node_exporter)
        assert wanted <= rule_names(platform), node_exporter
    files = render_platform(pitr_platform(tmp_path / "no-node", node_exporter=False))
    # without node_exporter Prometheus loads the recorded gauges itself
    assert "/etc/prometheus-backups/*.rules.yml" in files["deploy/prometheus/prometheus.yml"]
    assert "/etc/prometheus-backups" in files["deploy/compose.yaml"]
    runbook = files["docs/runbooks/alerts.md"]
    assert "## PostgresRestorableWindowShort" in runbook and "keep_full" in runbook


def test_the_gauges_say_what_the_repository_holds() -> None:
    held = gauges([backup("a", "full", 100.0), backup("b", "diff", 200.0), backup("c", "full", 300.0)], None)
    values = {name: value for name, (_help, value) in held.items()}
    assert values == {
        "mindscape_pitr_backups": 3,
        "mindscape_pitr_window_start_timestamp_seconds": 100.0,
        "mindscape_pitr_last_full_backup_timestamp_seconds": 300.0,
    }
    since = datetime.fromtimestamp(50, UTC)
    gone = {name: value for name, (_help, value) in gauges([], since).items()}
    assert gone == {
        "mindscape_pitr_backups": 0,
        "mindscape_pitr_window_start_timestamp_seconds": 0.0,
        "mindscape_pitr_archiving_since_timestamp_seconds": 50.0,
    }
    text = render_gauges(held)
    assert "mindscape_pitr_backups 3\n" in text and "# TYPE mindscape_pitr_backups gauge" in text
    rules = yaml.safe_load(render_gauge_rules("g", held))["groups"][0]["rules"]
    assert {"record": "mindscape_pitr_backups", "expr": "vector(3)"} in rules


@pytest.mark.parametrize(
    ("schedule", "keep", "days"),
    [("0 2 * * 0", 2, 7), ("0 2 * * 0", 4, 21), ("0 1 * * *", 3, 2), ("0 2 * * 1-5", 3, 2), ("@weekly", 1, 0)],
)
def test_the_promised_span_is_keep_full_minus_one_shortest_gaps(tmp_path: Path, schedule: str, keep: int, days: int):
    from mindscape_ops.config.backups import Pitr

    assert promised_span(Pitr(enabled=True, full_schedule=schedule, keep_full=keep)) == days * DAY
    assert shortest_gap("0 2,14 * * *") == 12 * 3600 and shortest_gap("0 0 30 2 *") is None


@pytest.mark.tools
def test_promtool_with_node_exporters_textfile(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    files = render_platform(pitr_platform(tmp_path / "p", node_exporter=True))
    (rules / "services.yml").write_text(files["deploy/prometheus/rules/services.yml"])
    shutil.copy(PROMTOOL / "textfile.yml", tmp_path / "textfile.yml")
    assert "SUCCESS" in run_tool("promtool", "test", "rules", tmp_path / "textfile.yml")


@pytest.mark.tools
def test_promtool_without_node_exporter_from_the_recording_rules(tmp_path: Path) -> None:
    """What `backup create --physical` writes (one full backup that ended at time 0, archiving on
    since then), loaded as recording rules: the full-backup alert fires from them; and a
    repository found empty fires the window alert."""
    files = render_platform(pitr_platform(tmp_path / "p", node_exporter=False))
    since = datetime.fromtimestamp(0, UTC)
    for name, held in (("recorded.yml", [backup("f", "full", 0.0)]), ("gone.yml", [])):
        rules = tmp_path / name / "rules"
        rules.mkdir(parents=True)
        (rules / "services.yml").write_text(files["deploy/prometheus/rules/services.yml"])
        (rules / PITR_RULES_FILE).write_text(render_gauge_rules("mindscape_pitr_repository", gauges(held, since)))
        shutil.copy(PROMTOOL / name, tmp_path / name / name)
        assert "SUCCESS" in run_tool("promtool", "test", "rules", tmp_path / name / name)
