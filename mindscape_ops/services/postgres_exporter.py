"""The Postgres exporter: Postgres metrics for Prometheus, straight or through pgbouncer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mindscape_ops.services.contract import Alert, AlertGroup, DashboardRow, Panel, number, percent
from mindscape_ops.services.definition import Artifact, KubeShape, Problem, deploy
from mindscape_ops.services.exporter import exporter
from mindscape_ops.services.panels import RATE, SEL, query, timeseries
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


# -- its alerts (rendered into prometheus/rules/services.yml and runbooks/alerts.md) ---------------


def alerts(platform: Platform) -> AlertGroup:
    t = platform.monitoring.thresholds
    logs = "`mindscape logs postgres --tail 200`"
    return AlertGroup(
        "postgres",
        (
            Alert(
                "PostgresDown",
                "pg_up == 0",
                "1m",
                "critical",
                "postgres",
                "Postgres is down",
                "postgres_exporter at {{ $labels.instance }} cannot connect to Postgres.",
                (f"`mindscape status`; {logs} says why; `mindscape up postgres`.",),
            ),
            Alert(
                "PostgresTooManyConnections",
                f"sum(pg_stat_activity_count) / max(pg_settings_max_connections) > {t.postgres_connections_ratio}",
                "5m",
                "warning",
                "postgres",
                "Postgres uses {{ $value | humanizePercentage }} of max_connections",
                f"More than {percent(t.postgres_connections_ratio)} of max_connections are in use; new connections "
                "will soon be refused. Check for leaks, or pool through pgbouncer.",
                (
                    "Who holds them: `SELECT usename, application_name, state, count(*) FROM pg_stat_activity "
                    "GROUP BY 1, 2, 3 ORDER BY 4 DESC;`",
                    "Connect the application through services.pgbouncer, or raise max_connections in "
                    "services.postgres.settings.",
                ),
            ),
            Alert(
                "PostgresDeadlocks",
                "sum by (instance, datname) (increase(pg_stat_database_deadlocks[5m])) > " + str(t.postgres_deadlocks),
                "0s",
                "warning",
                "postgres",
                "{{ $value | humanize }} deadlocks in {{ $labels.datname }} over 5 minutes",
                "Transactions of database {{ $labels.datname }} wait on each other; Postgres aborts one of each pair.",
                (
                    f"{logs} shows each deadlock with the two statements involved.",
                    "Make the application take locks in one order (e.g. rows by primary key).",
                ),
            ),
            Alert(
                "PostgresLongTransaction",
                f'max by (instance, datname) (pg_stat_activity_max_tx_duration{{state!="idle"}}) > '
                f"{number(t.postgres_transaction_max.seconds)}",
                "1m",
                "warning",
                "postgres",
                "A transaction in {{ $labels.datname }} is open for {{ $value | humanizeDuration }}",
                f"A transaction has been open longer than {t.postgres_transaction_max}: it holds locks and keeps "
                "VACUUM from cleaning up.",
                (
                    "Find it: `SELECT pid, usename, state, now() - xact_start AS age, query FROM pg_stat_activity "
                    "WHERE xact_start IS NOT NULL ORDER BY age DESC LIMIT 5;`",
                    "End it if it is stuck: `SELECT pg_terminate_backend(PID);`",
                ),
            ),
            Alert(
                "PostgresRestarted",
                "changes(pg_postmaster_start_time_seconds[15m]) > 0",
                "0s",
                "warning",
                "postgres",
                "Postgres restarted",
                "Postgres started again within the last 15 minutes: connections were dropped. "
                "mindscape runs one Postgres without a replica, so there is no replication to watch.",
                (f"{logs} shows why it stopped (a crash, out of memory, or a `mindscape up` that recreated it).",),
            ),
        ),
        rank=10,  # its place in services.yml and alerts.md
    )


# -- its row of the platform dashboard ----------------------------------------------------------


def dashboard(platform: Platform) -> tuple[DashboardRow, ...]:
    t = platform.monitoring.thresholds
    panels: list[Panel] = []
    panels.append(
        Panel(
            timeseries(
                "Postgres connections",
                "none",
                query(f"sum by (state) (pg_stat_activity_count{{{SEL}}})", "{{state}}"),
                query(f"max(pg_settings_max_connections{{{SEL}}})", "max_connections"),
            )
        )
    )
    panels.append(
        Panel(
            timeseries(
                "Transactions",
                "short",
                query(f"sum by (datname) (rate(pg_stat_database_xact_commit{{{SEL}}}{RATE}))", "commit {{datname}}"),
                query(
                    f"sum by (datname) (rate(pg_stat_database_xact_rollback{{{SEL}}}{RATE}))", "rollback {{datname}}"
                ),
            )
        )
    )
    panels.append(
        Panel(
            timeseries(
                "Deadlocks",
                "short",
                query(f"sum by (datname) (increase(pg_stat_database_deadlocks{{{SEL}}}{RATE}))", "{{datname}}"),
                threshold=t.postgres_deadlocks + 0.5,
            )
        )
    )
    panels.append(
        Panel(
            timeseries(
                "Longest open transaction",
                "s",
                query(f'max by (datname) (pg_stat_activity_max_tx_duration{{{SEL}, state!="idle"}})', "{{datname}}"),
                threshold=t.postgres_transaction_max.seconds,
            )
        )
    )
    panels.append(Panel(timeseries("Database size", "bytes", query(f"pg_database_size_bytes{{{SEL}}}", "{{datname}}"))))
    panels.append(
        Panel(
            timeseries(
                "Uptime",
                "s",
                query(f"time() - pg_postmaster_start_time_seconds{{{SEL}}}", "{{instance}}"),
                description="Drops to 0 when Postgres restarts (PostgresRestarted).",
            )
        )
    )
    return (DashboardRow("Postgres", tuple(panels), rank=30),)


SERVICE = exporter(
    name="postgres_exporter",
    dashboard=dashboard,
    alerts=alerts,
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
