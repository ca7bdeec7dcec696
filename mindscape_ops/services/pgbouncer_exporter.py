"""The pgbouncer exporter: pool metrics (clients waiting for a server connection) for
Prometheus. It logs in to pgbouncer's admin console as the platform user, who is one of its
`stats_users`. The password reaches it in a libpq password file named by PGPASSFILE (libpq and
Go's lib/pq both read one), so neither its command line nor its environment holds it: `docker
inspect` shows a path. Kubernetes cannot give a Secret's file an owner, which a password file
needs, so there the pod reads PGPASSWORD from a Secret reference instead (the pod spec names the
Secret, never the value)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from mindscape_ops.adapters.files import atomic_write, cannot_write
from mindscape_ops.services.contract import Alert, AlertGroup, DashboardRow, Panel
from mindscape_ops.services.definition import KubeShape
from mindscape_ops.services.exporter import exporter
from mindscape_ops.services.panels import SEL, query, timeseries
from mindscape_ops.services.spec import Container, Mount, secret_path
from mindscape_ops.settings.base import ImageRef, PortSpec, Service

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform
    from mindscape_ops.workspace.project import Project


PORT = 9127  # where it serves its metrics, in its container
PGBOUNCER = ("pgbouncer", 6432)  # the admin console it reads, on the platform network
PASSFILE = ".mindscape/pgbouncer_exporter/pgpass"
PASSFILE_IN_CONTAINER = secret_path("pgbouncer_exporter.pgpass")
NOBODY = 65534  # the unprivileged user of both images (the official one and mindscape-local's)


class PgbouncerExporter(Service):
    image: ImageRef = "prometheuscommunity/pgbouncer-exporter:v0.9.0"
    port: PortSpec = PORT


def owner() -> tuple[int, int]:
    """Who the password file belongs to: libpq (and lib/pq) read one only when no one but its
    owner may read it (0600), so it must belong to the user the exporter runs as. Run as root,
    mindscape gives it to the images' unprivileged user; run as anyone else it cannot, so the file
    stays theirs and `up` runs the exporter as its owner (never root either way)."""
    if os.geteuid() == 0:
        return NOBODY, NOBODY
    return os.getuid(), os.getgid()


def container(platform: Platform) -> Container:
    user = platform.services.postgres.user
    host, port = PGBOUNCER
    return Container(
        container_port=PORT,
        command=(
            f"--pgBouncer.connectionString=postgres://{user}@{host}:{port}/pgbouncer?sslmode=disable",
            f"--web.listen-address=:{PORT}",
        ),
        user=f"{NOBODY}:{NOBODY}",  # the image's own user, said here: `up` runs it as the file's owner
        environment={"PGPASSFILE": PASSFILE_IN_CONTAINER},
        mounts=(Mount(PASSFILE, PASSFILE_IN_CONTAINER, owner_only=True),),
    )


def passfile_field(value: str) -> str:
    """Pure: a field of a libpq password file (`:` and `\\` escaped by a backslash)."""
    return value.replace("\\", "\\\\").replace(":", "\\:")


def passfile_text(user: str, password: str) -> str:
    """Pure: the password file's one line: pgbouncer's admin console, as the platform user."""
    host, port = PGBOUNCER
    fields = (host, str(port), "pgbouncer", user, password)
    return ":".join(passfile_field(f) for f in fields) + "\n"


def write_passfile(project: Project, secrets: Mapping[str, str]) -> list[str]:
    """`up`: the password file, 0600 and owned by the user the exporter runs as (see `owner`);
    rewritten when its text, mode or owner is not that."""
    path = project.root / PASSFILE
    text = passfile_text(project.platform.services.postgres.user, secrets["POSTGRES_PASSWORD"])
    uid, gid = owner()
    try:
        if not _is(path, text, uid, gid):
            atomic_write(path, text, mode=0o600)
            if (path.stat().st_uid, path.stat().st_gid) != (uid, gid):
                os.chown(path, uid, gid)
    except OSError as exc:
        raise cannot_write(path, exc) from None
    return []


def _is(path: Path, text: str, uid: int, gid: int) -> bool:
    try:
        found = path.stat()
        owned = (found.st_uid, found.st_gid) == (uid, gid)
        return found.st_mode & 0o777 == 0o600 and owned and path.read_text() == text
    except OSError:
        return False


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
    prepare=write_passfile,
    kubernetes=KubeShape(secret_env={"PGPASSWORD": "POSTGRES_PASSWORD"}),
)
