"""The gateway exporter: request metrics of the gateway (nginx), which has none of its own
(stub_status counts connections, not statuses). nginx sends one syslog line per request
(status and duration) over UDP to mtail, which counts requests by status and times them in a
histogram: the source of the gateway's 5xx-ratio and latency alerts. The lines go through a
relay in the gateway (templates/gateway/nginx.conf.j2), which looks this service up per line:
neither needs the other to start, and a new container of this one needs no gateway restart. Nothing is written to
disk, so there is no log file to rotate. Without services.gateway it counts nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mindscape_ops.services.contract import Alert, AlertGroup, DashboardRow, Panel, number, percent
from mindscape_ops.services.definition import Artifact, KubeShape, deploy
from mindscape_ops.services.exporter import exporter
from mindscape_ops.services.panels import RATE, SEL, query, timeseries
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


# -- its alerts (rendered into prometheus/rules/services.yml and runbooks/alerts.md) ---------------


def alerts(platform: Platform) -> AlertGroup:
    t = platform.monitoring.thresholds
    rate = 'rate(gateway_http_requests_total{status=~"5.."}[5m])'
    latency = number(t.http_latency_p95.seconds)
    return AlertGroup(
        "gateway",
        (
            Alert(
                "GatewayErrorRatioHigh",
                f"sum({rate}) / sum(rate(gateway_http_requests_total[5m])) > {t.http_error_ratio}",
                "5m",
                "critical",
                "gateway",
                "{{ $value | humanizePercentage }} of requests through the gateway answer 5xx",
                f"More than {percent(t.http_error_ratio)} of the gateway's answers over 5 minutes were 5xx "
                "(counted by gateway_exporter from its access log).",
                (
                    "502/504 come from the gateway when the application is down or slow: check it directly.",
                    "`mindscape logs gateway --tail 200` shows the failing requests (audit log).",
                ),
            ),
            Alert(
                "GatewayLatencyP95High",
                "histogram_quantile(0.95, sum by (le) (rate(gateway_http_request_duration_seconds_bucket[5m]))) > "
                + latency,
                "10m",
                "warning",
                "gateway",
                "p95 latency through the gateway is {{ $value | humanizeDuration }}",
                f"More than 5% of requests through the gateway took longer than {t.http_latency_p95} over 5 minutes.",
                ("The gateway adds little: the application or its database is slow (see PostgresLongTransaction).",),
            ),
        ),
        rank=40,  # its place in services.yml and alerts.md
    )


# -- its row of the platform dashboard ----------------------------------------------------------


def dashboard(platform: Platform) -> tuple[DashboardRow, ...]:
    t = platform.monitoring.thresholds
    total = f"sum(rate(gateway_http_requests_total{{{SEL}}}{RATE}))"
    panels: list[Panel] = []
    panels.append(
        Panel(
            timeseries(
                "Requests by status",
                "reqps",
                query(f"sum by (status) (rate(gateway_http_requests_total{{{SEL}}}{RATE}))", "{{status}}"),
            )
        )
    )
    panels.append(
        Panel(
            timeseries(
                "Gateway 5xx ratio",
                "percentunit",
                query(f'sum(rate(gateway_http_requests_total{{{SEL}, status=~"5.."}}{RATE})) / {total}', "5xx"),
                threshold=t.http_error_ratio,
            )
        )
    )
    panels.append(
        Panel(
            timeseries(
                "Gateway latency",
                "s",
                query(
                    "histogram_quantile(0.5, sum by (le) "
                    f"(rate(gateway_http_request_duration_seconds_bucket{{{SEL}}}{RATE})))",
                    "p50",
                ),
                query(
                    "histogram_quantile(0.95, sum by (le) "
                    f"(rate(gateway_http_request_duration_seconds_bucket{{{SEL}}}{RATE})))",
                    "p95",
                ),
                threshold=round(t.http_latency_p95.seconds, 6),
            )
        )
    )
    return (DashboardRow("Gateway", tuple(panels), rank=60),)


SERVICE = exporter(
    name="gateway_exporter",
    dashboard=dashboard,
    alerts=alerts,
    summary="request metrics of the gateway (status, latency) from its access log, by mtail",
    settings=GatewayExporter,
    container=container,
    port=PORT,
    ready_when="mtail",
    artifacts=(Artifact("gateway_exporter/gateway.mtail.j2", deploy("gateway_exporter/gateway.mtail")),),
    kubernetes=KubeShape(udp_ports=(SYSLOG_PORT,), udp_senders=("gateway",)),
)
