"""The Redis exporter: Redis metrics for Prometheus."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

from mindscape_ops.adapters.files import write_if_changed
from mindscape_ops.services.contract import Alert, AlertGroup, DashboardRow, Panel, percent
from mindscape_ops.services.exporter import exporter
from mindscape_ops.services.panels import RATE, SEL, query, timeseries
from mindscape_ops.services.spec import Container, Mount, secret_path
from mindscape_ops.settings.base import ImageRef, PortSpec, Service

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform
    from mindscape_ops.workspace.project import Project

REDIS_ADDR = "redis://redis:6379"
# The exporter's password file is a JSON map of address to password (--redis.password-file,
# in Debian's 1.45 and the official image alike), not the plain file Redis' own
# REDIS_PASSWORD_FILE is: so it is a file of its own, made from secrets.env by `up`.
PASSWORDS = ".mindscape/redis_exporter/passwords.json"


PORT = 9121  # where it serves its metrics, in its container


class RedisExporter(Service):
    image: ImageRef = "oliver006/redis_exporter:v1.62.0"
    port: PortSpec = PORT


def container(platform: Platform) -> Container:
    target = secret_path("redis_exporter-passwords.json")
    return Container(
        container_port=PORT,
        environment={"REDIS_ADDR": REDIS_ADDR, "REDIS_PASSWORD_FILE": target},
        mounts=(Mount(PASSWORDS, target),),
        # the official image is FROM scratch: no shell for a Docker healthcheck; readiness is probed
    )


def passwords_json(password: str) -> str:
    """The password file's text: the password of the one address it scrapes."""
    return json.dumps({REDIS_ADDR: password}) + "\n"


def write_passwords(project: Project, secrets: Mapping[str, str]) -> list[str]:
    # readable by the exporter's unprivileged user in the container; .mindscape/ itself is 0700
    write_if_changed(project.root / PASSWORDS, passwords_json(secrets["REDIS_PASSWORD"]))
    return []


# -- its alerts (rendered into prometheus/rules/services.yml and runbooks/alerts.md) ---------------


def alerts(platform: Platform) -> AlertGroup:
    t = platform.monitoring.thresholds
    return AlertGroup(
        "redis",
        (
            Alert(
                "RedisDown",
                "redis_up == 0",
                "1m",
                "critical",
                "redis",
                "Redis is down",
                "redis_exporter at {{ $labels.instance }} cannot connect to Redis.",
                ("`mindscape status`; `mindscape logs redis --tail 200`; `mindscape up redis`.",),
            ),
            Alert(
                "RedisMemoryNearMax",
                # `> 0` drops instances without maxmemory, so there is no division by zero.
                f"redis_memory_used_bytes / (redis_memory_max_bytes > 0) > {t.redis_memory_ratio}",
                "5m",
                "warning",
                "redis",
                "Redis uses {{ $value | humanizePercentage }} of maxmemory",
                f"Redis memory is above {percent(t.redis_memory_ratio)} of maxmemory; keys are being evicted or "
                "writes will fail, depending on maxmemory_policy.",
                ("Raise services.redis.maxmemory, or find the big keys: `redis-cli --bigkeys`.",),
            ),
            Alert(
                "RedisRejectedConnections",
                "increase(redis_rejected_connections_total[5m]) > 0",
                "0s",
                "critical",
                "redis",
                "Redis rejected {{ $value | humanize }} connections over 5 minutes",
                "Redis refused connections: it has reached maxclients.",
                ("Who is connected: `redis-cli CLIENT LIST`; close leaked clients or raise maxclients.",),
            ),
            Alert(
                "RedisEvictingKeys",
                "increase(redis_evicted_keys_total[5m]) > 0",
                "5m",
                "warning",
                "redis",
                "Redis evicted {{ $value | humanize }} keys over 5 minutes",
                "Redis is full and drops keys under maxmemory_policy; fine for a cache, data loss for anything else.",
                ("Raise services.redis.maxmemory, or set keys with a TTL.",),
            ),
        ),
        rank=20,  # its place in services.yml and alerts.md
    )


# -- its row of the platform dashboard ----------------------------------------------------------


def dashboard(platform: Platform) -> tuple[DashboardRow, ...]:
    panels: list[Panel] = []
    panels.append(
        Panel(
            timeseries(
                "Redis memory",
                "bytes",
                query(f"redis_memory_used_bytes{{{SEL}}}", "used {{instance}}"),
                query(f"redis_memory_max_bytes{{{SEL}}} > 0", "maxmemory {{instance}}"),
            )
        )
    )
    panels.append(
        Panel(
            timeseries("Commands", "ops", query(f"rate(redis_commands_processed_total{{{SEL}}}{RATE})", "{{instance}}"))
        )
    )
    panels.append(
        Panel(
            timeseries(
                "Clients",
                "none",
                query(f"redis_connected_clients{{{SEL}}}", "connected {{instance}}"),
                query(f"rate(redis_rejected_connections_total{{{SEL}}}{RATE})", "rejected/s {{instance}}"),
            )
        )
    )
    panels.append(
        Panel(
            timeseries(
                "Evictions and expiries",
                "short",
                query(f"rate(redis_evicted_keys_total{{{SEL}}}{RATE})", "evicted {{instance}}"),
                query(f"rate(redis_expired_keys_total{{{SEL}}}{RATE})", "expired {{instance}}"),
            ),
            width=12,
        )
    )
    panels.append(Panel(timeseries("Keys", "none", query(f"sum by (db) (redis_db_keys{{{SEL}}})", "{{db}}")), width=12))
    return (DashboardRow("Redis", tuple(panels), rank=50),)


SERVICE = exporter(
    name="redis_exporter",
    dashboard=dashboard,
    alerts=alerts,
    summary="Redis metrics for Prometheus",
    settings=RedisExporter,
    container=container,
    port=PORT,
    ready_when="redis_up 1",
    depends_on=("redis",),
    prepare=write_passwords,
)
