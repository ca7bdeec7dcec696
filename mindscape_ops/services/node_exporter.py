"""The node exporter: the host's metrics (filesystems, CPU, memory) for Prometheus, so the
disk-space alerts have a source. It reads the host through `/` mounted read-only at /host,
as its upstream documents for containers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from mindscape_ops.services.contract import METRICS_DIR
from mindscape_ops.services.definition import KubeShape
from mindscape_ops.services.exporter import exporter
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


SERVICE = exporter(
    name="node_exporter",
    summary="host metrics (disk space) for Prometheus",
    settings=NodeExporter,
    container=container,
    port=PORT,
    ready_when="node_exporter_build_info",
    prepare=prepare,
    kubernetes=KubeShape(workload="DaemonSet"),
)
