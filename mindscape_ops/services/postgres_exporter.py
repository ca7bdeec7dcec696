"""The Postgres exporter: Postgres metrics for Prometheus, straight or through pgbouncer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mindscape_ops.config.base import ImageRef, PortSpec, Service
from mindscape_ops.services.definition import Metrics, Problem, ServiceDef
from mindscape_ops.services.spec import Probe, wget_healthcheck

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform


class PostgresExporter(Service):
    image: ImageRef = "quay.io/prometheuscommunity/postgres-exporter:v0.15.0"
    port: PortSpec = 9187
    via_pgbouncer: bool = False


def container(platform: Platform) -> dict:
    pg = platform.services.postgres
    host = "pgbouncer:6432" if platform.services.postgres_exporter.via_pgbouncer else "postgres:5432"
    return dict(
        container_port=9187,
        environment={"DATA_SOURCE_URI": f"{host}/{pg.database}?sslmode=disable", "DATA_SOURCE_USER": pg.user},
        secret_files={"DATA_SOURCE_PASS_FILE": "POSTGRES_PASSWORD"},
        healthcheck=wget_healthcheck(9187, "/metrics"),
    )


def problems(platform: Platform) -> list[Problem]:
    if platform.services.postgres_exporter.via_pgbouncer and "pgbouncer" not in platform.services.enabled():
        return [(("services", "postgres_exporter", "via_pgbouncer"), "needs services.pgbouncer enabled")]
    return []


SERVICE = ServiceDef(
    name="postgres_exporter",
    summary="Postgres metrics for Prometheus",
    settings=PostgresExporter,
    container=container,
    probe=Probe("http", "/metrics", expect="pg_up 1"),
    depends_on=("postgres",),
    metrics=Metrics(9187),
    problems=problems,
)
