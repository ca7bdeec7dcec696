"""The Redis exporter: Redis metrics for Prometheus."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mindscape_ops.services.exporter import exporter
from mindscape_ops.services.spec import Container
from mindscape_ops.settings.base import ImageRef, PortSpec, Service

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform


PORT = 9121  # where it serves its metrics, in its container


class RedisExporter(Service):
    image: ImageRef = "oliver006/redis_exporter:v1.62.0"
    port: PortSpec = PORT


def container(platform: Platform) -> Container:
    return Container(
        container_port=PORT,
        environment={"REDIS_ADDR": "redis://redis:6379"},
        # its password file is a JSON map of addresses, not a plain file: the value goes in as
        # REDIS_PASSWORD, the one secret still passed in the environment
        secrets={"REDIS_PASSWORD": "REDIS_PASSWORD"},
        # the official image is FROM scratch: no shell for a Docker healthcheck; readiness is probed
    )


SERVICE = exporter(
    name="redis_exporter",
    summary="Redis metrics for Prometheus",
    settings=RedisExporter,
    container=container,
    port=PORT,
    ready_when="redis_up 1",
    depends_on=("redis",),
)
