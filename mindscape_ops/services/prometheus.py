"""Prometheus: scrapes every service that has metrics (from the registry) and the
applications in `monitoring.targets`, and evaluates the alert rules."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mindscape_ops.check.monitoring import PROMETHEUS_GATES
from mindscape_ops.services.alertmanager import alerting_warnings
from mindscape_ops.services.contract import HttpProbe
from mindscape_ops.services.definition import Artifact, KubeShape, Metrics, ServiceDef, deploy
from mindscape_ops.services.spec import Container, Mount, wget_healthcheck
from mindscape_ops.settings.base import ImageRef, PortSpec, ScrapeTarget, Service
from mindscape_ops.settings.types import Duration

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform


class Prometheus(Service):
    image: ImageRef = "prom/prometheus:v2.53.0"
    port: PortSpec = 9090
    scrape_interval: Duration = Duration("15s")
    evaluation_interval: Duration = Duration("15s")
    retention: Duration = Duration("15d")
    targets: list[ScrapeTarget] = []


def container(platform: Platform) -> Container:
    return Container(
        container_port=9090,
        command=(
            "--config.file=/etc/prometheus/prometheus.yml",
            "--storage.tsdb.path=/prometheus",
            f"--storage.tsdb.retention.time={platform.services.prometheus.retention}",
            "--web.enable-lifecycle",
        ),
        volume_target="/prometheus",
        mounts=(Mount(f"{platform.paths.deploy}/prometheus", "/etc/prometheus"),),
        healthcheck=wget_healthcheck(9090, "/-/ready"),
        reach_host=True,  # applications run on the host
    )


SERVICE = ServiceDef(
    name="prometheus",
    summary="metrics and alert rules",
    settings=Prometheus,
    container=container,
    probe=HttpProbe("/-/ready"),
    metrics=Metrics(9090),
    artifacts=(
        Artifact("prometheus/prometheus.yml.j2", deploy("prometheus/prometheus.yml")),
        Artifact("prometheus/rules/services.yml.j2", deploy("prometheus/rules/services.yml")),
        Artifact(
            "prometheus/rules/applications.yml.j2",
            deploy("prometheus/rules/applications.yml"),
            lambda p: bool(p.scrape_targets),
        ),
        Artifact(
            "prometheus/rules/custom.yml.j2", deploy("prometheus/rules/custom.yml"), lambda p: bool(p.monitoring.rules)
        ),
        # the runbook every alert's runbook_url points at
        Artifact("runbooks/alerts.md.j2", lambda p: f"{p.paths.runbooks}/alerts.md"),
    ),
    prepare=lambda project, secrets: (
        [] if "alertmanager" in project.platform.services.enabled() else alerting_warnings(project.platform)
    ),  # says loudly when alerts have nowhere to go
    gates=PROMETHEUS_GATES,  # its `mindscape check` gates
    kubernetes=KubeShape(cpu=("100m", "1"), memory=("256Mi", "1Gi")),
)
