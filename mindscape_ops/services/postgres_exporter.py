"""The Postgres exporter: Postgres metrics for Prometheus, straight or through pgbouncer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mindscape_ops.services.definition import Artifact, KubeShape, Problem, deploy
from mindscape_ops.services.exporter import exporter
from mindscape_ops.services.spec import Container, Mount, wget_healthcheck
from mindscape_ops.settings.base import ImageRef, PortSpec, Service

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform


QUERIES = "/etc/postgres_exporter/queries.yaml"


PORT = 9187  # where it serves its metrics, in its container


class PostgresExporter(Service):
    image: ImageRef = "quay.io/prometheuscommunity/postgres-exporter:v0.15.0"
    port: PortSpec = PORT
    via_pgbouncer: bool = False


def container(platform: Platform) -> Container:
    pg = platform.services.postgres
    host = "pgbouncer:6432" if platform.services.postgres_exporter.via_pgbouncer else "postgres:5432"
    return Container(
        container_port=PORT,
        environment={
            "DATA_SOURCE_URI": f"{host}/{pg.database}?sslmode=disable",
            "DATA_SOURCE_USER": pg.user,
            "PG_EXPORTER_EXTEND_QUERY_PATH": QUERIES,
        },
        mounts=(Mount(f"{platform.paths.deploy}/postgres_exporter/queries.yaml", QUERIES),),
        secret_files={"DATA_SOURCE_PASS_FILE": "POSTGRES_PASSWORD"},
        healthcheck=wget_healthcheck(PORT, "/metrics"),
    )


def problems(platform: Platform) -> list[Problem]:
    if platform.services.postgres_exporter.via_pgbouncer and "pgbouncer" not in platform.services.enabled():
        return [(("services", "postgres_exporter", "via_pgbouncer"), "needs services.pgbouncer enabled")]
    return []


SERVICE = exporter(
    name="postgres_exporter",
    summary="Postgres metrics for Prometheus",
    settings=PostgresExporter,
    container=container,
    port=PORT,
    ready_when="pg_up 1",
    depends_on=("postgres",),
    # its extra queries: the server's start time, for PostgresRestarted
    artifacts=(Artifact("postgres_exporter/queries.yaml.j2", deploy("postgres_exporter/queries.yaml")),),
    problems=problems,
    kubernetes=KubeShape(talks_to=lambda p: ("pgbouncer",) if p.services.postgres_exporter.via_pgbouncer else ()),
)
