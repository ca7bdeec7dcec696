"""The memcached exporter: memcached's counters (hits, evictions, connections, memory) for
Prometheus. memcached takes no login, so neither does the exporter."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mindscape_ops.services.contract import Alert, AlertGroup, DashboardRow, Panel
from mindscape_ops.services.exporter import exporter
from mindscape_ops.services.panels import RATE, SEL, query, timeseries
from mindscape_ops.services.spec import Container
from mindscape_ops.settings.base import ImageRef, PortSpec, Service

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform

PORT = 9150  # where it serves its metrics, in its container
FULL_RATIO = 0.9  # of its memory: evictions start soon after


class MemcachedExporter(Service):
    image: ImageRef = "prom/memcached-exporter:v0.15.0"
    port: PortSpec = PORT


def container(platform: Platform) -> Container:
    return Container(
        container_port=PORT,
        command=("--memcached.address=memcached:11211", f"--web.listen-address=:{PORT}"),
        # the official image is a static binary on busybox-less base: readiness is probed
    )


# -- its alerts (rendered into prometheus/rules/services.yml and runbooks/alerts.md) ---------------


def alerts(platform: Platform) -> AlertGroup:
    return AlertGroup(
        "memcached",
        (
            Alert(
                "MemcachedDown",
                "memcached_up == 0",
                "1m",
                "critical",
                "memcached",
                "memcached is down",
                "memcached_exporter at {{ $labels.instance }} cannot reach memcached: every cache lookup misses.",
                ("`mindscape status`; `mindscape logs memcached --tail 200`; `mindscape up memcached`.",),
            ),
            Alert(
                "MemcachedNearlyFull",
                f"memcached_current_bytes / memcached_limit_bytes > {FULL_RATIO}",
                "15m",
                "warning",
                "memcached",
                "memcached holds {{ $value | humanizePercentage }} of its memory",
                "memcached is close to services.memcached.memory: it evicts the least recently used items, "
                "so the hit ratio may fall.",
                ("Raise services.memcached.memory, or shorten the items' expiry times.",),
            ),
            Alert(
                "MemcachedConnectionsNearMax",
                "memcached_current_connections / memcached_max_connections > 0.9",
                "5m",
                "warning",
                "memcached",
                "memcached uses {{ $value | humanizePercentage }} of its connections",
                "memcached is close to services.memcached.max_connections: new clients will be refused.",
                ("Raise services.memcached.max_connections, or find the client that leaks connections.",),
            ),
        ),
        rank=25,  # its place in services.yml and alerts.md: after Redis
    )


# -- its row of the platform dashboard ----------------------------------------------------------


def dashboard(platform: Platform) -> tuple[DashboardRow, ...]:
    hits = f'rate(memcached_commands_total{{{SEL}, command="get", status="hit"}}{RATE})'
    gets = f'rate(memcached_commands_total{{{SEL}, command="get"}}{RATE})'
    panels = (
        Panel(
            timeseries(
                "Memory",
                "bytes",
                query(f"memcached_current_bytes{{{SEL}}}", "used {{instance}}"),
                query(f"memcached_limit_bytes{{{SEL}}}", "limit {{instance}}"),
            )
        ),
        Panel(timeseries("Get hit ratio", "percentunit", query(f"sum({hits}) / sum({gets})", "hits"))),
        Panel(
            timeseries(
                "Evictions and connections",
                "short",
                query(f"rate(memcached_items_evicted_total{{{SEL}}}{RATE})", "evicted/s {{instance}}"),
                query(f"memcached_current_connections{{{SEL}}}", "connections {{instance}}"),
            )
        ),
    )
    return (DashboardRow("Memcached", panels, rank=55),)


SERVICE = exporter(
    name="memcached_exporter",
    summary="memcached metrics for Prometheus",
    settings=MemcachedExporter,
    container=container,
    port=PORT,
    ready_when="memcached_up 1",
    depends_on=("memcached",),
    alerts=alerts,
    dashboard=dashboard,
)
