"""The node exporter: the host's metrics (filesystems, CPU, memory) for Prometheus, so the
disk-space alerts have a source. It reads the host through `/` mounted read-only at /host,
as its upstream documents for containers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from mindscape_ops.services.contract import METRICS_DIR, DashboardRow, Panel
from mindscape_ops.services.definition import KubeShape
from mindscape_ops.services.exporter import exporter
from mindscape_ops.services.panels import RATE, SEL, query, timeseries
from mindscape_ops.services.spec import Container, Mount, wget_healthcheck
from mindscape_ops.settings.base import ImageRef, PortSpec, Service

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform
    from mindscape_ops.workspace.project import Project


TEXTFILE = "/textfile"


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
                query(f"time() - mindscape_backup_last_success_timestamp_seconds{{{SEL}}}", "{{service}}"),
                threshold=platform.monitoring.thresholds.backup_max_age.seconds,
                description="From `mindscape backup create` on this machine (BackupTooOld).",
            ),
            width=24,
        )
    )
    return (DashboardRow("Backups", tuple(panels), rank=80),)


def dashboard(platform: Platform) -> tuple[DashboardRow, ...]:
    return (*host_row(platform), *backups_row(platform))


SERVICE = exporter(
    name="node_exporter",
    dashboard=dashboard,
    summary="host metrics (disk space) for Prometheus",
    settings=NodeExporter,
    container=container,
    port=PORT,
    ready_when="node_exporter_build_info",
    prepare=prepare,
    kubernetes=KubeShape(workload="DaemonSet"),
)
