"""Postgres: the platform's database. Readiness is `SELECT 1` as the platform user over TCP
(not a log line: docker-library/postgres#146); `database.migrate_on_up` migrates it once ready."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import model_validator

from mindscape_ops.services import pitr, pitr_alerts, pitr_gates, pitr_kubernetes
from mindscape_ops.services.contract import Address, Credentials, NotReady
from mindscape_ops.services.definition import Artifact, KubeShape, OpsDatabase, ServiceDef, UpContext, deploy
from mindscape_ops.services.spec import Container, Mount
from mindscape_ops.settings.base import ImageRef, PortSpec, Service, check_pattern
from mindscape_ops.settings.types import Identifier, check_single_line

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform
    from mindscape_ops.workspace.project import Project

SettingName = Annotated[
    str, check_pattern(re.compile(r"^[a-z][a-z0-9_.]*$"), "a postgres setting name", "max_connections")
]


class Postgres(Service):
    image: ImageRef = "postgres:16"
    port: PortSpec = 5432
    database: Identifier = "app"
    user: Identifier = "app"
    # Passed as `postgres -c key=value`; values are validated to stay one token.
    settings: dict[SettingName, str | int | float | bool] = {}

    @model_validator(mode="after")
    def _settings_are_single_tokens(self) -> Postgres:
        for key, value in self.settings.items():
            check_single_line(str(value))
            if isinstance(value, str) and ("'" in value or '"' in value):
                raise ValueError(f"settings.{key}: quotes are not allowed in a setting value")
        return self


INITDB = ".mindscape/postgres/initdb"


def container(platform: Platform) -> Container:
    pg = platform.services.postgres
    args: list[str] = []
    for key, value in sorted(pg.settings.items()):
        text = ("on" if value else "off") if isinstance(value, bool) else str(value)
        args += ["-c", f"{key}={text}"]
    args += pitr.postgres_args(platform)  # WAL archiving through pgBackRest (backups.pitr)
    return Container(
        container_port=5432,
        command=("postgres", *args) if args else (),
        environment={"POSTGRES_USER": pg.user, "POSTGRES_DB": pg.database, "PGDATA": "/var/lib/postgresql/data/pgdata"},
        secret_files={"POSTGRES_PASSWORD_FILE": "POSTGRES_PASSWORD"},
        volume_target="/var/lib/postgresql/data",
        # with pgbouncer, an init script here gives a fresh database the verifier pgbouncer holds;
        # mounted always, so that enabling pgbouncer later does not recreate postgres
        mounts=(Mount(INITDB, "/docker-entrypoint-initdb.d"), *pitr.mounts(platform)),
        healthcheck=("CMD-SHELL", f"pg_isready -h 127.0.0.1 -U {pg.user} -d {pg.database}"),
        reach_host=pitr.reaches_host(platform),
        image=pitr.derived_image(platform),  # the official image with pgBackRest, with backups.pitr
        build_file=pitr.build_file(platform),
    )


def credentials(platform: Platform, secrets: Mapping[str, str]) -> Credentials:
    pg = platform.services.postgres
    return Credentials(pg.user, secrets.get("POSTGRES_PASSWORD", ""), pg.database)


def connect(address: Address, creds: Credentials, timeout: int = 2, autocommit: bool = True) -> Any:
    """A psycopg connection to the platform's Postgres (or a pooler in front of it) as `creds`."""
    import psycopg

    return psycopg.connect(
        host=address.host,
        port=address.port,
        user=creds.user,
        password=creds.password,
        dbname=creds.database,
        connect_timeout=timeout,
        autocommit=autocommit,
    )


class SelectOne:
    """Ready when `SELECT 1` passes as the platform user over TCP (through a pooler too)."""

    def check(self, host: str, port: int, creds: Credentials) -> None:
        import psycopg

        try:
            with connect(Address(host, port), creds) as conn:
                conn.execute("SELECT 1").fetchone()
        except psycopg.Error as exc:
            raise NotReady(str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__) from None

    def describe(self, service: str) -> str:
        return "SELECT 1" if service == "postgres" else f"postgres answers SELECT 1 through {service}"

    def load(self) -> None:
        import psycopg  # noqa: F401

    @property
    def http(self) -> None:
        return None


