"""The last good backup's time, for node_exporter's textfile collector (BackupTooOld): the file
`backup create` writes, and node_exporter's mount of it, which is live (written while the
container runs) and so never a reason to recreate node_exporter."""

from __future__ import annotations

import stat
from pathlib import Path

import yaml

from mindscape_ops.backup import metrics
from mindscape_ops.config.loader import load
from mindscape_ops.provision.convergence import Kind
from mindscape_ops.services.spec import container_specs
from mindscape_ops.workspace.project import Project
from mindscape_ops.workspace.store import Workspace

from .test_content_digest import created, plan


def test_record_success_keeps_every_service_and_the_newest_time(tmp_path: Path):
    metrics.record_success(tmp_path, "postgres", 1000.4)
    metrics.record_success(tmp_path, "redis", 2000)
    metrics.record_success(tmp_path, "postgres", 900)  # an older time never wins
    path = tmp_path / ".mindscape/metrics/mindscape_backup.prom"
    text = path.read_text()
    assert metrics.parse(text) == {"postgres": 1000.0, "redis": 2000.0}
    assert text.splitlines()[1] == "# TYPE mindscape_backup_last_success_timestamp_seconds gauge"
    assert 'mindscape_backup_last_success_timestamp_seconds{service="redis"} 2000' in text.splitlines()
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o755


def test_node_exporter_reads_the_folder_through_a_live_mount(tmp_path: Path):
    (tmp_path / "platform.yaml").write_text(
        yaml.safe_dump({"version": 1, "project": "nx", "services": {"node_exporter": {}}})
    )
    platform = load([tmp_path / "platform.yaml"], env={}).platform
    spec = container_specs(platform)["node_exporter"]
    assert "--collector.textfile.directory=/textfile" in spec.command
    textfile = next(m for m in spec.mounts if m.target == "/textfile")
    assert textfile.source == ".mindscape/metrics" and textfile.live and textfile.read_only


def test_a_new_backup_time_does_not_recreate_node_exporter(tmp_path: Path):
    (tmp_path / "platform.yaml").write_text(
        "version: 1\nproject: nx\nservices:\n  node_exporter: {image: mindscape-local/node_exporter:1.5, port: 19100}\n"
    )
    loaded = load([tmp_path / "platform.yaml"], env={})
    project = Project(loaded, Workspace(loaded.root))
    (tmp_path / ".mindscape/metrics").mkdir(parents=True)
    observed = created(project)
    metrics.record_success(tmp_path, "postgres", 1234)
    assert plan(project, observed)["node_exporter"][0] == Kind.UNCHANGED


def test_the_times_are_also_recording_rules_prometheus_can_load(tmp_path):
    """Where no node_exporter runs, Prometheus loads the same times as recording rules."""
    import yaml

    from mindscape_ops.backup.metrics import METRIC, METRICS_DIR, RULES_FILE, record_success

    record_success(tmp_path, "redis", 2000.4)
    record_success(tmp_path, "postgres", 1000)
    rules = yaml.safe_load((tmp_path / METRICS_DIR / RULES_FILE).read_text())["groups"][0]["rules"]
    assert rules == [
        {"record": METRIC, "expr": "vector(1000)", "labels": {"service": "postgres"}},
        {"record": METRIC, "expr": "vector(2000)", "labels": {"service": "redis"}},
    ]
