"""Grafana: dashboards over Prometheus, provisioned from rendered files."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mindscape_ops.services.contract import Failed, Gate, GateContext, HttpProbe
from mindscape_ops.services.definition import Artifact, KubeShape, Metrics, ServiceDef, deploy
from mindscape_ops.services.spec import Container, Mount, wget_healthcheck
from mindscape_ops.settings.base import ImageRef, PortSpec, Service
from mindscape_ops.settings.types import Identifier

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform


LOGS_PLUGIN = "victoriametrics-logs-datasource"


class Grafana(Service):
    image: ImageRef = "grafana/grafana:11.1.0"
    port: PortSpec = 3000
    admin_user: Identifier = "admin"


def container(platform: Platform) -> Container:
    deploy_dir = platform.paths.deploy
    return Container(
        container_port=3000,
        environment={
            "GF_SECURITY_ADMIN_USER": platform.services.grafana.admin_user,
            "GF_PATHS_PROVISIONING": "/etc/grafana/provisioning",
            "GF_ANALYTICS_REPORTING_ENABLED": "false",
            "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
            # the VictoriaLogs datasource is a plugin (installed by the image at start)
            **({"GF_INSTALL_PLUGINS": LOGS_PLUGIN} if "victorialogs" in platform.services.enabled() else {}),
        },
        secret_files={"GF_SECURITY_ADMIN_PASSWORD__FILE": "GRAFANA_ADMIN_PASSWORD"},
        volume_target="/var/lib/grafana",
        mounts=(
            Mount(f"{deploy_dir}/grafana/provisioning", "/etc/grafana/provisioning"),
            Mount(f"{deploy_dir}/grafana/dashboards", "/etc/grafana/dashboards"),
        ),
        healthcheck=wget_healthcheck(3000, "/api/health"),
    )


# -- its `mindscape check` gate (monitoring group) -------------------------------------------------


def grafana(ctx: GateContext) -> str:
    auth = (ctx.platform.services.grafana.admin_user, ctx.secrets.get("GRAFANA_ADMIN_PASSWORD", ""))
    found = ctx.get_json("grafana", "/api/datasources", auth=auth)
    prometheus = [d for d in found if d.get("type") == "prometheus"]
    if not prometheus:
        raise Failed(f"no Prometheus datasource ({len(found)} datasources provisioned)")
    uid = prometheus[0].get("uid")
    health = ctx.get_json("grafana", f"/api/datasources/uid/{uid}/health", auth=auth)
    if str(health.get("status", "")).upper() != "OK":
        raise Failed(f"datasource {uid}: {health.get('message') or health.get('status')}")
    return f"datasource {prometheus[0].get('name')} ({uid}) provisioned and answering"


GATES = (
    Gate(
        "monitoring.grafana",
        grafana,
        "`mindscape render --check`, then `mindscape up grafana`; `mindscape logs grafana` names the problem",
    ),
)


def plugin_download(platform: Platform) -> set[int]:
    """The logs datasource plugin, downloaded when Grafana starts (GF_INSTALL_PLUGINS)."""
    return {443} if "victorialogs" in platform.services.enabled() else set()


OPERATOR_DATASOURCE = (
    "kubernetes: Grafana's datasource is prometheus:9090, which the Prometheus Operator does not make; "
    "expose your Prometheus under that name (a Service) or edit the datasource"
)

SERVICE = ServiceDef(
    name="grafana",
    summary="dashboards",
    settings=Grafana,
    container=container,
    probe=HttpProbe("/api/health", expect='"ok"'),
    depends_on=("prometheus",),
    secrets=("GRAFANA_ADMIN_PASSWORD",),
    metrics=Metrics(3000),
    artifacts=(
        Artifact("grafana/datasources.yml.j2", deploy("grafana/provisioning/datasources/prometheus.yml")),
        Artifact("grafana/dashboards.yml.j2", deploy("grafana/provisioning/dashboards/mindscape.yml")),
        Artifact("grafana/platform-overview.json.j2", deploy("grafana/dashboards/platform-overview.json")),
    ),
    gates=GATES,  # its `mindscape check` gates
    # its datasources besides prometheus (depends_on): the trace and the log stores when they run
    kubernetes=KubeShape(
        workload="StatefulSet",  # its database (users, annotations) on a PVC
        run_as=472,
        memory=("128Mi", "512Mi"),
        talks_to=lambda platform: ("jaeger", "victorialogs"),
        outside_ports=plugin_download,
        cluster_notes=lambda platform: [OPERATOR_DATASOURCE] if platform.kubernetes.prometheus_operator else [],
    ),
)
