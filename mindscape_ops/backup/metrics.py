"""The time of each service's last good backup, where node_exporter's textfile collector reads
it (.mindscape/metrics/mindscape_backup.prom, mounted into node_exporter): the source of the
BackupTooOld alert. A file, not a push gateway: nothing more to run, and the value survives
restarts of Prometheus and of node_exporter alike. Beside it, the same times as Prometheus
recording rules (mindscape_backup.rules.yml), which Prometheus itself loads where node_exporter
does not run (services/prometheus.py), so a platform that backs up always has the alert."""

from __future__ import annotations

import re
from pathlib import Path

METRICS_DIR = ".mindscape/metrics"  # relative to the project root; mounted at /textfile
FILE = "mindscape_backup.prom"
RULES_FILE = "mindscape_backup.rules.yml"  # Prometheus loads *.rules.yml; the collector reads *.prom only
METRIC = "mindscape_backup_last_success_timestamp_seconds"
_LINE = re.compile(rf'^{METRIC}{{service="([a-z0-9_]+)"}} (\d+(?:\.\d+)?)$', re.M)


def parse(text: str) -> dict[str, float]:
    """Pure: service -> last success (unix seconds), from the file's text."""
    return {service: float(value) for service, value in _LINE.findall(text)}


def render(last: dict[str, float]) -> str:
    """Pure: the file's text, in the Prometheus text format, one line per service."""
    lines = [
        f"# HELP {METRIC} When the last good backup of the service was made (mindscape backup create).",
        f"# TYPE {METRIC} gauge",
        *(f'{METRIC}{{service="{service}"}} {last[service]:.0f}' for service in sorted(last)),
    ]
    return "\n".join(lines) + "\n"


def render_rules(last: dict[str, float]) -> str:
    """Pure: the recording rules giving Prometheus each time as the same metric (a constant)."""
    lines = [
        "# The time of each service's last good backup (mindscape backup create), for Prometheus",
        "groups:",
        "  - name: mindscape_backup_times",
        "    rules:" + ("" if last else " []"),
    ]
    for service in sorted(last):
        lines += [
            f"      - record: {METRIC}",
            f"        expr: vector({last[service]:.0f})",
            f"        labels: {{service: {service}}}",
        ]
    return "\n".join(lines) + "\n"


def record_success(root: Path, service: str, when: float) -> None:
    """Note a good backup of `service` at `when`. Written atomically (the collector never reads
    half a file), readable by node_exporter's unprivileged user."""
    from mindscape_ops.adapters.files import atomic_write

    folder = root / METRICS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    path = folder / FILE
    try:
        last = parse(path.read_text())
    except OSError:
        last = {}
    last[service] = max(when, last.get(service, 0.0))
    atomic_write(path, render(last), mode=0o644)
    atomic_write(folder / RULES_FILE, render_rules(last), mode=0o644)


PITR_FILE = "mindscape_pitr.prom"
PITR_RULES_FILE = "mindscape_pitr.rules.yml"


def render_gauges(gauges: dict[str, tuple[str, float]]) -> str:
    """Pure: gauges without labels (name -> (help, value)) in the Prometheus text format."""
    lines = []
    for name in sorted(gauges):
        text, value = gauges[name]
        lines += [f"# HELP {name} {text}", f"# TYPE {name} gauge", f"{name} {value:.0f}"]
    return "\n".join(lines) + "\n"


def render_gauge_rules(group: str, gauges: dict[str, tuple[str, float]]) -> str:
    """Pure: the same gauges as recording rules (constants) Prometheus loads itself."""
    lines = [f"# {group}: recorded by mindscape for Prometheus", "groups:", f"  - name: {group}", "    rules:"]
    if not gauges:
        lines[-1] += " []"
    for name in sorted(gauges):
        lines += [f"      - record: {name}", f"        expr: vector({gauges[name][1]:.0f})"]
    return "\n".join(lines) + "\n"


def record_pitr(root: Path, gauges: dict[str, tuple[str, float]]) -> None:
    """What the repository held after a physical backup (backups.pitr), for the alerts on it:
    for node_exporter's textfile collector and as recording rules where Prometheus reads them."""
    from mindscape_ops.adapters.files import atomic_write

    folder = root / METRICS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    atomic_write(folder / PITR_FILE, render_gauges(gauges), mode=0o644)
    atomic_write(folder / PITR_RULES_FILE, render_gauge_rules("mindscape_pitr_repository", gauges), mode=0o644)
