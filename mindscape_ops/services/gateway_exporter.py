"""The gateway exporter: request metrics of the gateway (nginx), which has none of its own
(stub_status counts connections, not statuses). nginx sends one syslog line per request
(status and duration) over UDP to mtail, which counts requests by status and times them in a
histogram: the source of the gateway's 5xx-ratio and latency alerts. Nothing is written to
disk, so there is no log file to rotate. Without services.gateway it counts nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mindscape_ops.services.definition import Artifact, KubeShape, deploy
from mindscape_ops.services.exporter import exporter
from mindscape_ops.services.spec import Container, Mount
from mindscape_ops.settings.base import ImageRef, PortSpec, Service

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform

SYSLOG_PORT = 5140  # UDP, on the platform network only


PORT = 3903  # where it serves its metrics, in its container


class GatewayExporter(Service):
    image: ImageRef = "ghcr.io/google/mtail:3.0.8"
    port: PortSpec = PORT


def container(platform: Platform) -> Container:
    return Container(
        container_port=PORT,
        command=(
            "--progs",
            "/etc/mtail",
            "--logs",
            f"udp://0.0.0.0:{SYSLOG_PORT}",
            "--port",
            str(PORT),
            "--logtostderr",
        ),
        mounts=(Mount(f"{platform.paths.deploy}/gateway_exporter", "/etc/mtail"),),
    )


SERVICE = exporter(
    name="gateway_exporter",
    summary="request metrics of the gateway (status, latency) from its access log, by mtail",
    settings=GatewayExporter,
    container=container,
    port=PORT,
    ready_when="mtail",
    artifacts=(Artifact("gateway_exporter/gateway.mtail.j2", deploy("gateway_exporter/gateway.mtail")),),
    kubernetes=KubeShape(udp_ports=(SYSLOG_PORT,), udp_senders=("gateway",)),
)
