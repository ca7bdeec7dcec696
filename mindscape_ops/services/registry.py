"""Every service mindscape knows, in the order they start: each depends only on services
before it. A new service is a new module in this folder and one line here."""

from __future__ import annotations

from mindscape_ops.services import (
    alertmanager,
    gateway,
    gateway_exporter,
    grafana,
    identity,
    jaeger,
    memcached,
    memcached_exporter,
    node_exporter,
    pgbouncer,
    pgbouncer_exporter,
    postgres,
    postgres_exporter,
    prometheus,
    redis,
    redis_exporter,
    victorialogs,
)
from mindscape_ops.services.definition import ServiceDef

SERVICES: tuple[ServiceDef, ...] = (
    victorialogs.SERVICE,  # first: the others' output goes to it from their start
    postgres.SERVICE,
    redis.SERVICE,
    identity.SERVICE,  # after postgres, which holds its identities; before the gateway, which asks it
    jaeger.SERVICE,
    alertmanager.SERVICE,
    prometheus.SERVICE,
    grafana.SERVICE,
    gateway_exporter.SERVICE,  # before the gateway, which resolves it at start
    gateway.SERVICE,
    pgbouncer.SERVICE,
    postgres_exporter.SERVICE,
    redis_exporter.SERVICE,
    node_exporter.SERVICE,
    pgbouncer_exporter.SERVICE,
    memcached.SERVICE,
    memcached_exporter.SERVICE,
)

BY_NAME: dict[str, ServiceDef] = {service.name: service for service in SERVICES}
