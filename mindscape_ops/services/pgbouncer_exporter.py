"""The pgbouncer exporter: pool metrics (clients waiting for a server connection) for
Prometheus. It logs in to pgbouncer's admin console as the platform user, who is one of its
`stats_users`; the password reaches it as PGPASSWORD (libpq and Go's lib/pq both read it), so
no connection string with a password is ever on its command line."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mindscape_ops.services.contract import Alert, AlertGroup, DashboardRow, Panel
from mindscape_ops.services.exporter import exporter
from mindscape_ops.services.panels import SEL, query, timeseries
from mindscape_ops.services.spec import Container
from mindscape_ops.settings.base import ImageRef, PortSpec, Service

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform


PORT = 9127  # where it serves its metrics, in its container


class PgbouncerExporter(Service):
    image: ImageRef = "prometheuscommunity/pgbouncer-exporter:v0.9.0"
    port: PortSpec = PORT


def container(platform: Platform) -> Container:
    user = platform.services.postgres.user
    return Container(
        container_port=PORT,
        command=(
            f"--pgBouncer.connectionString=postgres://{user}@pgbouncer:6432/pgbouncer?sslmode=disable",
            f"--web.listen-address=:{PORT}",
        ),
        # the exporter takes no password file: the value goes in as PGPASSWORD at create time
        secrets={"PGPASSWORD": "POSTGRES_PASSWORD"},
    )


# -- its alerts (rendered into prometheus/rules/services.yml and runbooks/alerts.md) ---------------


def alerts(platform: Platform) -> AlertGroup:
    t = platform.monitoring.thresholds
    # The official exporter and Debian's name the metric differently: either one is read.
    waiting = "pgbouncer_pools_client_waiting_connections or pgbouncer_waiting_clients"
    return AlertGroup(
        "pgbouncer",
        (
            Alert(
                "PgbouncerWaitingClients",
                f"max by (instance, database) ({waiting}) > {t.pgbouncer_waiting_clients}",
                "2m",
                "warning",
                "pgbouncer",
                "{{ $value }} clients wait for a server connection to {{ $labels.database }}",
                "Clients queue in pgbouncer: every server connection of the pool is busy.",
                (
                    "See the pools: `SHOW POOLS;` on the pgbouncer admin database.",
                    "Raise services.pgbouncer.default_pool_size (within Postgres' max_connections), "
                    "or find slow queries.",
                ),
            ),
        ),
        rank=30,  # its place in services.yml and alerts.md
    )


# -- its row of the platform dashboard ----------------------------------------------------------


def dashboard(platform: Platform) -> tuple[DashboardRow, ...]:
    panels: list[Panel] = []
    # The official exporter and Debian's (the local image) name the series differently.
    waiting = f"pgbouncer_pools_client_waiting_connections{{{SEL}}} or pgbouncer_waiting_clients{{{SEL}}}"
    active = f"pgbouncer_pools_client_active_connections{{{SEL}}} or pgbouncer_active_clients{{{SEL}}}"
    panels.append(
        Panel(
            timeseries(
                "Clients waiting",
                "none",
                query(f"sum by (database) ({waiting})", "{{database}}"),
                threshold=platform.monitoring.thresholds.pgbouncer_waiting_clients + 0.5,
            ),
            width=12,
        )
    )
    panels.append(
        Panel(timeseries("Clients active", "none", query(f"sum by (database) ({active})", "{{database}}")), width=12)
    )
    return (DashboardRow("pgbouncer", tuple(panels), rank=40),)


SERVICE = exporter(
    name="pgbouncer_exporter",
    dashboard=dashboard,
    alerts=alerts,
    summary="pgbouncer pool metrics for Prometheus",
    settings=PgbouncerExporter,
    container=container,
    # the admin console's own pool is listed once the exporter reads SHOW POOLS
    port=PORT,
    ready_when='database="pgbouncer"',
    depends_on=("postgres", "pgbouncer"),  # logs in with the platform user's password
)