def prepare(project: Project, secrets: Mapping[str, str]) -> list[str]:
    (project.root / INITDB).mkdir(parents=True, exist_ok=True)
    pitr.prepare(project)
    return []


def before_start(up: UpContext) -> None:
    """A restore's swap that mindscape was killed in is settled before Postgres starts: on a data
    volume without its data directory the image would make an empty one."""
    if pitr.settings(up.project.platform) is None:
        return
    from mindscape_ops.adapters.docker import Engine
    from mindscape_ops.services import pitr_swap

    said = pitr_swap.settle(up.project, Engine(), start=False)
    if said is not None:
        up.event("postgres", "settled", said)


def after_ready(up: UpContext) -> None:
    if pitr.settings(up.project.platform) is not None:
        up.event("postgres", "archiving", "pgbackrest stanza-create and check")
        pitr.create_stanza(up.project)
    migrate_on_up(up)
    from mindscape_ops.services import backup_start

    backup_start.remember(up.project)  # what the next `backup create` starts pg_dump from


def migrate_on_up(up: UpContext) -> None:
    if not up.project.platform.database.migrate_on_up:
        return
    up.event("postgres", "migrating", "database.migrate_on_up")
    count = up.migrate()
    up.event("postgres", "migrated", f"{count} migration(s) applied")


def backup_hooks():
    """`pg_dump -Fc` / `pg_restore`, in postgres_backup.py (loaded when used)."""
    from mindscape_ops.services import postgres_backup

    return postgres_backup


def ops_url(platform: Platform, at: str) -> str:
    """The URL the ops Jobs reach it by on a cluster, the password put in by Kubernetes."""
    pg = platform.services.postgres
    return f"postgresql://{pg.user}:$(POSTGRES_PASSWORD)@{at}/{pg.database}"


SERVICE = ServiceDef(
    name="postgres",
    summary="the database",
    settings=Postgres,
    container=container,
    probe=SelectOne(),
    secrets=("POSTGRES_PASSWORD",),
    holds_data=True,
    credentials=credentials,
    prepare=prepare,
    before_start=before_start,
    after_ready=after_ready,
    backup=backup_hooks,
    artifacts=(
        # the official image with pgBackRest added, which `up` builds (backups.pitr)
        Artifact("postgres/pgbackrest.Containerfile.j2", deploy(pitr.BUILD_FILE), lambda p: bool(pitr.derives_from(p))),
    ),
    gates=pitr_gates.GATES,  # backups.wal_archiving, backups.restorable_window (skipped while backups.pitr is off)
    alerts=pitr_alerts.alerts,  # archiving failing or late, no full backup in time (none while backups.pitr is off)
    kubernetes=KubeShape(
        workload="StatefulSet",
        run_as=999,  # postgres in the official image
        writable=("/tmp", "/var/run/postgresql"),
        cpu=("250m", "1"),
        memory=("256Mi", "1Gi"),
        clients=True,
        workspace_files=lambda p: {
            INITDB: ("10-mindscape-scram.sql",) if "pgbouncer" in p.services.enabled() else (),
            **pitr_kubernetes.kube_secret_files(p),  # pgBackRest's cipher pass and S3 keys (backups.pitr)
        },
        ops_database=OpsDatabase("POSTGRES_PASSWORD", ops_url),
        # backups.pitr: pgbackrest.conf, archiving to S3, the physical backups' CronJobs
        config_folders=pitr_kubernetes.kube_config,
        pod_commands=pitr_kubernetes.pod_commands,
        outside_ports=pitr_kubernetes.outside_ports,
        outside_hosts=pitr_kubernetes.outside_hosts,
        cluster_notes=pitr_kubernetes.cluster_notes,
    ),
    platform_database=True,  # migrations, `check`'s database gates and $DATABASE_URL's stand-in
)
