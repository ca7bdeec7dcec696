"""The pgbouncer exporter: pool metrics (clients waiting for a server connection) for
Prometheus. It logs in to pgbouncer's admin console as the platform user, who is one of its
`stats_users`; the password reaches it as PGPASSWORD (libpq and Go's lib/pq both read it), so
no connection string with a password is ever on its command line."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mindscape_ops.services.contract import HttpProbe
from mindscape_ops.services.definition import Metrics, ServiceDef
from mindscape_ops.services.spec import Container
from mindscape_ops.settings.base import ImageRef, PortSpec, Service

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform


class PgbouncerExporter(Service):
    image: ImageRef = "prometheuscommunity/pgbouncer-exporter:v0.9.0"
    port: PortSpec = 9127


def container(platform: Platform) -> Container:
    user = platform.services.postgres.user
    return Container(
        container_port=9127,
        command=(
            f"--pgBouncer.connectionString=postgres://{user}@pgbouncer:6432/pgbouncer?sslmode=disable",
            "--web.listen-address=:9127",
        ),
        # the exporter takes no password file: the value goes in as PGPASSWORD at create time
        secrets={"PGPASSWORD": "POSTGRES_PASSWORD"},
    )


SERVICE = ServiceDef(
    name="pgbouncer_exporter",
    summary="pgbouncer pool metrics for Prometheus",
    settings=PgbouncerExporter,
    container=container,
    # the admin console's own pool is listed once the exporter reads SHOW POOLS
    probe=HttpProbe("/metrics", expect='database="pgbouncer"'),
    depends_on=("postgres", "pgbouncer"),  # logs in with the platform user's password
    metrics=Metrics(9127),
)
