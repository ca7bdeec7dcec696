"""What each service's container looks like: image, command, environment, ports, mounts,
health check and readiness probe. Pure data from the platform.

`up` creates containers from these specs and the compose export renders the same specs,
so the two cannot drift apart. Paths of rendered configs are relative to the project root.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # the model stays unloaded for the engine adapter and the no-op `up`
    from mindscape_ops.config.models import Platform

# Secrets the platform generates into .mindscape/secrets.env, by the service that needs them.
SECRET_KEYS: dict[str, tuple[str, ...]] = {
    "postgres": ("POSTGRES_PASSWORD",),
    "redis": ("REDIS_PASSWORD",),
    "grafana": ("GRAFANA_ADMIN_PASSWORD",),
}


# How Docker runs each container's own healthcheck and keeps its logs; `up` and the
# compose export both read these, so the two stay equivalent.
HEALTHCHECK = {"interval_s": 5, "timeout_s": 3, "retries": 3}
LOG_OPTIONS = {"max-size": "10m", "max-file": "3"}


@dataclass(frozen=True)
class Probe:
    """How `up` knows a service is really ready, from the host, through the published port."""

    kind: Literal["postgres", "redis", "http"]
    path: str = ""  # http: the URL path that answers 200 when ready
    expect: str = ""  # http: text the body must contain (e.g. grafana's database ok)


@dataclass(frozen=True)
class Mount:
    source: str  # relative to the project root: a rendered file or folder, or a .mindscape/ file
    target: str
    read_only: bool = True


@dataclass(frozen=True)
class ContainerSpec:
    service: str
    image: str
    container_port: int
    host_port: int | str  # a number, or "auto" until provisioning picks one
    bind: str
    command: tuple[str, ...] = ()
    user: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    # container env var -> key in .mindscape/secrets.env; values never leave that file but here
    secrets: dict[str, str] = field(default_factory=dict)
    volume_target: str | None = None  # where the named volume <project>-<service>-data is mounted
    mounts: tuple[Mount, ...] = ()
    healthcheck: tuple[str, ...] = ()  # Docker HEALTHCHECK test, e.g. ("CMD-SHELL", "...")
    probe: Probe = Probe("http", "/")
    depends_on: tuple[str, ...] = ()
    reach_host: bool = False  # add host.docker.internal -> host gateway (to reach the app)
    start_period: float = 0.0  # seconds of grace for Docker's healthcheck (the service's health.start_period)


def _wget(port: int, path: str) -> tuple[str, ...]:
    return ("CMD-SHELL", f"wget -q -O /dev/null http://127.0.0.1:{port}{path} || exit 1")


def container_specs(platform: Platform) -> dict[str, ContainerSpec]:
    """Specs of every enabled service, in start order."""
    from mindscape_ops.config.services import DEPENDS_ON

    enabled = platform.services.enabled()
    specs: dict[str, ContainerSpec] = {}
    for name, service in enabled.items():
        common = dict(
            service=name,
            image=service.image,
            start_period=service.health.start_period.seconds,
            host_port=service.port,
            bind=service.bind,
            depends_on=tuple(d for d in DEPENDS_ON.get(name, ()) if d in enabled),
        )
        specs[name] = ContainerSpec(**common, **_BUILDERS[name](platform, platform.paths.deploy))
    return specs


# One builder per service: what is particular to its container, given the platform and
# where the rendered configs live (deploy/).


def _postgres(platform: Platform, deploy: str) -> dict:
    pg = platform.services.postgres
    args: list[str] = []
    for key, value in sorted(pg.settings.items()):
        text = ("on" if value else "off") if isinstance(value, bool) else str(value)
        args += ["-c", f"{key}={text}"]
    return dict(
        container_port=5432,
        command=("postgres", *args) if args else (),
        environment={"POSTGRES_USER": pg.user, "POSTGRES_DB": pg.database, "PGDATA": "/var/lib/postgresql/data/pgdata"},
        secrets={"POSTGRES_PASSWORD": "POSTGRES_PASSWORD"},
        volume_target="/var/lib/postgresql/data",
        # with pgbouncer, an init script here gives a fresh database the verifier pgbouncer holds;
        # mounted always, so that enabling pgbouncer later does not recreate postgres
        mounts=(Mount(".mindscape/postgres/initdb", "/docker-entrypoint-initdb.d"),),
        healthcheck=("CMD-SHELL", f"pg_isready -h 127.0.0.1 -U {pg.user} -d {pg.database}"),
        probe=Probe("postgres"),
    )


def _redis(platform: Platform, deploy: str) -> dict:
    return dict(
        container_port=6379,
        user="redis",
        command=("sh", "-c", 'exec redis-server /usr/local/etc/redis/redis.conf --requirepass "$REDIS_PASSWORD"'),
        secrets={"REDIS_PASSWORD": "REDIS_PASSWORD"},
        volume_target="/data",
        mounts=(Mount(f"{deploy}/redis/redis.conf", "/usr/local/etc/redis/redis.conf"),),
        healthcheck=("CMD-SHELL", 'redis-cli -a "$REDIS_PASSWORD" --no-auth-warning ping | grep -q PONG'),
        probe=Probe("redis"),
    )


def _alertmanager(platform: Platform, deploy: str) -> dict:
    return dict(
        container_port=9093,
        command=("--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"),
        volume_target="/alertmanager",
        mounts=(
            Mount(f"{deploy}/alertmanager", "/etc/alertmanager"),
            Mount(".mindscape/alertmanager", "/etc/alertmanager-secrets"),
        ),
        healthcheck=_wget(9093, "/-/ready"),
        probe=Probe("http", "/-/ready"),
    )


def _prometheus(platform: Platform, deploy: str) -> dict:
    return dict(
        container_port=9090,
        command=(
            "--config.file=/etc/prometheus/prometheus.yml",
            "--storage.tsdb.path=/prometheus",
            f"--storage.tsdb.retention.time={platform.services.prometheus.retention}",
            "--web.enable-lifecycle",
        ),
        volume_target="/prometheus",
        mounts=(Mount(f"{deploy}/prometheus", "/etc/prometheus"),),
        healthcheck=_wget(9090, "/-/ready"),
        probe=Probe("http", "/-/ready"),
        reach_host=True,
    )


def _grafana(platform: Platform, deploy: str) -> dict:
    return dict(
        container_port=3000,
        environment={
            "GF_SECURITY_ADMIN_USER": platform.services.grafana.admin_user,
            "GF_PATHS_PROVISIONING": "/etc/grafana/provisioning",
            "GF_ANALYTICS_REPORTING_ENABLED": "false",
            "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
        },
        secrets={"GF_SECURITY_ADMIN_PASSWORD": "GRAFANA_ADMIN_PASSWORD"},
        volume_target="/var/lib/grafana",
        mounts=(
            Mount(f"{deploy}/grafana/provisioning", "/etc/grafana/provisioning"),
            Mount(f"{deploy}/grafana/dashboards", "/etc/grafana/dashboards"),
        ),
        healthcheck=_wget(3000, "/api/health"),
        probe=Probe("http", "/api/health", expect='"ok"'),
    )


def _gateway(platform: Platform, deploy: str) -> dict:
    return dict(
        container_port=8080,
        command=("nginx", "-g", "daemon off;"),
        mounts=(Mount(f"{deploy}/gateway/nginx.conf", "/etc/nginx/nginx.conf"),),
        healthcheck=("CMD-SHELL", "curl -fsS -o /dev/null http://127.0.0.1:8080/healthz || exit 1"),
        probe=Probe("http", "/healthz"),
        reach_host=True,
    )


def _pgbouncer(platform: Platform, deploy: str) -> dict:
    return dict(
        container_port=6432,
        command=("pgbouncer", "/etc/pgbouncer/pgbouncer.ini"),
        mounts=(
            Mount(f"{deploy}/pgbouncer/pgbouncer.ini", "/etc/pgbouncer/pgbouncer.ini"),
            Mount(".mindscape/pgbouncer/userlist.txt", "/etc/pgbouncer/userlist.txt"),
        ),
        healthcheck=("CMD-SHELL", "pg_isready -h 127.0.0.1 -p 6432 || exit 1"),
        probe=Probe("postgres"),
    )


def _postgres_exporter(platform: Platform, deploy: str) -> dict:
    pg = platform.services.postgres
    host = "pgbouncer:6432" if platform.services.postgres_exporter.via_pgbouncer else "postgres:5432"
    return dict(
        container_port=9187,
        environment={"DATA_SOURCE_URI": f"{host}/{pg.database}?sslmode=disable", "DATA_SOURCE_USER": pg.user},
        secrets={"DATA_SOURCE_PASS": "POSTGRES_PASSWORD"},
        healthcheck=_wget(9187, "/metrics"),
        probe=Probe("http", "/metrics", expect="pg_up 1"),
    )


def _redis_exporter(platform: Platform, deploy: str) -> dict:
    return dict(
        container_port=9121,
        environment={"REDIS_ADDR": "redis://redis:6379"},
        secrets={"REDIS_PASSWORD": "REDIS_PASSWORD"},
        # the official image is FROM scratch: no shell for a Docker healthcheck; readiness is probed
        probe=Probe("http", "/metrics", expect="redis_up 1"),
    )


_BUILDERS = {
    "postgres": _postgres,
    "redis": _redis,
    "alertmanager": _alertmanager,
    "prometheus": _prometheus,
    "grafana": _grafana,
    "gateway": _gateway,
    "pgbouncer": _pgbouncer,
    "postgres_exporter": _postgres_exporter,
    "redis_exporter": _redis_exporter,
}


def required_secrets(platform: Platform) -> tuple[str, ...]:
    """Secret keys the enabled services need, in a stable order."""
    enabled = platform.services.enabled()
    return tuple(key for service, keys in SECRET_KEYS.items() if service in enabled for key in keys)
