"""The node exporter: the host's metrics (filesystems, CPU, memory) for Prometheus, so the
disk-space alerts have a source. It reads the host through `/` mounted read-only at /host,
as its upstream documents for containers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from mindscape_ops.services.contract import METRICS_DIR, Alert, AlertGroup, DashboardRow, Panel, number, percent
from mindscape_ops.services.definition import KubeShape
from mindscape_ops.services.exporter import exporter
from mindscape_ops.services.panels import RATE, SEL, query, timeseries
from mindscape_ops.services.spec import Container, Mount, wget_healthcheck
from mindscape_ops.settings.base import ImageRef, PortSpec, Service
from mindscape_ops.settings.schedule import backup_age_limit

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform
    from mindscape_ops.workspace.project import Project


TEXTFILE = "/textfile"
BACKUP_METRIC = "mindscape_backup_last_success_timestamp_seconds"  # `backup create` writes it to METRICS_DIR


def prepare(project: Project, secrets: Mapping[str, str]) -> list[str]:
    """The textfile folder exists (empty) before node_exporter mounts it."""
    folder = project.root / METRICS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)  # read by node_exporter's unprivileged user; .mindscape/ itself is 0700
    return []


PORT = 9100  # where it serves its metrics, in its container


class NodeExporter(Service):
    image: ImageRef = "prom/node-exporter:v1.8.2"
    port: PortSpec = PORT


def container(platform: Platform) -> Container:
    return Container(
        container_port=PORT,
        command=("--path.rootfs=/host", f"--collector.textfile.directory={TEXTFILE}"),
        # the time of each good backup, written by `mindscape backup create` (BackupTooOld)
        mounts=(Mount("/", "/host", host=True), Mount(METRICS_DIR, TEXTFILE, live=True)),
        healthcheck=wget_healthcheck(PORT, "/metrics"),
    )


# -- its rows of the platform dashboard: the host, and the backups it reports -----------------------


def host_row(platform: Platform) -> tuple[DashboardRow, ...]:
    t = platform.monitoring.thresholds
    fs = 'fstype!~"tmpfs|ramfs|overlay|squashfs|nsfs"'
    panels: list[Panel] = []
    panels.append(
        Panel(
            timeseries(
                "CPU busy",
                "percentunit",
                query(
                    f'1 - avg by (instance) (rate(node_cpu_seconds_total{{{SEL}, mode="idle"}}{RATE}))', "{{instance}}"
                ),
            )
        )
    )
    panels.append(
        Panel(
            timeseries(
                "Memory available",
                "percentunit",
                query(f"node_memory_MemAvailable_bytes{{{SEL}}} / node_memory_MemTotal_bytes{{{SEL}}}", "{{instance}}"),
                threshold=t.memory_available_ratio,
            )
        )
    )
    panels.append(
        Panel(
            timeseries(
                "Disk free",
                "percentunit",
                query(
                    f"node_filesystem_avail_bytes{{{SEL}, {fs}}} / node_filesystem_size_bytes{{{SEL}, {fs}}}",
                    "{{mountpoint}}",
                ),
                threshold=t.disk_free_ratio,
            )
        )
    )
    return (DashboardRow("Host", tuple(panels), rank=70),)


def backups_row(platform: Platform) -> tuple[DashboardRow, ...]:
    if not (platform.backups.enabled and platform.backup_services):
        return ()
    panels: list[Panel] = []
    panels.append(
        Panel(
            timeseries(
                "Age of the last good backup",
                "s",
                query(f"time() - {BACKUP_METRIC}{{{SEL}}}", "{{service}}"),
                threshold=backup_age_limit(platform.monitoring.thresholds.backup_max_age, platform.backups.schedule),
                description="From `mindscape backup create` on this machine (BackupTooOld).",
            ),
            width=24,
        )
    )
    return (DashboardRow("Backups", tuple(panels), rank=80),)


# -- its alerts -----------------------------------------------------------------------------------

# Filesystems worth watching: not the in-memory or image-layer ones.
_FS = 'fstype!~"tmpfs|ramfs|overlay|squashfs|nsfs"'


def alerts(platform: Platform) -> AlertGroup:
    """The host's alerts, on this exporter's metrics: rendered only where it runs."""
    t = platform.monitoring.thresholds
    free = f"node_filesystem_avail_bytes{{{_FS}}} / (node_filesystem_size_bytes{{{_FS}}} > 0)"
    return AlertGroup(
        "node",
        (
            Alert(
                "DiskSpaceLow",
                f"{free} < {t.disk_free_ratio}",
                "10m",
                "critical",
                "{{ $labels.job }}",
                "{{ $labels.mountpoint }} on {{ $labels.instance }} has {{ $value | humanizePercentage }} free",
                f"Free space is below {percent(t.disk_free_ratio)}. Free space or grow the volume before writes fail.",
                (
                    "What is big: `docker system df -v`; old backups: `mindscape backup prune`.",
                    "Grow the volume, or lower services.prometheus.retention.",
                ),
            ),
            Alert(
                "DiskFillingUp",
                f"predict_linear(node_filesystem_avail_bytes{{{_FS}}}[6h], 24 * 3600) < 0 and {free} < 0.4",
                "1h",
                "warning",
                "{{ $labels.job }}",
                "{{ $labels.mountpoint }} on {{ $labels.instance }} will be full within 24 hours",
                "At the rate of the last 6 hours this filesystem runs out of space within a day.",
                ("As DiskSpaceLow, before it fires.",),
            ),
            Alert(
                "MemoryLow",
                f"node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes < {t.memory_available_ratio}",
                "5m",
                "warning",
                "{{ $labels.job }}",
                "{{ $labels.instance }} has {{ $value | humanizePercentage }} memory available",
                f"Less than {percent(t.memory_available_ratio)} of memory is available: the kernel will soon kill "
                "processes.",
                ("Who uses it: `docker stats --no-stream`; lower Postgres' shared_buffers or Redis' maxmemory.",),
            ),
        ),
        rank=90,  # after the services' own groups
    )


def dashboard(platform: Platform) -> tuple[DashboardRow, ...]:
    return (*host_row(platform), *backups_row(platform))


# -- the backups' alerts: the time of each good backup reaches Prometheus through it -----------------


def _duration(seconds: float) -> str:
    """Prometheus' spelling of whole minutes or hours: 74h, 90m."""
    minutes = int(seconds // 60)
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


def backup_alerts(platform: Platform) -> tuple[AlertGroup, ...]:
    """The backups group (after the services' own groups), where backups are made and this
    exporter reads their times."""
    return backup_group(platform, "node_exporter", "where node_exporter reads it (.mindscape/metrics)")


def backup_group(platform: Platform, job: str, where: str) -> tuple[AlertGroup, ...]:
    """Pure: BackupTooOld and BackupNeverRecorded when the platform backs up; `job` is the scrape
    job whose `up` says the times could have been read for a while, `where` how they are."""
    if not (platform.backups.enabled and platform.backup_services):
        return ()
    limit = backup_age_limit(platform.monitoring.thresholds.backup_max_age, platform.backups.schedule)
    age = _duration(limit)
    reader = "node_exporter" if job == "node_exporter" else job.capitalize()
    return (
        AlertGroup(
            "backups",
            (
                Alert(
                    "BackupTooOld",
                    f"time() - {BACKUP_METRIC} > {number(limit)}",
                    "10m",
                    "critical",
                    "{{ $labels.service }}",
                    "The last good backup of {{ $labels.service }} is {{ $value | humanizeDuration }} old",
                    f"No backup of this service has succeeded for longer than {age}. `mindscape backup create` "
                    f"writes the time of each success {where}.",
                    (
                        "`mindscape backup list` shows the last ones; `mindscape backup create --service SERVICE` "
                        "makes one now and says why it fails.",
                        "Check the schedule (backups.schedule) and the backup workflow's last runs.",
                    ),
                ),
                Alert(
                    "BackupNeverRecorded",
                    "("
                    + " or ".join(f'absent({BACKUP_METRIC}{{service="{name}"}})' for name in platform.backup_services)
                    + f') and on() (up{{job="{job}"}} == 1)',
                    str(age),
                    "critical",
                    "{{ $labels.service }}",
                    "No good backup of {{ $labels.service }} is recorded",
                    f"{reader} has run for {age} and no backup of this service has succeeded on this machine "
                    "(BackupTooOld only sees a service that had one).",
                    (
                        "`mindscape backup create --service SERVICE` makes one now and says why it fails.",
                        "Backups made elsewhere (a CI runner) are not recorded here: run them where the platform runs.",
                    ),
                ),
            ),
        ),
    )


SERVICE = exporter(
    name="node_exporter",
    dashboard=dashboard,
    alerts=alerts,
    summary="host metrics (disk space) for Prometheus",
    settings=NodeExporter,
    container=container,
    port=PORT,
    ready_when="node_exporter_build_info",
    prepare=prepare,
    kubernetes=KubeShape(workload="DaemonSet"),
    shared_alerts=backup_alerts,  # BackupTooOld, BackupNeverRecorded (group backups)
)
