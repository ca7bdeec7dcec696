"""The Redis exporter: Redis metrics for Prometheus."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

from mindscape_ops.config.base import ImageRef, PortSpec, Service
from mindscape_ops.services.definition import Metrics, ServiceDef
from mindscape_ops.services.spec import Mount, Probe, secret_path

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform
    from mindscape_ops.workspace.project import Project

REDIS_ADDR = "redis://redis:6379"
# The exporter's password file is a JSON map of address to password (--redis.password-file,
# in Debian's 1.45 and the official image alike), not the plain file Redis' own
# REDIS_PASSWORD_FILE is: so it is a file of its own, made from secrets.env by `up`.
PASSWORDS = ".mindscape/redis_exporter/passwords.json"


class RedisExporter(Service):
    image: ImageRef = "oliver006/redis_exporter:v1.62.0"
    port: PortSpec = 9121


def container(platform: Platform) -> dict:
    target = secret_path("redis_exporter-passwords.json")
    return dict(
        container_port=9121,
        environment={"REDIS_ADDR": REDIS_ADDR, "REDIS_PASSWORD_FILE": target},
        mounts=(Mount(PASSWORDS, target),),
        # the official image is FROM scratch: no shell for a Docker healthcheck; readiness is probed
    )


def passwords_json(password: str) -> str:
    """The password file's text: the password of the one address it scrapes."""
    return json.dumps({REDIS_ADDR: password}) + "\n"


def write_passwords(project: Project, secrets: Mapping[str, str]) -> list[str]:
    from mindscape_ops.workspace.files import write_if_changed

    # readable by the exporter's unprivileged user in the container; .mindscape/ itself is 0700
    write_if_changed(project.root / PASSWORDS, passwords_json(secrets["REDIS_PASSWORD"]))
    return []


SERVICE = ServiceDef(
    name="redis_exporter",
    summary="Redis metrics for Prometheus",
    settings=RedisExporter,
    container=container,
    probe=Probe("http", "/metrics", expect="redis_up 1"),
    depends_on=("redis",),
    metrics=Metrics(9121),
    prepare=write_passwords,
)
